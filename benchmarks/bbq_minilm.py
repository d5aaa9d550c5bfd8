"""Benchmark: the bundled MiniLM fine-tuned on BBQ, accuracy and bias beside three baselines.

Issue 19, part 1: real numbers for a small encoder on BBQ (Parrish et al. 2022), measured.

Protocol (every random draw from ``--seed``):

1. **Data.** The six bundled BBQ categories as a multiple-choice table
   (:func:`ethos.data.bbq.load_bbq_table`, 11,956 questions), split by template with
   :func:`ethos.data.bbq.split_by_template` (test 0.2, validation 0.1), so no question template
   is in two parts. The train part is subsampled to ``--train-rows`` rows, stratified by
   category (``groupby(category).sample(frac=...)``), to fit a CPU time budget; test and
   validation are used whole (``--max-eval-rows`` caps them, for ``--quick`` only).
2. **Model.** The bundled all-MiniLM-L6-v2 (``resolve_model_dir("default")``) loaded with
   ``AutoModelForMultipleChoice`` (a fresh one-logit head scored over the three options). Each
   option is encoded as ``[CLS] context [SEP] question option [SEP]``; the context is what gets
   truncated beyond ``max_length`` (default: the 99th percentile of the train part's token
   lengths, so about 1% of options lose the end of their context).
3. **Training.** A plain PyTorch loop on 1 thread: AdamW (lr ``--lr``, weight decay 0.01),
   batch 16 questions (48 sequences), linear warm-up over the first 10% of steps then linear
   decay, ``--epochs`` epochs. Batches are "sortish": the shuffled rows are cut into chunks of 50
   batches, each chunk sorted by length, so a batch pads to similar lengths; the batch order is
   then shuffled.
4. **Question-only baseline.** The same model, loop and sizes with the context removed
   (``[CLS] question option [SEP]``), as the BBQ paper's question-only baseline: what can be
   answered from the question and options alone. Skipped with ``--skip-question-only``.
5. **Scores.** On the test part, per category and overall, accuracy and bias for ambiguous and
   disambiguated contexts (:func:`ethos.stats.bbq_bias.bbq_bias_scores`, bias x100 as the
   authors' script), for the model, the question-only model, always-unknown
   (:func:`always_unknown_scores`) and the majority option learnt on the train part
   (:func:`majority_option_scores` with ``reference=train``). Validation accuracy is recorded
   for both trained models (no model selection is done on it).

Also recorded: sizes, seeds, steps, max_length, training and prediction seconds, the load average
and a torch.mm GFLOP/s probe at start and end (the machine is shared).

Run from the repository root::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bbq_minilm.py --train-rows 4800

``--quick`` (a few dozen rows, one step) checks that the script runs end to end.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import gflops, load

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "bbq_minilm.json"
OPTIONS = ("option_0", "option_1", "option_2")
SORTISH_CHUNK = 50
"""Batches per chunk sorted by length (see step 3 of the protocol)."""
WARMUP_FRACTION = 0.1
LOG_EVERY = 20


def main() -> None:
    args = _parse()
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    probe_s = 0.5 if args.quick else 2.0
    machine_start = {"loadavg": load(), "gflops": gflops(probe_s)}
    print(f"start: load {machine_start['loadavg']}, {machine_start['gflops']} GFLOP/s", flush=True)

    from transformers import AutoTokenizer

    from ethos.data.bbq import load_bbq_table, split_by_template
    from ethos.models.resolve import resolve_model_dir
    from ethos.stats.bbq_bias import (
        always_unknown_scores,
        bbq_bias_scores,
        majority_option,
        majority_option_scores,
    )

    table = load_bbq_table()
    parts = split_by_template(
        table,
        test_fraction=args.test_fraction,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    full_train = table.loc[parts == "train"]
    train = _stratified(full_train, args.train_rows, args.seed)
    test = _capped(table.loc[parts == "test"], args.max_eval_rows, args.seed)
    validation = _capped(table.loc[parts == "validation"], args.max_eval_rows, args.seed)
    print(
        f"rows: train {len(train)} of {len(full_train)}, validation {len(validation)}, "
        f"test {len(test)}",
        flush=True,
    )

    model_dir = str(resolve_model_dir("default"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = _lengths(tokenizer, train, with_context=True)
    max_length = args.max_length or math.ceil(np.percentile(lengths, 99))
    print(
        f"max_length {max_length} (train token lengths p50 {np.median(lengths):.0f}, "
        f"p99 {np.percentile(lengths, 99):.0f}, max {lengths.max()})",
        flush=True,
    )

    runs: dict[str, dict[str, Any]] = {}
    scores: dict[str, dict[str, Any]] = {}
    variants = [("minilm", True)] + ([] if args.skip_question_only else [("question_only", False)])
    for name, with_context in variants:
        run, predicted = _train_and_predict(
            name,
            args,
            tokenizer,
            model_dir,
            train,
            {"validation": validation, "test": test},
            with_context=with_context,
            max_length=max_length,
        )
        runs[name] = run
        scores[name] = bbq_bias_scores(test.assign(predicted=predicted["test"])).to_dict()
        print(bbq_bias_scores(test.assign(predicted=predicted["test"])), flush=True)
    scores["always_unknown"] = always_unknown_scores(test).to_dict()
    scores["majority_option"] = majority_option_scores(test, reference=train).to_dict()
    scores["majority_option"]["option"] = majority_option(train["label"])

    machine_end = {"loadavg": load(), "gflops": gflops(probe_s)}
    result = {
        "benchmark": "bbq_minilm",
        "updated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "model": "all-MiniLM-L6-v2 (bundled, ethos resolve_model_dir('default')), "
        "AutoModelForMultipleChoice",
        "settings": {
            "seed": args.seed,
            "split": {
                "test_fraction": args.test_fraction,
                "validation_fraction": args.validation_fraction,
                "seed": args.seed,
                "by": "template (category, question_index)",
            },
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "weight_decay": 0.01,
            "warmup_fraction": WARMUP_FRACTION,
            "schedule": "linear warm-up then linear decay",
            "max_length": max_length,
            "max_length_rule": "given" if args.max_length else "p99 of train token lengths",
            "max_steps": args.max_steps,
            "threads": torch.get_num_threads(),
        },
        "sizes": {
            "train_rows": len(train),
            "train_rows_available": len(full_train),
            "train_rows_by_category": train["category"].value_counts().sort_index().to_dict(),
            "validation_rows": len(validation),
            "test_rows": len(test),
            "test_rows_by_condition": test["context_condition"].value_counts().to_dict(),
            "train_token_lengths": {
                "p50": float(np.median(lengths)),
                "p99": float(np.percentile(lengths, 99)),
                "max": int(lengths.max()),
                "truncated_fraction": float((lengths > max_length).mean()),
            },
        },
        "skipped": {}
        if not args.skip_question_only
        else {"question_only": "--skip-question-only was given"},
        "runs": runs,
        "scores": scores,
        "headline": _headline(scores),
        "markdown": _markdown(_headline(scores)),
        "machine": {
            "start": machine_start,
            "end": machine_end,
            "cpus_visible": os.cpu_count(),
            "gflops_probe_s": probe_s,
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(result["markdown"])
    print(
        f"wrote {out} in {result['wall_s']} s; end load {machine_end['loadavg']}, "
        f"{machine_end['gflops']} GFLOP/s",
        flush=True,
    )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument(
        "--train-rows",
        type=int,
        default=4800,
        help="train rows kept, stratified by category (0: all)",
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=0, help="0: p99 of train lengths")
    parser.add_argument("--max-steps", type=int, default=0, help="0: all steps of the epochs")
    parser.add_argument(
        "--max-eval-rows",
        type=int,
        default=0,
        help="cap on validation and test rows, stratified (0: all)",
    )
    parser.add_argument("--skip-question-only", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 36 train rows, 1 step, 48 test rows"
    )
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.quick:
        args.train_rows, args.max_steps, args.max_eval_rows = 36, 1, 48
        args.batch_size = 4
    return args


def _stratified(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """About ``n`` rows, the same fraction of every category (all rows when ``n`` is 0)."""
    if n <= 0 or n >= len(rows):
        return rows
    return rows.groupby("category", group_keys=False).sample(frac=n / len(rows), random_state=seed)


def _capped(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most about ``n`` rows, stratified by category and context condition (``--quick``)."""
    if n <= 0 or n >= len(rows):
        return rows
    return rows.groupby(["category", "context_condition"], group_keys=False).sample(
        frac=n / len(rows), random_state=seed
    )


def _pairs(rows: pd.DataFrame, *, with_context: bool) -> tuple[list[str], list[str]] | list[str]:
    """The texts of every option, row-major (row 0's three options, then row 1's, ...)."""
    questions = np.repeat(rows["question"].to_numpy(), len(OPTIONS))
    options = rows.loc[:, list(OPTIONS)].to_numpy().ravel()
    second = [f"{q} {o}" for q, o in zip(questions, options, strict=True)]
    if not with_context:
        return second
    return np.repeat(rows["context"].to_numpy(), len(OPTIONS)).tolist(), second


def _encode(tokenizer: Any, rows: pd.DataFrame, *, with_context: bool, max_length: int) -> list:
    """Token ids per row: a list of three id lists, the context truncated first."""
    pairs = _pairs(rows, with_context=with_context)
    if with_context:
        first, second = pairs
        ids = tokenizer(first, second, truncation="only_first", max_length=max_length)["input_ids"]
    else:
        ids = tokenizer(pairs, truncation=True, max_length=max_length)["input_ids"]
    return [ids[i : i + len(OPTIONS)] for i in range(0, len(ids), len(OPTIONS))]


def _lengths(tokenizer: Any, rows: pd.DataFrame, *, with_context: bool) -> np.ndarray:
    pairs = _pairs(rows, with_context=with_context)
    args = pairs if with_context else (pairs,)
    return np.array([len(x) for x in tokenizer(*args)["input_ids"]])


def _batch(encoded: list, index: np.ndarray, pad_id: int) -> dict[str, Any]:
    """Rows ``index`` as (batch, 3, longest) tensors, padded on the right."""
    import torch

    width = max(len(ids) for i in index for ids in encoded[i])
    input_ids = torch.full((len(index), len(OPTIONS), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for b, i in enumerate(index):
        for o, ids in enumerate(encoded[i]):
            input_ids[b, o, : len(ids)] = torch.tensor(ids)
            mask[b, o, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _sortish_batches(encoded: list, batch_size: int, rng: np.random.Generator) -> list:
    """Shuffled row indices cut into batches of similar length (see the module docstring)."""
    order = rng.permutation(len(encoded))
    size = np.array([max(len(ids) for ids in row) for row in encoded])
    batches = []
    chunk = batch_size * SORTISH_CHUNK
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(size[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _load_model(model_dir: str) -> Any:
    """The bundled encoder with a fresh multiple-choice head, the expected warning silenced."""
    from transformers import AutoModelForMultipleChoice
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized head" is expected here, not news
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return AutoModelForMultipleChoice.from_pretrained(model_dir)
    finally:
        hf_logging.set_verbosity(verbosity)
        logging.getLogger("transformers").setLevel(logging.WARNING)


def _train_and_predict(
    name: str,
    args: argparse.Namespace,
    tokenizer: Any,
    model_dir: str,
    train: pd.DataFrame,
    evaluated: dict[str, pd.DataFrame],
    *,
    with_context: bool,
    max_length: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Fine-tune one model on ``train``; its run record and predicted options per part."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = _load_model(model_dir)
    encoded = _encode(tokenizer, train, with_context=with_context, max_length=max_length)
    labels = torch.tensor(train["label"].to_numpy(), dtype=torch.long)
    steps_per_epoch = math.ceil(len(encoded) / args.batch_size)
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(
        optimizer, max(1, int(WARMUP_FRACTION * total)), total
    )
    model.train()
    losses, step, t0 = [], 0, time.perf_counter()
    window_loss, window_correct, window_rows = 0.0, 0, 0
    while step < total:
        for index in _sortish_batches(encoded, args.batch_size, rng):
            batch = _batch(encoded, index, tokenizer.pad_token_id)
            out = model(**batch, labels=labels[index])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_loss += out.loss.item() * len(index)
            window_correct += int((out.logits.argmax(-1) == labels[index]).sum())
            window_rows += len(index)
            if step % LOG_EVERY == 0 or step == total:
                elapsed = time.perf_counter() - t0
                losses.append(
                    {
                        "step": step,
                        "loss": round(window_loss / window_rows, 4),
                        "train_accuracy": round(window_correct / window_rows, 4),
                    }
                )
                print(
                    f"[{name}] step {step}/{total} loss {losses[-1]['loss']:.3f} "
                    f"acc {losses[-1]['train_accuracy']:.3f} {elapsed / step:.2f} s/step "
                    f"eta {elapsed / step * (total - step):.0f} s",
                    flush=True,
                )
                window_loss, window_correct, window_rows = 0.0, 0, 0
            if step >= total:
                break
    train_s = time.perf_counter() - t0
    model.eval()
    predicted, accuracy, predict_s = {}, {}, {}
    for part, rows in evaluated.items():
        t1 = time.perf_counter()
        predicted[part] = _predict(model, tokenizer, rows, with_context, max_length)
        predict_s[part] = round(time.perf_counter() - t1, 1)
        accuracy[part] = float((predicted[part] == rows["label"].to_numpy()).mean())
        print(f"[{name}] {part} accuracy {accuracy[part]:.3f} ({predict_s[part]} s)", flush=True)
    run = {
        "input": "[CLS] context [SEP] question option [SEP]"
        if with_context
        else "[CLS] question option [SEP] (context removed)",
        "steps": step,
        "steps_per_epoch": steps_per_epoch,
        "train_s": round(train_s, 1),
        "s_per_step": round(train_s / max(step, 1), 3),
        "predict_s": predict_s,
        "accuracy": accuracy,
        "loss_trace": losses,
    }
    return run, predicted


def _predict(
    model: Any, tokenizer: Any, rows: pd.DataFrame, with_context: bool, max_length: int
) -> np.ndarray:
    """The argmax option of every row, batched by length (no padding wasted)."""
    import torch

    encoded = _encode(tokenizer, rows, with_context=with_context, max_length=max_length)
    size = np.array([max(len(ids) for ids in row) for row in encoded])
    order = np.argsort(size, kind="stable")
    predicted = np.empty(len(encoded), dtype=int)
    with torch.no_grad():
        for start in range(0, len(order), 32):
            index = order[start : start + 32]
            logits = model(**_batch(encoded, index, tokenizer.pad_token_id)).logits
            predicted[index] = logits.argmax(-1).numpy()
    return predicted


def _headline(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and bias per (category or overall) x (ambig, disambig) x model."""
    headline: dict[str, Any] = {}
    for model, result in scores.items():
        cells = {**result["by_category"], "overall": result["overall"]}
        for cell, both in cells.items():
            for condition in ("ambig", "disambig"):
                entry = headline.setdefault(cell, {}).setdefault(condition, {})
                entry[model] = {
                    "accuracy": _round(both[condition]["accuracy"]),
                    "bias": _round(both[condition]["bias"]),
                }
    return headline


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _markdown(headline: dict[str, Any]) -> str:
    """The headline as a Markdown table: accuracy / bias (x100) for each model."""
    models = list(next(iter(next(iter(headline.values())).values())))
    lines = [
        "| category | context | " + " | ".join(f"{m} acc / bias" for m in models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for cell, conditions in headline.items():
        for condition, entry in conditions.items():
            values = [f"{_fmt(entry[m]['accuracy'])} / {_fmt(entry[m]['bias'], 1)}" for m in models]
            lines.append(f"| {cell} | {condition} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
