"""Generating text from a causal LM, and the log-likelihood of a given response.

The one place text is generated: the held-out evaluation of a ``causal_lm`` run, the generation
audits and ``POST /v1/generate`` all call :meth:`Generator.generate`, so a model answers the same
way wherever it is asked. Prompts are framed as in training (:mod:`ethos.models.causal_lm`), a
prompt that would not fit the model's window with the tokens asked for is refused (rather than
silently cut from the left, which drops the instruction), and sampling is seeded, so the same
request gives the same text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ethos.config import GenerationConfig
from ethos.errors import ConfigError, ModelError
from ethos.models.causal_lm import Framing, check_fits, context_window

DEFAULT_BATCH = 16


@contextmanager
def _inference(model: Any) -> Iterator[torch.device]:
    """Evaluation mode and no gradients; the model's mode comes back afterwards."""
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with torch.inference_mode():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


@dataclass
class Generator:
    """A causal LM with its tokenizer, framing and default generation settings."""

    model: Any
    tokenizer: Any
    framing: Framing
    defaults: GenerationConfig

    @classmethod
    def of(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        chat_template: str = "auto",
        defaults: GenerationConfig | None = None,
    ) -> Generator:
        return cls(
            model, tokenizer, Framing.of(tokenizer, chat_template), defaults or GenerationConfig()
        )

    @property
    def window(self) -> int | None:
        return context_window(self.model, self.tokenizer)

    def prompt_ids(self, prompts: Sequence[str], max_new_tokens: int) -> list[list[int]]:
        """Each prompt's ids, refused (naming which) if it would not fit with the new tokens."""
        window = self.window
        encoded = []
        for number, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ModelError(f"prompt {number} is empty", hint="give the text to respond to")
            ids = self.framing.prompt_ids(prompt)
            what = "the prompt" if len(prompts) == 1 else f"prompt {number}"
            check_fits(len(ids), max_new_tokens, window, what=what)
            encoded.append(ids)
        return encoded

    def generate(
        self,
        prompts: Sequence[str],
        settings: GenerationConfig | None = None,
        *,
        seed: int = 0,
        batch_size: int = DEFAULT_BATCH,
    ) -> list[str]:
        """The response to each prompt (the new tokens only, special tokens dropped)."""
        settings = settings or self.defaults
        encoded = self.prompt_ids(prompts, settings.max_new_tokens)
        responses: list[str] = []
        with _inference(self.model) as device, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, len(encoded), batch_size):
                chunk = encoded[start : start + batch_size]
                responses += self._generate_batch(chunk, settings, device)
        return responses

    def _generate_batch(
        self, chunk: list[list[int]], settings: GenerationConfig, device: torch.device
    ) -> list[str]:
        # Left padding: every row's new tokens then start at the same column.
        pad = self.pad_id
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(chunk):
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p}
            if settings.temperature > 0
            else {"do_sample": False}
        )
        out = self.model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=settings.max_new_tokens,
            pad_token_id=pad,
            eos_token_id=getattr(self.tokenizer, "eos_token_id", None),
            **sampling,
        )
        new = out[:, width:].tolist()
        return [
            self.tokenizer.decode(self._until_eos(row), skip_special_tokens=True).strip()
            for row in new
        ]

    @property
    def pad_id(self) -> int:
        tokenizer = self.tokenizer
        for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    def _until_eos(self, row: list[int]) -> list[int]:
        eos = getattr(self.tokenizer, "eos_token_id", None)
        return row[: row.index(eos)] if eos is not None and eos in row else row

    def response_log_likelihood(self, prompt: str, response: str) -> tuple[float, int]:
        """log P(response | prompt) summed over the response's tokens (its end token included),
        and how many tokens that is: what fine-tuning raised, read back."""
        ids, n_prompt = self.framing.pair(prompt, response)
        check_fits(len(ids), 0, self.window, what="the prompt with its response")
        with _inference(self.model) as device:
            tensor = torch.tensor([ids], device=device)
            logits = self.model(input_ids=tensor).logits.float()
            log_probs = torch.log_softmax(logits[0, :-1], dim=-1)
            targets = tensor[0, 1:]
            picked = log_probs.gather(1, targets[:, None])[:, 0]
            return float(picked[n_prompt - 1 :].sum()), len(ids) - n_prompt


def load_causal_base(name_or_dir: str | Path) -> tuple[Any, Any]:
    """Tokenizer and model of a causal LM to fine-tune, refusing a model with no causal head
    (an encoder such as the bundled all-MiniLM-L6-v2 cannot generate)."""
    from ethos.models.language_model import load_language_model
    from ethos.models.resolve import resolve_model_dir

    model_dir = resolve_model_dir(str(name_or_dir))
    tokenizer, model, _ = load_language_model(Path(model_dir), "causal")
    return tokenizer, model


def load_run_generator(run: Any) -> Generator:
    """The fine-tuned model of a finished ``causal_lm`` run (a :class:`~ethos.rundir.RunDir`):
    its base with the saved LoRA adapter on top, or the full model it saved."""
    from ethos.models.lora import is_adapter_dir, load_adapter

    config = run.config
    if config.task != "causal_lm":
        raise ModelError(
            f"{run.path} is a {config.task} run; only a causal_lm run generates text",
            hint="train one with task: causal_lm",
        )
    try:
        if is_adapter_dir(run.model_dir):
            tokenizer, base = load_causal_base(config.model.name)
            model = load_adapter(base, run.model_dir)
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(run.model_dir))
        else:
            tokenizer, model = load_causal_base(str(run.model_dir))
    except OSError as exc:
        raise ModelError(
            f"the language model in {run.model_dir} cannot be loaded: {exc}",
            hint="the run directory may be incomplete; train again",
        ) from None
    model.eval()
    causal = config.causal
    return Generator.of(
        model, tokenizer, chat_template=causal.chat_template, defaults=causal.generation
    )


def require_causal_lm(name: str) -> None:
    """An encoder (BERT-like, the bundled MiniLM) cannot generate: say so before training."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from ethos.models.resolve import resolve_model_dir

    try:
        model_config = AutoConfig.from_pretrained(resolve_model_dir(name))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read model '{name}': {exc}") from None
    architectures = " ".join(getattr(model_config, "architectures", None) or [])
    model_type = getattr(model_config, "model_type", "?")
    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
        "CausalLM" in architectures or "LMHead" in architectures
    )
    if not causal:
        shown = architectures or model_type
        raise ConfigError(
            f"task causal_lm needs a causal language model (GPT-, Llama-, Qwen-like), but "
            f"model '{name}' is a {shown}" + (" (an encoder)" if "Bert" in shown else ""),
            hint="set model.name to the folder of a causal LM saved with its LM head; the "
            "bundled all-MiniLM-L6-v2 is a sentence encoder and cannot generate",
        )
