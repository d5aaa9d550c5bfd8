"""`ethos init --from FILE`: read a user's table and propose a commented run config for it.

A new user's first hour used to go on trial and error: which key names the label, which columns
may reach the model, what `text_field` or `data.sample` are. This module looks at the columns once
(names, distinct values, text lengths) and writes a config that ``ethos train`` accepts as it is,
with every key explained and the guesses marked CHECK, so the user reviews instead of discovers.

The guesses are deliberately conservative: columns named like a protected attribute are declared
sensitive (kept out of the model's text, audited), identifiers and free-form unique strings (names,
e-mails) are left out of the model input, and score-like columns are kept for auditing only.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ethos.config import looks_like_path
from ethos.data.records import field_label, format_value
from ethos.data.split import PARTS
from ethos.data.tables import file_separator, infer_format, read_table
from ethos.errors import DataError, EthosError

MAX_ROWS_READ = 100_000
"""Rows looked at to make the proposal; a bigger file gets ``data.sample`` proposed."""
SAMPLE_ABOVE = 20_000
PROPOSED_SAMPLE = 5_000
MAX_LABEL_CLASSES = 20
MAX_GROUP_VALUES = 15
FREE_TEXT_CHARS = 40
"""Mean length from which a string column is read as free text rather than a category."""
MAX_SHOWN = 60
YAML_WIDTH = 96

LABEL_NAMES = ("label", "target", "outcome", "y", "class", "decision", "result", "response")
"""Whole column names taken as the label, best first (compared lower-cased, without punctuation)."""
LABEL_WORDS = frozenset(
    {"label", "target", "outcome", "class", "decision", "approved", "default", "result"}
)
SENSITIVE_WORDS = frozenset(
    {
        "sex",
        "gender",
        "race",
        "racial",
        "ethnicity",
        "ethnic",
        "age",
        "religion",
        "religious",
        "nationality",
        "native",
        "citizenship",
        "disability",
        "disabled",
        "marital",
        "pregnancy",
        "pregnant",
        "orientation",
        "caste",
        "ancestry",
    }
)
ID_WORDS = frozenset({"id", "uuid", "identifier", "key"})
SCORE_WORDS = frozenset(
    {"score", "scores", "prediction", "predicted", "pred", "probability", "prob", "decile"}
)
SPLIT_NAMES = frozenset({"split", "fold", "partition", "subset"})


@dataclass(frozen=True)
class Column:
    """What the proposal needs to know about one column."""

    name: str
    distinct: int
    missing: int
    numeric: bool
    mean_chars: float
    values: tuple[str, ...]
    """Up to :data:`MAX_LABEL_CLASSES` + 1 distinct values as text, sorted."""

    @property
    def words(self) -> set[str]:
        return name_words(self.name)

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9]", "", self.name.lower())


@dataclass(frozen=True)
class Proposal:
    """The columns' roles in the proposed config, and what the user should check."""

    data_path: Path
    format: str
    separator: str | None
    rows_read: int
    complete: bool
    """False when the file has more than :data:`MAX_ROWS_READ` rows and only those were read."""
    columns: tuple[Column, ...]
    label: Column | None
    label_reason: str
    id_field: str | None
    text_field: str | None
    record_fields: tuple[str, ...]
    sensitive: tuple[str, ...]
    groups: tuple[str, ...]
    keep_columns: tuple[str, ...]
    split_column: str | None
    left_out: tuple[tuple[str, str], ...]
    """(column, why) for columns that are neither input, label, group nor kept."""
    checks: tuple[str, ...]


def name_words(name: str) -> set[str]:
    """Lower-case words of a column name: ``applicantAge`` and ``age_band`` both hold "age",
    ``percentage`` and ``page`` do not."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w}


def profile(table: pd.DataFrame) -> tuple[Column, ...]:
    """One :class:`Column` per column, from cells as the data layer reads them (as text)."""
    columns = []
    for name in table.columns:
        raw = table[name]
        present = raw[raw.notna()]
        texts = pd.Series([format_value(v) for v in present], dtype=object)
        counts = texts.value_counts()
        numeric = bool(len(present)) and _all_numbers(present)
        columns.append(
            Column(
                name=str(name),
                distinct=len(counts),
                missing=int(raw.isna().sum()),
                numeric=numeric,
                mean_chars=float(texts.str.len().mean()) if len(texts) else 0.0,
                values=tuple(sorted(counts.index[: MAX_LABEL_CLASSES + 1])),
            )
        )
    return tuple(columns)


def _all_numbers(values: pd.Series) -> bool:
    try:
        return bool(pd.to_numeric(values, errors="coerce").notna().all())
    except (TypeError, ValueError):  # nested JSON values (lists, objects)
        return False


def _choose_label(columns: Sequence[Column]) -> tuple[Column | None, str]:
    """The label: a low-cardinality column named like one, else the last two-valued column."""
    usable = [c for c in columns if 2 <= c.distinct <= MAX_LABEL_CLASSES]
    for wanted in LABEL_NAMES:
        named = next((c for c in usable if c.key == wanted), None)
        if named is not None:
            return named, f"named like a label, {named.distinct} values"
    worded = [c for c in usable if c.words & LABEL_WORDS and not c.words & SENSITIVE_WORDS]
    if worded:
        return worded[-1], f"named like a label, {worded[-1].distinct} values"
    binary = [
        c
        for c in usable
        if c.distinct == 2 and not c.words & (SENSITIVE_WORDS | ID_WORDS | SCORE_WORDS)
    ]
    if binary:
        return binary[-1], "the last column with two values"
    return None, "no column is named like a label or has two values"


def _is_identifier(column: Column, rows: int) -> bool:
    return bool(column.words & ID_WORDS) and column.distinct == rows and column.missing == 0


def _unique_strings(column: Column, rows: int) -> bool:
    """Short strings that never repeat: names, e-mails, codes. No use to a model, often PII."""
    return (
        rows >= 20
        and not column.numeric
        and column.distinct == rows
        and column.mean_chars < FREE_TEXT_CHARS
    )


def _is_free_text(column: Column, rows: int) -> bool:
    return (
        not column.numeric
        and column.mean_chars >= FREE_TEXT_CHARS
        and column.distinct >= max(2, rows // 2)
    )


def _is_split(column: Column) -> bool:
    return bool(column.words & SPLIT_NAMES) and set(column.values) <= set(PARTS)


@dataclass
class _Roles:
    """Roles being assigned, column by column; turned into a frozen Proposal at the end."""

    id_field: str | None = None
    split_column: str | None = None
    sensitive: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    inputs: list[Column] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def _assign(columns: Sequence[Column], label: Column | None, rows: int) -> _Roles:
    """Every column but the label gets one role, first match wins (order matters: an id named
    'applicant_id' is not input, a sensitive 'age' is not input even if numeric)."""
    roles = _Roles()
    for column in columns:
        if label is not None and column.name == label.name:
            continue
        if column.distinct == 0:
            roles.left_out.append((column.name, "every cell is empty"))
        elif roles.id_field is None and _is_identifier(column, rows):
            roles.id_field = column.name
        elif roles.split_column is None and _is_split(column):
            roles.split_column = column.name
        elif column.words & SENSITIVE_WORDS:
            _add_sensitive(roles, column)
        elif column.words & SCORE_WORDS:
            roles.keep.append(column.name)
        elif column.distinct == 1:
            roles.left_out.append((column.name, "a single value, nothing to learn from"))
        elif _unique_strings(column, rows):
            roles.left_out.append(
                (column.name, "every value differs (an identifier or a name?); not model input")
            )
        else:
            roles.inputs.append(column)
    return roles


def _add_sensitive(roles: _Roles, column: Column) -> None:
    """Sensitive columns stay out of the text; only those with few values are audit groups (a
    group per distinct age would give groups of a few rows and meaningless gaps)."""
    roles.sensitive.append(column.name)
    if column.distinct <= MAX_GROUP_VALUES:
        roles.groups.append(column.name)
        return
    roles.checks.append(
        f"{_shown(column.name)} has {column.distinct} values, too many to compare as groups: "
        "add a banded copy (e.g. age 18-25, 26-40, ...) to the file and list it in data.groups "
        "to audit it"
    )


def propose(data_path: Path, *, separator: str | None = None, encoding: str = "utf-8") -> Proposal:
    """Read ``data_path`` (its first :data:`MAX_ROWS_READ` rows) and give every column a role."""
    if not data_path.is_file():
        raise DataError(
            f"{data_path} does not exist"
            if not data_path.exists()
            else f"{data_path} is not a file",
            hint="pass the data file to propose a config for: ethos init --from data.csv",
        )
    try:
        fmt = infer_format(data_path)
    except DataError:
        raise DataError(
            f"cannot tell the format of {data_path} from its name",
            hint="ethos init --from reads .csv, .tsv, .jsonl/.ndjson and .parquet files "
            "(optionally .gz); rename the file to say which it is",
        ) from None
    if fmt == "csv" and separator is None:
        separator = file_separator(data_path, encoding=encoding)
    table = read_table(
        data_path,
        fmt=fmt,
        encoding=encoding,
        separator=separator,
        max_rows=MAX_ROWS_READ + 1,
    )
    complete = len(table) <= MAX_ROWS_READ
    table = table.iloc[:MAX_ROWS_READ]
    rows = len(table)
    columns = profile(table)
    label, reason = _choose_label(columns)
    roles = _assign(columns, label, rows)
    text_field, record_fields = _model_input(roles.inputs, rows)
    checks = _label_checks(label, reason) + roles.checks
    if not record_fields and text_field is None:
        checks.append(
            "no column is left to be model input: set data.record_fields (table columns) or "
            "data.text_field (one free-text column)"
        )
    if not roles.sensitive:
        checks.append(
            "no column is named like a protected attribute (sex, race, age, ...): list yours in "
            "data.sensitive, or fairness cannot be audited"
        )
    if roles.keep:
        checks.append(
            f"{_listing(roles.keep)} look like scores or predictions: kept for the audit only, "
            "never model input"
        )
    return Proposal(
        data_path=data_path,
        format=fmt,
        separator=separator if fmt == "csv" else None,
        rows_read=rows,
        complete=complete,
        columns=columns,
        label=label,
        label_reason=reason,
        id_field=roles.id_field,
        text_field=text_field,
        record_fields=tuple(record_fields),
        sensitive=tuple(roles.sensitive),
        groups=tuple(roles.groups),
        keep_columns=tuple(roles.keep),
        split_column=roles.split_column,
        left_out=tuple(roles.left_out),
        checks=tuple(checks),
    )


def _model_input(inputs: Sequence[Column], rows: int) -> tuple[str | None, list[str]]:
    """One free-text column alone is ``text_field``; otherwise all inputs are record fields,
    free text last so that truncation at ``max_length`` cuts it rather than the short fields."""
    free = [c for c in inputs if _is_free_text(c, rows)]
    if len(inputs) == 1 and free:
        return inputs[0].name, []
    short = [c.name for c in inputs if c not in free]
    return None, short + [c.name for c in free]


def _label_checks(label: Column | None, reason: str) -> list[str]:
    if label is None:
        return [
            f"CHECK data.label: {reason}; name the column to predict before training "
            "(a classifier needs one with at least two values)"
        ]
    found = [f"data.label is {_shown(label.name)} ({reason}): check that it is the outcome"]
    if label.missing:
        found.append(
            f"{_shown(label.name)} is empty in {label.missing} rows: drop or fill them (a run "
            "never guesses labels)"
        )
    return found


# --- rendering --------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """Text safe inside a YAML comment: YAML refuses non-printable characters even there, and a
    line break would end the comment."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _shown(name: str) -> str:
    """A column name for a comment or a message: quoted, made printable, long ones cut."""
    text = _printable(name)
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..."
    return f"'{text}'"


def _listing(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(_shown(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


YAML_LINE_BREAKS = frozenset("\n\r\x85\u2028\u2029")


class _Dumper(yaml.SafeDumper):
    """PyYAML writes NEL and the Unicode line separators raw inside quoted scalars and folds
    them into spaces when reading back; a name holding one is written double-quoted, escaped."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if YAML_LINE_BREAKS & set(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def _yaml_entry(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` as YAML lines at ``indent``, quoting whatever needs it (odd column names,
    yes/no/null, numbers-as-text); lists in flow style, wrapped."""
    collection = isinstance(value, list | dict)
    dumped = yaml.dump(
        {key: value},
        Dumper=_Dumper,
        default_flow_style=None if collection else False,  # None: flow style for leaves only
        allow_unicode=True,
        sort_keys=False,
        width=YAML_WIDTH - indent - 24 if collection else 10**9,  # a long name stays on one line
    )
    pad = " " * indent
    return [pad + line for line in dumped.rstrip("\n").split("\n")]


def _commented(lines: list[str], indent: int) -> list[str]:
    """Lines turned into comments at ``indent``: deleting "# " gives back the YAML."""
    pad = " " * indent
    return [f"{pad}# {line[indent:]}" for line in lines]


def _comment(text: str, indent: int) -> list[str]:
    """A comment paragraph wrapped to the file's width (the text must be comment-safe)."""
    pad = " " * indent + "# "
    words = text.split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        if current and len(pad) + len(current) + 1 + len(word) > YAML_WIDTH:
            lines.append(pad + current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(pad + current)
    return lines


def _entry(
    key: str, value: Any, explain: str, *, indent: int = 2, active: bool = True
) -> list[str]:
    """An explained key: the comment, then the key (commented out when not ``active``)."""
    lines = _yaml_entry(key, value, indent)
    return _comment(explain, indent) + (lines if active else _commented(lines, indent))


def source_for(data_path: Path, config_path: Path) -> str:
    """``data.source`` as written: relative to the config's folder when the data is inside it
    (the pair can be moved together), else absolute."""
    data = data_path.resolve()
    folder = config_path.resolve().parent
    if data.is_relative_to(folder):
        relative = os.path.relpath(data, folder)
        return relative if looks_like_path(relative) else f"./{relative}"
    return str(data)


def estimate_max_length(proposal: Proposal) -> int:
    """Tokens per example of the mean row, roughly (3.5 characters a token for "name: value;"
    text), with 10 % headroom, rounded up to a multiple of 32, between 64 and 512."""
    by_name = {c.name: c for c in proposal.columns}
    if proposal.text_field is not None:
        chars = by_name[proposal.text_field].mean_chars
    else:
        chars = sum(
            len(field_label(f, {})) + 4 + by_name[f].mean_chars for f in proposal.record_fields
        )
    tokens = chars / 3.5 * 1.1
    return int(min(512, max(64, 32 * math.ceil(tokens / 32))))


def render(proposal: Proposal, config_path: Path) -> str:
    """The commented YAML config for ``proposal``, to be written at ``config_path``."""
    lines = _header(proposal, config_path)
    lines += ["data:", *_data_section(proposal, config_path), ""]
    lines += _intended_use_section()
    lines += _grounding_section()
    lines += _model_section(proposal)
    lines += _train_section()
    lines += _closing_section()
    return "\n".join(lines) + "\n"


def _header(proposal: Proposal, config_path: Path) -> list[str]:
    read = (
        f"{proposal.rows_read} rows"
        if proposal.complete
        else f"its first {proposal.rows_read} rows"
    )
    name = _shown(proposal.data_path.name)
    lines = _comment(
        f"ethos run config proposed by `ethos init --from` for {name} (read {read}, "
        f"{len(proposal.columns)} columns). Every key is explained; optional ones are commented "
        "out. Review the points below, then run:",
        0,
    )
    config_name = _printable(config_path.name)
    lines += [
        f"#   ethos data describe {config_name}   # load, validate and summarise the data",
        f"#   ethos train {config_name}           # or `ethos run` (train, audit, gate, card)",
    ]
    if proposal.checks:
        lines.append("#")
        lines.append("# CHECK:")
        for check in proposal.checks:
            lines += _comment(f"- {check}", 0)
    lines.append("")
    return lines


def _data_section(proposal: Proposal, config_path: Path) -> list[str]:
    lines = _entry(
        "source",
        source_for(proposal.data_path, config_path),
        "The table to learn from: a .csv/.tsv, .jsonl or .parquet file (optionally .gz), "
        "relative to this file's folder; or a bundled set (compas, adult, german, pubmedqa).",
    )
    lines += _entry(
        "format",
        proposal.format,
        "csv, jsonl or parquet; left out, it comes from the file name.",
        active=False,
    )
    lines += _separator_entry(proposal)
    lines += _entry("encoding", "utf-8", "Text encoding of a CSV or JSONL file (e.g. latin-1).")
    lines += _label_entries(proposal)
    lines += _entry(
        "id_field",
        proposal.id_field or "id",
        "A column of unique row ids (they fix the split); left out, rows are numbered.",
        active=proposal.id_field is not None,
    )
    lines += _input_entries(proposal)
    lines += _group_entries(proposal)
    lines += _entry(
        "keep_columns",
        list(proposal.keep_columns),
        "Columns carried beside the predictions for the audit only (e.g. a vendor's score); "
        "never model input.",
    )
    lines += _entry(
        "forbidden_fields",
        [],
        "Columns that must never be model input (an outcome recorded after the decision would "
        "leak the answer); listing one in record_fields is then an error.",
    )
    lines += _entry(
        "min_group_size",
        30,
        "Groups smaller than this are flagged: their fairness numbers are unreliable.",
    )
    large = not proposal.complete or proposal.rows_read > SAMPLE_ABOVE
    lines += _entry(
        "sample",
        PROPOSED_SAMPLE if large else 1000,
        "Train on a stratified sample of this many rows (quick first runs on a CPU); left out, "
        "every row is used."
        + (" Proposed because the file is large: remove it for the real run." if large else ""),
        active=large,
    )
    lines += _entry(
        "extra_train_source",
        "more_rows.csv",
        "A second file with the same columns, used for training only (never evaluated on).",
        active=False,
    )
    return lines + _split_entries(proposal)


def _separator_entry(proposal: Proposal) -> list[str]:
    explain = (
        "The character between a CSV's fields: ',' ';' '|' or tab; left out, it is detected "
        "from the first lines."
    )
    if proposal.separator is None:
        return _entry("separator", ",", explain, active=False)
    if proposal.separator != ",":
        explain += " Detected for this file:"
    value = "tab" if proposal.separator == "\t" else proposal.separator
    return _entry("separator", value, explain, active=proposal.separator != ",")


def _label_entries(proposal: Proposal) -> list[str]:
    label = proposal.label
    lines = _entry(
        "label",
        label.name if label else "outcome",
        "The column to predict"
        + (f" (CHECK: guessed, {proposal.label_reason})." if label else " (CHECK: not found)."),
        active=label is not None,
    )
    values = list(label.values) if label else ["no", "yes"]
    known = label is not None and proposal.complete and label.distinct <= MAX_LABEL_CLASSES
    lines += _entry(
        "label_names",
        values,
        "Class names in class order (the first is class 0); default: the values sorted. "
        "Integer labels 0..n-1 can be named by position: [repaid, defaulted] names 0 and 1. "
        "Quote yes/no/true/false, or YAML reads them as booleans.",
        active=known,
    )
    return lines


def _input_entries(proposal: Proposal) -> list[str]:
    explain_records = (
        'Model input from a table: these columns become one text per row, "name: value; ...", in '
        "this order. Give record_fields or text_field, not both."
    )
    explain_text = "Model input from free text: one column of text per row."
    if proposal.text_field is not None:
        lines = _entry("text_field", proposal.text_field, explain_text)
        lines += _entry("record_fields", [], explain_records, active=False)
    else:
        lines = _entry("record_fields", list(proposal.record_fields), explain_records)
        lines += _entry("text_field", "text", explain_text, active=False)
    lines += _entry(
        "text_pair_field",
        "passage",
        "A second text read together with text_field (question + passage).",
        active=False,
    )
    lines += _entry(
        "field_names",
        {"amount": "loan amount"},
        "Display names for record fields in the text (default: the column name with spaces).",
        active=False,
    )
    lines += _entry(
        "value_names",
        {"purpose": {"A40": "new car"}},
        "Words for coded values in the text, per column.",
        active=False,
    )
    if proposal.left_out:
        listing = "; ".join(f"{_shown(name)}: {why}" for name, why in proposal.left_out[:20])
        lines += _comment(f"Not used: {listing}.", 2)
    return lines


def _group_entries(proposal: Proposal) -> list[str]:
    lines = _entry(
        "sensitive",
        list(proposal.sensitive),
        "Protected attributes (CHECK: guessed from the names): kept out of the model's text, "
        "audited for fairness.",
    )
    lines += _entry(
        "include_sensitive_in_text",
        False,
        "true puts the sensitive attributes into the model's text; the manifest records it.",
    )
    groups = list(proposal.groups)
    differ = set(groups) != set(proposal.sensitive)
    lines += _entry(
        "groups",
        groups,
        "The columns whose groups the audit compares; left out, the sensitive attributes.",
        active=differ,
    )
    return lines


def _split_entries(proposal: Proposal) -> list[str]:
    lines = ["  split:"]
    lines += _entry("validation", 0.15, "Share of rows for model selection.", indent=4)
    lines += _entry("test", 0.15, "Share held out for the final metrics and the audit.", indent=4)
    lines += _entry(
        "seed", 13, "The split's seed (rows are ranked by a hash of seed and id).", indent=4
    )
    lines += _entry(
        "group_aware",
        True,
        "Stratify by label and group, so every group appears in every part.",
        indent=4,
    )
    lines += _entry(
        "column",
        proposal.split_column or "split",
        "A column of train/validation/test values, instead of a random split.",
        indent=4,
        active=proposal.split_column is not None,
    )
    return lines


def _intended_use_section() -> list[str]:
    lines = _comment(
        "What the model is for and who should use it: the model card prints it as its intended "
        "use (a plain string is the purpose). Fill it in before sharing a model.",
        0,
    )
    example = {
        "purpose": "Rank loan applications for review by a credit officer.",
        "users": "credit officers",
        "out_of_scope": ["automated rejection without human review"],
    }
    return [*lines, *_commented(_yaml_entry("intended_use", example, 0), 0), ""]


def _grounding_section() -> list[str]:
    lines = _comment(
        "Grounded question answering (a question + passage reader): answer from the passages "
        "retrieved from a knowledge base (`ethos kb build`), cite them, abstain when none is "
        "close; see docs/knowledge-base.md.",
        0,
    )
    example = {"knowledge_base": "kb/passages", "top_k": 5, "coverage": 0.95}
    return [*lines, *_commented(_yaml_entry("grounding", example, 0), 0), ""]


def _model_section(proposal: Proposal) -> list[str]:
    lines = ["model:"]
    lines += _entry(
        "name",
        "default",
        "default is the bundled all-MiniLM-L6-v2; or a local model folder.",
    )
    lines += _entry(
        "max_length",
        estimate_max_length(proposal),
        "Tokens per example (estimated from the rows); longer texts are cut, and `ethos data "
        "describe` counts how many.",
    )
    lines += [""]
    lines += _comment(
        "classification; or extractive_qa (SQuAD-format JSON), multiple_choice (a `choices:` "
        "section), causal_lm (a `causal_lm:` section): see docs/language-models.md.",
        0,
    )
    return [*lines, "task: classification", ""]


def _train_section() -> list[str]:
    lines = ["train:"]
    lines += _entry("epochs", 3, "Passes over the training rows.")
    lines += _entry("batch_size", 32, "Examples per step.")
    lines += _entry("learning_rate", 5.0e-5, "AdamW step size, with linear warm-up and decay.")
    lines += _entry(
        "max_steps",
        20,
        "Stop after this many optimizer steps: a quick smoke run before the real one.",
        active=False,
    )
    lines += _entry("class_weights", "balanced", "Weigh rare classes up in the loss.", active=False)
    lines += _entry(
        "early_stopping",
        {"metric": "macro_f1", "patience": 2},
        "Stop when the validation metric stops improving.",
        active=False,
    )
    lines += _entry(
        "peft",
        {"method": "lora", "r": 8},
        "LoRA adapters instead of training every weight.",
        active=False,
    )
    lines += _entry(
        "fairness",
        {"method": "reweighing"},
        "Bias mitigation (reweighing, penalty or thresholds); needs data.sensitive.",
        active=False,
    )
    lines += _entry(
        "privacy",
        {"epsilon": 8},
        "Differentially private training (DP-SGD) with this privacy budget.",
        active=False,
    )
    return [*lines, ""]


def _closing_section() -> list[str]:
    lines = _entry(
        "policy",
        "credit",
        "The ethics policy `ethos run` and `ethos gate` judge the run by: medical, "
        "criminal-justice, credit, or a policy YAML file.",
        indent=0,
        active=False,
    )
    lines += _entry("seed", 42, "Seed for model initialisation and batch order.", indent=0)
    lines += _entry("output_dir", "runs", "Where run directories are created.", indent=0)
    return lines


def write_config_from_file(
    data_path: Path,
    config_path: Path,
    *,
    separator: str | None = None,
    encoding: str = "utf-8",
    force: bool = False,
) -> Proposal:
    """Propose a config for ``data_path`` and write it to ``config_path``.

    The config is validated before it is written, so a proposal that ``ethos train`` would
    refuse (an odd column name the YAML did not survive) is a bug here, not the user's problem.
    """
    if config_path.exists() and not force:
        raise EthosError(
            f"{config_path} already exists", hint="choose another path or pass --force"
        )
    if config_path.resolve() == data_path.resolve():
        raise EthosError(
            f"{config_path} is the data file itself; writing the config there would replace it",
            hint="give the config another name, e.g. ethos.yaml",
        )
    if separator is not None:
        separator = _separator_option(separator)
    proposal = propose(data_path, separator=separator, encoding=encoding)
    text = render(proposal, config_path)
    _check_round_trip(text, config_path)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(text, encoding="utf-8")
    return proposal


def _separator_option(value: str) -> str:
    from ethos.config import DataConfig

    try:
        separator = DataConfig(source="x.csv", separator=value).separator
    except ValueError:
        separator = None
    if separator is None:
        raise DataError(
            f"--separator {value!r} is not one character",
            hint="use ',' ';' '|' or tab",
        )
    return separator


def _check_round_trip(text: str, config_path: Path) -> None:
    from ethos.config import parse_yaml_mapping, validate_config

    raw = parse_yaml_mapping(text, config_path)
    validate_config(raw, config_path, text)


def summary_lines(proposal: Proposal) -> list[str]:
    """What `ethos init --from` prints after writing: each role in one line, then the checks."""
    label = proposal.label
    lines = [
        "  label:  "
        + (
            f"{_shown(label.name)} (values {', '.join(map(_shown, label.values[:6]))})"
            if label
            else "not found (set data.label)"
        )
    ]
    if proposal.text_field is not None:
        lines.append(f"  input:  text column {_shown(proposal.text_field)}")
    else:
        count = len(proposal.record_fields)
        lines.append(f"  input:  {count} columns as text: {_listing(proposal.record_fields, 6)}")
    if proposal.sensitive:
        lines.append(f"  sensitive (kept out of the text): {_listing(proposal.sensitive)}")
    if proposal.groups:
        lines.append(f"  audit groups: {_listing(proposal.groups)}")
    lines += [f"  check: {check}" for check in proposal.checks]
    return lines
