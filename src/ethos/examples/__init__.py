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


def example_text(name: str) -> str:
    """The commented YAML of one example."""
    if name not in example_names():
        raise EthosError(
            f"there is no example named '{name}'",
            hint=f"choose one of: {', '.join(example_names())}",
        )
    return (resources.files("ethos.examples") / f"{name}.yaml").read_text(encoding="utf-8")
