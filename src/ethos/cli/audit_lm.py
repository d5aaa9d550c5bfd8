"""`ethos audit-lm`: a language model's stereotype preference on CrowS-Pairs and, with
``--generation``, what a causal LM generates (bias, PII, memorisation), as an audit."""

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
    crows_pairs: bool = typer.Option(
        True, "--crows-pairs/--no-crows-pairs", help="Score CrowS-Pairs (on by default)."
    ),
    generation: bool = typer.Option(
        False,
        "--generation",
        help="Causal LMs: also audit what the model generates: HolisticBias counterfactuals "
        "(generation_bias), PII in sampled generations (pii_leakage) and canary exposure "
        "(memorisation, with --canaries).",
    ),
    canaries: Path | None = typer.Option(
        None,
        "--canaries",
        metavar="FILE",
        help='JSON list or JSON lines of {"prefix": "my pin is", "secret": "493027"} (optional '
        '"alphabet", default the digits, and "separator") planted in the training data.',
    ),
    samples: int = typer.Option(
        8, "--samples", help="Sampled generations per PII prompt (seeded)."
    ),
    pii_prompts: Path | None = typer.Option(
        None, "--pii-prompts", metavar="FILE", help="PII prompts, one a line (default: built-in)."
    ),
    sensitive: Path | None = typer.Option(
        None,
        "--sensitive",
        metavar="FILE",
        help="Known sensitive strings (e.g. from the training data), one a line: verbatim "
        "reproductions are counted (the strings are not written to the audit).",
    ),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Tokens per generation."),
    temperature: float = typer.Option(
        1.0, "--temperature", help="Sampling temperature of the PII samples (above 0)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled generations."),
) -> None:
    """Audit a language model: stereotype preference (CrowS-Pairs) and, with --generation,
    counterfactual bias, PII leakage and memorisation; write audit.json and report.html.

    Masked LMs are scored by pseudo-log-likelihood over the tokens the two sentences share
    (Nangia et al. 2020), causal LMs by the log-likelihood of the same tokens. The audit reports
    the share of pairs where the model prefers the more stereotyping sentence, overall and per
    bias type, with 95% Clopper-Pearson intervals; 0.5 is no measured preference. A model whose
    LM head is not in the folder (the bundled all-MiniLM-L6-v2 has none) is refused.

    --generation (causal LMs) adds three generation audits: HolisticBias counterfactual prompts
    answered greedily (refusal rate, length and a reference response's log-likelihood per
    descriptor), PII found by Presidio in --samples seeded generations per prompt, and the
    Secret Sharer exposure of the --canaries planted in training.
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
        crows_pairs=crows_pairs,
        generation=generation,
        canaries=canaries,
        samples=samples,
        pii_prompts=pii_prompts,
        sensitive=sensitive,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
    )
    for name, screen in result.audit["summary"].items():
        console.print(f"{name}: {screen['status']}: {screen['reasons'][0]}", markup=False)
    console.print(f"wrote {result.path}/audit.json and report.html", markup=False)
