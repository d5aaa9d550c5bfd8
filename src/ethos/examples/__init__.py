"""Runnable example configs, also the templates `ethos init --example NAME` writes."""

from __future__ import annotations

from importlib import resources

from ethos.errors import EthosError


def example_names() -> list[str]:
    """Names of the bundled example configs (file stems)."""
    folder = resources.files("ethos.examples")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def example_text(name: str, *, absolute_data: bool = False) -> str:
    """The commented YAML of one example.

    With ``absolute_data``, a data file shipped beside the examples (``source: data/...``) is
    named by its installed location, so the config still runs when written somewhere else.
    """
    if name not in example_names():
        raise EthosError(
            f"there is no example named '{name}'",
            hint=f"choose one of: {', '.join(example_names())}",
        )
    folder = resources.files("ethos.examples")
    text = (folder / f"{name}.yaml").read_text(encoding="utf-8")
    if absolute_data:
        text = text.replace("source: data/", f"source: {folder / 'data'}/")
    return text
