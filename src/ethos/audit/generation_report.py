"""The generation audits' sections of ``report.html`` (:mod:`ethos.audit.report` lists them)."""

from __future__ import annotations

from typing import Any

from ethos.html import Cell, badge, show, table, tag


def _skipped(heading: str, anchor: str, section: dict[str, Any]) -> str | None:
    if "skipped" not in section:
        return None
    return f"<h2 id='{anchor}'>{heading}</h2>" + tag("p", section["skipped"], class_="note")


def render_generation_bias(section: dict[str, Any]) -> str:
    """Per axis: the largest gaps and its status; then every descriptor of every axis."""
    axes = section.get("axes") or {}
    summary = [
        [
            name,
            badge(a["status"], a["status"]),
            a["n_descriptors"],
            a["refusal_gap"]["value"],
            Cell(f"{a['refusal_gap']['highest']} / {a['refusal_gap']['lowest']}", "text"),
            a["ll_gap"]["per_token"],
            Cell(f"{a['ll_gap']['highest']} / {a['ll_gap']['lowest']}", "text"),
            a["length_gap"]["ratio"],
        ]
        for name, a in axes.items()
    ]
    detail = [
        [
            Cell(axis, "text"),
            Cell(name, "text"),
            d["n"],
            d["mean_words"],
            d["refusal_rate"],
            d["reference_ll"],
            d["gap_to_axis_mean"],
        ]
        for axis, a in axes.items()
        for name, d in a["descriptors"].items()
    ]
    settings = section.get("settings") or {}
    return (
        "<h2 id='generation_bias'>Generation bias (HolisticBias counterfactuals)</h2>"
        + tag(
            "p",
            f"{show(section.get('n_prompts'))} prompts from {section.get('source', '')}, answered "
            f"greedily (up to {show(settings.get('max_new_tokens'))} new tokens). The reference "
            f"response {section.get('reference', '')!r} ({show(section.get('reference_tokens'))} "
            "tokens) is scored after every prompt; a gap is how much likelier it is after one "
            "descriptor than another, in nats per reference token.",
            class_="note",
        )
        + table(
            [
                "axis",
                "status",
                "descriptors",
                "refusal gap",
                "most / least refused",
                "log-lik. gap / token",
                "likeliest / least",
                "length ratio",
            ],
            summary,
        )
        + tag("h3", "Descriptors")
        + table(
            [
                "axis",
                "descriptor",
                "prompts",
                "mean words",
                "refusal rate",
                "reference log-lik.",
                "gap to axis mean",
            ],
            detail,
        )
    )


def render_pii_leakage(section: dict[str, Any]) -> str:
    """Share of sampled generations with PII, hits by entity, masked examples, known strings."""
    low, high = section.get("share_ci95") or (None, None)
    entities = [[Cell(k, "text"), v] for k, v in (section.get("by_entity") or {}).items()]
    out = [
        "<h2 id='pii_leakage'>PII in generations</h2>",
        tag(
            "p",
            f"{show(section.get('generations'))} generations ({show(section.get('n_prompts'))} "
            f"prompts x {show(section.get('samples_per_prompt'))} samples, temperature "
            f"{show((section.get('settings') or {}).get('temperature'))}, seed "
            f"{show(section.get('seed'))}); {show(section.get('generations_with_pii'))} hold PII "
            f"(share {show(section.get('share'))}, 95% interval {show(low)}-{show(high)}).",
            class_="note",
        ),
    ]
    if entities:
        out.append(table(["entity", "hits"], entities, columns=["text"]))
    known = section.get("sensitive")
    if known:
        out.append(
            tag(
                "p",
                f"Known sensitive strings reproduced verbatim: {known['strings_reproduced']} of "
                f"{known['n_strings']} ({known['occurrences']} occurrences).",
            )
        )
    out.extend(tag("p", e, class_="note") for e in section.get("examples") or [])
    return "".join(out)


def render_memorisation(section: dict[str, Any]) -> str:
    """Each canary's exposure against its space's maximum."""
    skipped = _skipped("Memorisation (canary exposure)", "memorisation", section)
    if skipped is not None:
        return skipped
    rows = [
        [
            Cell(row["prefix"], "text"),
            row["space_size"],
            row["method"],
            row.get("rank"),
            row["exposure"],
            row["max_exposure"],
        ]
        for row in section.get("canaries") or []
    ]
    return (
        "<h2 id='memorisation'>Memorisation (canary exposure)</h2>"
        + tag(
            "p",
            "Secret Sharer exposure (Carlini et al. 2019): log2 of the candidate space minus "
            "log2 of the secret's rank among all candidates by the model's log-perplexity. A "
            f"canary the model never saw scores about {show(section.get('chance_exposure_bits'))}"
            " bits; one it memorised, near the maximum.",
            class_="note",
        )
        + table(["canary prefix", "candidates", "method", "rank", "exposure", "maximum"], rows)
    )
