"""`task: causal_lm`: a tiny GPT-2 built here learns constructed prompt -> response rules through
the one training loop (full fine-tuning and LoRA), the loss sees only response tokens, a stopped
run resumes to the same weights bit for bit, and what cannot work is refused with the reason.

Bars: exact match on held-out prompts (sequences never seen in training) at least 0.9 after
training, against at most 0.1 for the untrained model (it says nothing sensible).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny_causal import config_text, save_tiny_gpt2, word_tokenizer, write_pairs

from ethos import ConfigError, DataError, EthosError, ModelError
from ethos.config import GenerationConfig, load_config
from ethos.models.causal_lm import IGNORE_INDEX, Framing
from ethos.models.generation import Generator, load_run_generator
from ethos.rundir import RunDir
from ethos.training import causal_train, loop, train
from ethos.training.interrupt import Interrupted
from ethos.training.run import resume

PASS_BAR = 0.9
UNTRAINED_BAR = 0.1


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("causal")
    save_tiny_gpt2(root / "base")
    write_pairs(root / "copy.jsonl", "copy")
    write_pairs(root / "swap.jsonl", "swap")
    return root


def trained(root: Path, name: str, text: str) -> RunDir:
    path = root / f"{name}.yaml"
    path.write_text(text)
    return train(load_config(path), quiet=True)


@pytest.fixture(scope="module")
def copy_run(workspace: Path) -> RunDir:
    """Full fine-tuning of the random tiny GPT-2 on copy pairs."""
    text = config_text(workspace / "copy.jsonl", workspace / "base", workspace / "runs")
    return trained(workspace, "copy", text)


@pytest.fixture(scope="module")
def swap_lora_run(workspace: Path, copy_run: RunDir) -> RunDir:
    """LoRA on the copying model: learn to reverse the sequence instead."""
    text = config_text(
        workspace / "swap.jsonl", copy_run.model_dir, workspace / "lora", adapter="lora", epochs=10
    )
    return trained(workspace, "swap", text)


def test_full_fine_tuning_learns_to_copy_held_out_prompts(copy_run: RunDir) -> None:
    metrics = copy_run.metrics
    assert metrics["test"]["exact_match"] >= PASS_BAR
    assert metrics["validation"]["exact_match"] >= PASS_BAR
    assert metrics["history"][-1]["loss"] < metrics["history"][0]["loss"]
    predictions = copy_run.predictions()
    assert set(predictions["split"]) == {"validation", "test"}
    row = predictions.iloc[0]
    assert row["prompt"].startswith("copy : ") and row["generated"] == row["response"]
    manifest = copy_run.manifest
    assert manifest["task"] == "causal_lm"
    assert manifest["model"]["format"] == "full"
    assert manifest["causal_lm"]["adapter"] == "full"
    assert manifest["data"]["split_counts"] == {"train": 400, "validation": 50, "test": 50}


def test_the_untrained_model_does_not_copy(workspace: Path) -> None:
    """The bar means something: the same model before training fails it."""
    text = config_text(
        workspace / "copy.jsonl",
        workspace / "base",
        workspace / "untrained",
        extra=", max_steps: 0",
    )
    untrained = trained(workspace, "untrained", text)
    assert untrained.metrics["test"]["exact_match"] <= UNTRAINED_BAR


def test_lora_learns_a_new_rule_on_top_of_the_base(swap_lora_run: RunDir) -> None:
    metrics = swap_lora_run.metrics
    assert metrics["test"]["exact_match"] >= PASS_BAR
    model = swap_lora_run.manifest["model"]
    assert model["format"] == "lora-adapter"
    assert model["trainable_parameters"] < 0.1 * model["parameters"]
    assert (swap_lora_run.model_dir / "adapter_config.json").is_file()
    generator = load_run_generator(swap_lora_run)
    assert generator.generate(["swap : w1 w2 w3 :"]) == ["w3 w2 w1"]


def test_the_loss_is_on_the_response_tokens_only(workspace: Path) -> None:
    tokenizer = word_tokenizer()
    framing = Framing.of(tokenizer)
    ids, n_prompt = framing.pair("copy : w1 w2 w3 :", "w1 w2 w3")
    assert n_prompt == 7  # [BOS] copy : w1 w2 w3 :
    encoded = causal_train.PairsEncoded([ids], torch.tensor([n_prompt]).numpy())
    batch = causal_train.collate_pairs(encoded, torch.tensor([0]).numpy(), pad_id=0)
    labels = batch["labels"][0].tolist()
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tokenizer.eos_token_id  # the model learns where to stop

    torch.manual_seed(0)
    logits = torch.randn(1, len(ids), len(tokenizer))
    per_example, _ = causal_train.response_loss(_Outputs(logits), batch["labels"])
    log_probs = torch.log_softmax(logits[0], dim=-1)
    by_hand = -sum(log_probs[t - 1, ids[t]] for t in range(n_prompt, len(ids))) / (
        len(ids) - n_prompt
    )
    assert float(per_example[0]) == pytest.approx(float(by_hand), rel=1e-6)


class _Outputs:
    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits


def test_a_run_stopped_after_an_epoch_resumes_to_the_same_weights(
    workspace: Path, copy_run: RunDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this process")
    text = config_text(workspace / "copy.jsonl", workspace / "base", tmp_path / "runs")
    path = tmp_path / "copy.yaml"
    path.write_text(text)
    real = loop.save_checkpoint

    def save(*args: Any, **kwargs: Any) -> Path:
        saved = real(*args, **kwargs)
        if saved.name == "epoch-3":
            signal.raise_signal(signal.SIGINT)
        return saved

    monkeypatch.setattr(loop, "save_checkpoint", save)
    with pytest.raises(Interrupted) as caught:
        train(load_config(path), quiet=True)
    monkeypatch.setattr(loop, "save_checkpoint", real)
    run_dir = caught.value.run_dir
    assert run_dir is not None and not (run_dir / "manifest.json").exists()
    resumed = resume(run_dir, quiet=True)
    assert resumed.metrics["history"] == copy_run.metrics["history"]
    assert (
        resumed.manifest["model"]["weights_sha256"] == copy_run.manifest["model"]["weights_sha256"]
    )
    assert resumed.manifest["training"]["resumed_from_epoch"] == 3


def test_an_encoder_without_a_causal_head_is_refused_before_a_run_starts(
    workspace: Path, tmp_path: Path
) -> None:
    text = config_text(workspace / "copy.jsonl", Path("default"), tmp_path / "runs")
    path = tmp_path / "encoder.yaml"
    path.write_text(text.replace(f"name: {Path('default')}", "name: default"))
    with pytest.raises(ConfigError, match=r"causal language model.*encoder"):
        train(load_config(path), quiet=True)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("task: causal_lm\n", "task: causal_lm\nchoices: {}\n"),
        ("max_new_tokens: 8", "max_new_tokens: 0"),
        ("max_new_tokens: 8", "max_new_tokens: 8, temperature: -1"),
        ("max_new_tokens: 8", "max_new_tokens: 8, top_p: 1.5"),
        ("warmup_ratio: 0.05", "warmup_ratio: 0.05, privacy: {epsilon: 8}"),
    ],
    ids=["choices-section", "no-new-tokens", "negative-temperature", "top-p-above-1", "dp-sgd"],
)
def test_settings_a_causal_run_cannot_use_are_refused(
    workspace: Path, tmp_path: Path, old: str, new: str
) -> None:
    text = config_text(workspace / "copy.jsonl", workspace / "base", tmp_path / "runs")
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError):
        train(load_config(path), quiet=True)
    assert not (tmp_path / "runs").exists()


def test_a_prompt_longer_than_the_context_is_named(workspace: Path, tmp_path: Path) -> None:
    source = tmp_path / "long.jsonl"
    shutil.copy(workspace / "copy.jsonl", source)
    with source.open("a") as out:
        out.write(json.dumps({"prompt": "copy : " + "w1 " * 40 + ":", "response": "w1"}) + "\n")
    path = tmp_path / "long.yaml"
    path.write_text(config_text(source, workspace / "base", tmp_path / "runs"))
    with pytest.raises(DataError, match=r"pair row-500 is 44 tokens long.*no room"):
        train(load_config(path), quiet=True)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "", "response": "w1"}, "prompt is empty"),
        ({"prompt": "copy : w1 :", "response": None}, "response is not text"),
        ({"question": "copy : w1 :", "answer": "w1"}, "no column prompt"),
    ],
)
def test_bad_pair_files_are_named(
    workspace: Path, tmp_path: Path, row: dict[str, Any], message: str
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for _ in range(5)))
    path = tmp_path / "bad.yaml"
    path.write_text(config_text(source, workspace / "base", tmp_path / "runs"))
    with pytest.raises(DataError, match=message):
        train(load_config(path), quiet=True)


def test_generation_refuses_a_prompt_that_leaves_no_room(copy_run: RunDir) -> None:
    generator = load_run_generator(copy_run)
    with pytest.raises(ModelError, match="34 tokens long; the model's context holds 32"):
        generator.generate(["copy : " + "w1 " * 30 + ":"])
    with pytest.raises(ModelError, match="exceed the model's context"):
        generator.generate(["copy : w1 :"], GenerationConfig(max_new_tokens=30))
    with pytest.raises(ModelError, match="empty"):
        generator.generate(["  "])


def test_seeded_sampling_repeats_and_greedy_is_deterministic(copy_run: RunDir) -> None:
    generator = load_run_generator(copy_run)
    hot = GenerationConfig(temperature=3.0, max_new_tokens=6)
    prompts = ["copy : w1 w2 w3 :"] * 4
    assert generator.generate(prompts, hot, seed=5) == generator.generate(prompts, hot, seed=5)
    assert generator.generate(prompts[:1]) == ["w1 w2 w3"]


def test_the_response_log_likelihood_is_higher_for_the_learnt_response(
    copy_run: RunDir,
) -> None:
    generator: Generator = load_run_generator(copy_run)
    right, n_right = generator.response_log_likelihood("copy : w1 w2 w3 :", "w1 w2 w3")
    wrong, n_wrong = generator.response_log_likelihood("copy : w1 w2 w3 :", "w3 w2 w1")
    assert n_right == n_wrong == 4  # three words and the end token
    assert right > -1.0 > wrong


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def test_a_chat_template_frames_the_prompt_as_a_user_turn() -> None:
    tokenizer = word_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    framed = Framing.of(tokenizer)
    plain = Framing.of(tokenizer, "never")
    assert framed.chat and not plain.chat
    tokens = tokenizer.convert_ids_to_tokens(framed.prompt_ids("copy : w1 :"))
    # "user" and "assistant" are not in the tiny vocabulary: they are [UNK] here
    assert tokens == ["[UNK]", ":", "copy", ":", "w1", ":", "[UNK]", ":"]
    assert tokenizer.convert_ids_to_tokens(plain.prompt_ids("copy : w1 :")) == [
        "[BOS]",
        "copy",
        ":",
        "w1",
        ":",
    ]
    ids, n_prompt = framed.pair("copy : w1 :", "w1")
    assert ids[n_prompt:] == [tokenizer.convert_tokens_to_ids("w1"), tokenizer.eos_token_id]


def test_a_lora_run_exports_as_one_plain_model_that_answers_the_same(
    swap_lora_run: RunDir, tmp_path: Path
) -> None:
    from ethos.models.export import export_model
    from ethos.models.generation import load_causal_base

    with pytest.raises(EthosError, match="LoRA adapter"):
        export_model(swap_lora_run, tmp_path / "refused", merge=False)
    folder = export_model(swap_lora_run, tmp_path / "merged", merge=True)
    assert not (folder / "adapter_config.json").exists()
    tokenizer, model = load_causal_base(str(folder))
    prompts = ["swap : w1 w2 w3 :", "swap : w5 w0 w7 :"]
    short = GenerationConfig(max_new_tokens=8)
    merged = Generator.of(model, tokenizer).generate(prompts, short)
    assert merged == load_run_generator(swap_lora_run).generate(prompts, short)
    assert merged == ["w3 w2 w1", "w7 w0 w5"]
