"""The model side of ``ethos serve`` for a causal-LM run: ``POST /v1/generate``.

:class:`ServedGenerator` is the run's :class:`~ethos.models.generation.Generator` (the one the
run's held-out evaluation and the generation audits call, so a prompt gets the same answer over
HTTP as in the run's predictions) plus what serving needs: the request's settings checked against
the run's defaults, one generation at a time, and the answer shapes of the API. Weights are
loaded by :func:`ethos.models.generation.load_run_generator` (loading stays in ``ethos.models``).

Every response is masked for personal data before it is answered (see ``app.py``): a language
model can repeat what it read in training, and what it says is what the caller and the log see.
There is no per-request opt-out.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from ethos.config import GenerationConfig
from ethos.errors import ModelError
from ethos.rundir import RunDir

ENDPOINT = "/v1/generate"


class TextGenerator(Protocol):
    """What serving needs of :class:`ethos.models.generation.Generator`."""

    defaults: GenerationConfig

    def generate(
        self, prompts: Sequence[str], settings: GenerationConfig | None = None, *, seed: int = 0
    ) -> list[str]: ...


class ServedGenerator:
    """A finished ``causal_lm`` run, ready to serve. Build it with :meth:`load`."""

    task = "causal_lm"
    endpoint = ENDPOINT
    quantization = None
    """No variants: a causal LM is served as trained (``ethos serve`` prints no variant check)."""

    def __init__(self, generator: TextGenerator, run: RunDir) -> None:
        self.generator = generator
        self.run = run
        self.config = run.config
        manifest = run.manifest
        self.model_id: str = str(manifest["run_id"])
        self._manifest = manifest
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, run: RunDir, *, backend: str = "torch", quantize: str = "none"
    ) -> ServedGenerator:
        """Load a finished causal-LM run; only the trained PyTorch model can be served."""
        from ethos.models.generation import load_run_generator

        if backend != "torch" or quantize != "none":
            raise ModelError(
                f"{run.path} is a causal_lm run, served as trained: --backend {backend} "
                f"--quantize {quantize} is for classification runs",
                hint="serve it without --backend and --quantize",
            )
        return cls(load_run_generator(run), run)

    @property
    def defaults(self) -> GenerationConfig:
        """The run's ``causal_lm.generation`` settings: what a request leaves out."""
        return self.generator.defaults

    def settings(
        self,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> GenerationConfig:
        """The run's defaults with the request's settings over them, validated again (a
        :class:`pydantic.ValidationError` names the field)."""
        given = {
            name: value
            for name, value in (
                ("max_new_tokens", max_new_tokens),
                ("temperature", temperature),
                ("top_p", top_p),
            )
            if value is not None
        }
        return GenerationConfig.model_validate({**self.defaults.model_dump(), **given})

    def generate(self, prompts: Sequence[str], settings: GenerationConfig, seed: int) -> list[str]:
        """Each prompt's response (unmasked: the app masks), one request at a time.

        Raises :class:`ModelError` for an empty prompt or one that does not fit the context
        window with ``settings.max_new_tokens``.
        """
        with self._lock:
            return list(self.generator.generate(list(prompts), settings, seed=seed))

    @property
    def context_window(self) -> int | None:
        window = getattr(self.generator, "window", None)
        return None if window is None else int(window)

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/model`` shows about the model: JSON-able, no file paths."""
        manifest = self._manifest
        model = manifest.get("model", {})
        return {
            "model_id": self.model_id,
            "task": self.task,
            "endpoint": ENDPOINT,
            "created_utc": manifest.get("created_utc"),
            "base_model": self.config.model.name,
            "format": model.get("format", "full"),
            "parameters": model.get("parameters"),
            "context_window": self.context_window,
            "generation_defaults": self.defaults.model_dump(),
            "chat_template": self.config.causal.chat_template,
            "backend": "torch",
            "responses": "personal data masked (Presidio), always",
            "data_fingerprint": manifest.get("data", {}).get("fingerprint"),
        }

    def __repr__(self) -> str:
        return f"<ServedGenerator {self.model_id}: {self.config.model.name}>"
