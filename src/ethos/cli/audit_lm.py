"""`ethos audit-lm`: a language model's stereotype preference on CrowS-Pairs, as an audit."""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console


def audit_lm_command(
    model_dir: Path = typer.Argument(
        ...,
        metavar="MODEL_DIR",
        help="A Hugging Face model folder with a trained masked-LM or causal-LM head.",
    ),
    pairs: Path | None = typer.Option(
        None,
        "--pairs",
        metavar="CSV",
        help="Sentence pairs with CrowS-Pairs' columns (sent_more, sent_less, stereo_antistereo, "
        "bias_type); default: the bundled CrowS-Pairs, 1,508 pairs.",
    ),
    max_pairs: int | None = typer.Option(
        None, "--max-pairs", help="Score a random sample of this many pairs (seed 0)."
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="masked or causal; default: from the model's config (its architectures).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: MODEL_DIR.audit)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing audit folder."),
) -> None:
    """Audit a language model for stereotype preference (CrowS-Pairs); write audit.json and
    report.html.

    Masked LMs are scored by pseudo-log-likelihood over the tokens the two sentences share
    (Nangia et al. 2020), causal LMs by the log-likelihood of the same tokens. The audit reports
    the share of pairs where the model prefers the more stereotyping sentence, overall and per
    bias type, with 95% Clopper-Pearson intervals; 0.5 is no measured preference. A model whose
    LM head is not in the folder (the bundled all-MiniLM-L6-v2 has none) is refused.
    """
    from ethos import audit_language_model
    from ethos.errors import EthosError

    if kind is not None and kind not in ("masked", "causal"):
        raise EthosError(f"--kind {kind!r} is neither masked nor causal", hint="--kind masked")
    result = audit_language_model(
        model_dir,
        out=out,
        pairs=pairs,
        max_pairs=max_pairs,
        kind=kind,  # type: ignore[arg-type]
        replace=force,
    )
    screen = result.audit["summary"]["stereotypes"]
    console.print(f"stereotypes: {screen['status']}: {screen['reasons'][0]}", markup=False)
    console.print(f"wrote {result.path}/audit.json and report.html", markup=False)
