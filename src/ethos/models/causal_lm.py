"""How a prompt and its response become the token ids a causal LM trains and generates on.

One framing for training, generation, the audits and serving, so a model is prompted the way it
was fine-tuned:

* **With a chat template** (``causal_lm.chat_template: auto`` and a tokenizer that has one, as
  instruction-tuned Llama, Qwen and Mistral tokenizers do) the prompt is a user turn and the
  response the assistant's: ``apply_chat_template([user], add_generation_prompt=True)`` gives the
  prompt's ids, and the response follows them.
* **Without one** the tokenizer's own special tokens frame the prompt (a beginning-of-sequence
  token is put first when the tokenizer has one and did not add it) and the response follows it
  directly: write the separator into the prompts (``"Question: ...\\nAnswer:"``).

The response ends with the end-of-sequence token, so a fine-tuned model learns where to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ethos.errors import ModelError
from ethos.models.stereotype_likelihood import max_positions

IGNORE_INDEX = -100
"""Label of a token the loss skips (the prompt's, and padding): PyTorch's cross-entropy default."""


@dataclass(frozen=True)
class Framing:
    """How prompts are framed for one tokenizer (see the module docstring)."""

    tokenizer: Any
    chat: bool

    @classmethod
    def of(cls, tokenizer: Any, chat_template: str = "auto") -> Framing:
        has_template = bool(getattr(tokenizer, "chat_template", None))
        return cls(tokenizer, chat=chat_template == "auto" and has_template)

    def prompt_ids(self, prompt: str) -> list[int]:
        tokenizer = self.tokenizer
        if self.chat:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        ids = [int(i) for i in tokenizer(prompt, add_special_tokens=True)["input_ids"]]
        bos = getattr(tokenizer, "bos_token_id", None)
        if bos is not None and ids[:1] != [bos]:
            ids = [int(bos), *ids]
        return ids

    def response_ids(self, response: str) -> list[int]:
        ids = [int(i) for i in self.tokenizer(response, add_special_tokens=False)["input_ids"]]
        eos = getattr(self.tokenizer, "eos_token_id", None)
        return ids if eos is None else [*ids, int(eos)]

    def pair(self, prompt: str, response: str) -> tuple[list[int], int]:
        """The ids of prompt and response together, and how many of them are the prompt's."""
        prompt_ids = self.prompt_ids(prompt)
        return [*prompt_ids, *self.response_ids(response)], len(prompt_ids)


def context_window(model: Any, tokenizer: Any) -> int | None:
    """The most tokens (prompt and generated together) the model takes, if it says."""
    return max_positions(model, tokenizer)


def check_fits(
    n_prompt_tokens: int, new_tokens: int, window: int | None, *, what: str = "the prompt"
) -> None:
    """Refuse a prompt that, with the tokens to generate, does not fit the model's window."""
    if window is None or n_prompt_tokens + new_tokens <= window:
        return
    if n_prompt_tokens >= window:
        raise ModelError(
            f"{what} is {n_prompt_tokens} tokens long; the model's context holds {window}",
            hint="shorten the prompt",
        )
    raise ModelError(
        f"{what} ({n_prompt_tokens} tokens) and max_new_tokens {new_tokens} exceed the model's "
        f"context of {window} tokens",
        hint=f"ask for at most {window - n_prompt_tokens} new tokens, or shorten the prompt",
    )


def labels_for(ids: Sequence[int], n_prompt: int) -> list[int]:
    """Training labels: the response's tokens, the prompt's masked out of the loss."""
    return [IGNORE_INDEX] * n_prompt + [int(i) for i in ids[n_prompt:]]
