"""`ethos audit RUN_DIR` on a causal-LM run: the generation audits, on the run's own data.

The same three sections ``ethos audit-lm --generation`` writes (:mod:`ethos.audit.generation`),
chosen from the run instead of flags, plus the informativeness every bundled policy asks for:

* ``generation_bias``: the bundled HolisticBias counterfactual prompts, answered greedily.
* ``pii_leakage``: samples for the run's test prompts (up to :data:`MAX_PII_PROMPTS`), scanned by
  Presidio; the *known sensitive strings* are the PII values Presidio finds in the training pairs
  (names only when full names, :func:`is_full_name`), so the section says whether the model
  repeats what it was trained on word for word.
* ``memorisation``: the exposure of the run's planted secrets (``causal_lm.canaries``), with the
  never-trained controls beside them (``controls``); skipped, and said so, for a run without.
* ``informativeness``: the fine-tuned model's test loss (response tokens) below the starting
  model's, with both recorded in metrics.json at training time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ethos.audit.errors import AuditError
from ethos.rundir import RunDir, RunDirError

MAX_PII_PROMPTS = 16
SAMPLES_PER_PROMPT = 4
MAX_SENSITIVE_SCAN = 5_000
"""Training texts scanned for known PII values (a seeded sample beyond that)."""
MAX_SENSITIVE = 500
CHECKS = ("informativeness", "generation_bias", "pii_leakage", "memorisation")


def informativeness(metrics: dict[str, Any]) -> dict[str, Any]:
    """Whether fine-tuning lowered the held-out loss below the starting model's."""
    test = metrics.get("test") or {}
    start = ((metrics.get("baselines") or {}).get("starting_model") or {}).get("test") or {}
    tuned, base = test.get("loss"), start.get("loss")
    rule = "test loss over response tokens below the starting model's"
    if tuned is None or base is None:
        return {
            "informative": 0,
            "rule": rule,
            "reasons": ["metrics.json lacks the test loss of the model or of its start"],
        }
    better = tuned < base
    return {
        "informative": int(better),
        "rule": rule,
        "loss": tuned,
        "starting_loss": base,
        "reasons": [
            f"test loss {tuned:.4f} against {base:.4f} before fine-tuning"
            + ("" if better else ": fine-tuning did not help on held-out pairs")
        ],
    }


def known_pii(run: RunDir, seed: int) -> list[str]:
    """Distinct PII values Presidio finds in the run's training pairs (prompts and responses)."""
    from ethos.text.pii import find_pii

    try:
        pairs = run.dataset().part("train")
    except RunDirError as exc:
        raise AuditError(exc.message, hint=exc.hint) from None
    texts = [*pairs["prompt"].astype(str), *pairs["response"].astype(str)]
    if len(texts) > MAX_SENSITIVE_SCAN:
        keep = np.random.default_rng(seed).permutation(len(texts))[:MAX_SENSITIVE_SCAN]
        texts = [texts[i] for i in sorted(keep)]
    found: dict[str, None] = {}
    for text, spans in zip(texts, find_pii(texts), strict=True):
        for span in spans:
            value = text[span.start : span.end]
            if span.entity_type != "PERSON" or is_full_name(value):
                found.setdefault(value, None)
    return list(found)[:MAX_SENSITIVE]


def is_full_name(value: str) -> bool:
    """At least two words of two or more letters: a first name alone identifies no one, and a
    model saying one again is no leak, while NER tags many single tokens as people."""
    words = [w for w in value.split() if sum(c.isalpha() for c in w) >= 2]
    return len(words) >= 2


def audit_causal_run(
    run: RunDir,
    *,
    out: Path | None = None,
    checks: list[str] | None = None,
    replace: bool = False,
) -> Any:
    """Audit a finished causal-LM run; write audit.json and report.html (default RUN_DIR/audit)
    and return the runner's :class:`~ethos.audit.runner.AuditResult`."""
    from ethos.audit.generation import generation_audit
    from ethos.audit.generation_memorisation import Canary, canary_exposure
    from ethos.audit.runner import AuditResult, run_audit_meta, write_audit
    from ethos.models.generation import load_run_generator

    unknown = [c for c in checks or () if c not in CHECKS]
    if unknown:
        raise AuditError(
            f"check(s) {', '.join(unknown)} do not apply to a causal_lm run",
            hint=f"a causal-LM run is audited by: {', '.join(CHECKS)}",
        )
    chosen = set(checks or CHECKS) | {"informativeness"}
    config = run.config
    started = time.perf_counter()
    stored = run.predictions()
    prompts = list(dict.fromkeys(stored.loc[stored["split"] == "test", "prompt"].astype(str)))
    if not prompts:
        raise AuditError("the run's test part is empty; there is nothing to audit")
    prompts = prompts[:MAX_PII_PROMPTS]
    generator = load_run_generator(run)
    canaries = run.secret_canaries()
    sensitive = known_pii(run, config.seed) if "pii_leakage" in chosen else []
    longest = max(len(generator.framing.prompt_ids(p)) for p in prompts)
    window = generator.window
    wanted = config.causal.generation.max_new_tokens
    new_tokens = wanted if window is None else max(1, min(wanted, window - longest))
    loaded = time.perf_counter() - started

    started = time.perf_counter()
    trained = None
    if canaries is not None and "memorisation" in chosen:
        trained = [_as_audit_canary(c, Canary) for c in canaries.trained()]
    sections, summary = generation_audit(
        generator,
        bias="generation_bias" in chosen,
        pii="pii_leakage" in chosen,
        pii_prompts=prompts,
        samples=SAMPLES_PER_PROMPT,
        sensitive=sensitive or None,
        canaries=trained,
        max_new_tokens=new_tokens,
        seed=config.seed,
    )
    if trained is not None and canaries is not None:
        controls = [_as_audit_canary(c, Canary) for c in canaries.controls()]
        measured = canary_exposure(generator, controls, seed=config.seed + 1)
        sections["memorisation"]["controls"] = {
            "n_canaries": measured["n_canaries"],
            "max_exposure": measured["max_exposure"],
            "mean_exposure": float(np.mean([r["exposure"] for r in measured["canaries"]])),
            "canaries": measured["canaries"],
        }
        sections["memorisation"]["repeats"] = canaries.repeats
        rows = sections["memorisation"]["canaries"]
        sections["memorisation"]["max_exposure_fraction"] = max(
            r["exposure"] / r["max_exposure"] for r in rows
        )
    elif "memorisation" in chosen:
        sections["memorisation"] = {"skipped": "the run planted no secrets (causal_lm.canaries)"}
    if "pii_leakage" in sections and not sensitive:
        # Nothing to repeat: zero reproduced, stated, so a policy's limit on it is met, not missing.
        sections["pii_leakage"]["sensitive"] = {
            "n_strings": 0,
            "strings_reproduced": 0,
            "occurrences": 0,
            "note": "Presidio found no PII in the training pairs",
        }
    for name in CHECKS[1:]:
        if name not in chosen:
            sections.pop(name, None)
    informative = informativeness(run.metrics or {})
    audit: dict[str, Any] = {"informativeness": informative, **sections}
    audit["meta"] = run_audit_meta(
        run,
        task="causal_lm",
        part="test",
        rows=len(prompts),
        groups=[],
        checks=[c for c in CHECKS if c in audit],
        seconds={"load": round(loaded, 3), "generation": round(time.perf_counter() - started, 3)},
        seed=config.seed,
    )
    audit["summary"] = {
        "informativeness": {
            "status": "green" if informative["informative"] else "red",
            "reasons": informative["reasons"],
            "screen": "red when " + informative["rule"] + " does not hold",
        },
        **{name: screen for name, screen in summary.items() if name in audit},
    }
    target = out if out is not None else run.audit_dir
    return AuditResult(write_audit(target, audit, replace=replace), audit)


def _as_audit_canary(canary: Any, kind: Any) -> Any:
    from ethos.data.secret_canaries import ALPHABET

    return kind(
        prefix=canary.prompt, secret=canary.secret, alphabet=ALPHABET, separator=canary.separator
    )
