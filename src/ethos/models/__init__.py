"""Model resolution: the bundled default, a local Hugging Face directory, or a hub id."""

from ethos.models.resolve import DEFAULT_MODEL, resolve_model_dir

__all__ = ["DEFAULT_MODEL", "resolve_model_dir"]
