"""A gene-edit request: what is to be edited, how, and why, as declared for an ethics review.

A request is a small YAML or JSON file::

    name: hbb-e6v-correction          # identifies the request in the ledger
    cells: somatic                    # somatic | germline
    purpose: therapy                  # therapy | enhancement
    target_gene: HBB
    guide: CTTGCCCCACAGGGCAGTAA       # 20-nt protospacer, without the PAM
    pam: NGG                          # optional, IUPAC (default NGG)
    max_mismatches: 4                 # optional, off-target search budget (default 4)
    genome: genome.fa                 # optional here, or --genome; relative to this file
    coding_regions: coding.bed        # optional here, or --bed; relative to this file
    target_site: {chromosome: chr11, position: 5227002, strand: "-"}   # optional
    requested_by: Dr. A. Lee          # optional
    rationale: ...                    # optional free text

Everything is validated before any search runs: unknown keys (with a did-you-mean), unknown edit
kinds, a guide of the wrong length or with letters outside ACGT, and text that could disguise
itself in a terminal or a report (control characters, bidirectional overrides). The request's
digest covers what it declares, not the file's formatting or where its genome lies, so an
approval recorded for it (see :mod:`ethos.genome.review`) binds to its content.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ethos.genome.alphabet import PamPattern, validate_guide
from ethos.genome.errors import GenomeError
from ethos.genome.sites import Strand

#: A request is a few hundred bytes; anything this large is a mistake or an attack.
MAX_REQUEST_BYTES = 64 * 1024
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GENE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$")
#: C0/C1 controls (except tab and newline in free text), DEL, and the Unicode bidirectional
#: embeddings, overrides and isolates that can reorder displayed text ("Trojan Source").
_HOSTILE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_DIGEST_EXCLUDES = {"genome", "coding_regions"}


def _clean_text(value: str, what: str, *, max_chars: int, multiline: bool = False) -> str:
    text = value.strip()
    if len(text) > max_chars:
        raise ValueError(f"{what} has {len(text)} characters; the limit is {max_chars}")
    bad = _HOSTILE.search(text) or (None if multiline else re.search(r"[\t\n]", text))
    if bad:
        raise ValueError(
            f"{what} contains the control or direction character {bad.group(0)!r} at "
            f"position {bad.start() + 1}"
        )
    return text


class TargetSite(BaseModel):
    """The intended cut site: where the guide's perfect match lies (0-based, like hits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chromosome: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[!-~]+$")]
    position: Annotated[int, Field(ge=0)]
    strand: Strand


class EditRequest(BaseModel):
    """A declared gene edit (see the module docstring for the file format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Identifier of the request: letters, digits, '.', '_', '-'.")
    cells: Literal["somatic", "germline"] = Field(
        description="Somatic cells (the patient only) or the germline (inherited)."
    )
    purpose: Literal["therapy", "enhancement"] = Field(
        description="Treating or preventing a disease, or changing a trait beyond that."
    )
    target_gene: str = Field(description="Symbol of the gene to edit, as named in the BED file.")
    guide: str = Field(description="20-nt protospacer (A, C, G, T), without the PAM.")
    pam: str = Field(default="NGG", description="3' PAM in IUPAC codes.")
    max_mismatches: Annotated[int, Field(ge=0, le=6)] = Field(
        default=4, description="Off-target search budget (protospacer mismatches)."
    )
    genome: str | None = Field(default=None, description="Genome FASTA, relative to the file.")
    coding_regions: str | None = Field(
        default=None, description="BED file of coding regions, relative to the request file."
    )
    target_site: TargetSite | None = None
    requested_by: str | None = None
    rationale: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(
                f"{value[:80]!r} is not an identifier: use 1-64 letters, digits, '.', '_' or "
                "'-', starting with a letter or digit"
            )
        return value

    @field_validator("target_gene")
    @classmethod
    def _gene(cls, value: str) -> str:
        if not _GENE.match(value):
            raise ValueError(
                f"{value[:80]!r} is not a gene symbol: use 1-32 letters, digits, '.', '_', ':' "
                "or '-' (e.g. HBB, HLA-A)"
            )
        return value

    @field_validator("guide")
    @classmethod
    def _guide(cls, value: str) -> str:
        try:
            return validate_guide(value, length=20)
        except GenomeError as exc:
            raise ValueError(exc.message + (f" ({exc.hint})" if exc.hint else "")) from None

    @field_validator("pam")
    @classmethod
    def _pam(cls, value: str) -> str:
        try:
            return PamPattern.parse(value).pattern
        except GenomeError as exc:
            raise ValueError(exc.message) from None

    @field_validator("genome", "coding_regions")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _clean_text(value, "the path", max_chars=4096) or None

    @field_validator("requested_by")
    @classmethod
    def _requested_by(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value, "requested_by", max_chars=200)

    @field_validator("rationale")
    @classmethod
    def _rationale(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _clean_text(value, "rationale", max_chars=4000, multiline=True)

    @property
    def germline(self) -> bool:
        return self.cells == "germline"

    @property
    def enhancement(self) -> bool:
        return self.purpose == "enhancement"

    def digest(self) -> str:
        """sha256 of what the request declares (not its file layout or file locations)."""
        body = self.model_dump(mode="json", exclude=_DIGEST_EXCLUDES)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    @property
    def edit_id(self) -> str:
        """The ledger's run_id of this request's reviews and approvals: name and digest."""
        return f"edit-{self.name}-{self.digest()[:12]}"

    def __repr__(self) -> str:
        return (
            f"<EditRequest {self.name!r}: {self.cells} {self.purpose} of {self.target_gene}, "
            f"guide {self.guide}+{self.pam}, <= {self.max_mismatches} mismatches>"
        )


def load_edit_request(path: str | Path) -> EditRequest:
    """Read and validate an edit request (YAML, or JSON by the ``.json`` suffix)."""
    p = Path(path)
    where = f"edit request {str(p)!r}"
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_REQUEST_BYTES + 1)
    except FileNotFoundError:
        raise GenomeError(f"{where} does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise GenomeError(f"{where} is a directory, not a file") from None
    if len(raw) > MAX_REQUEST_BYTES:
        raise GenomeError(
            f"{where} is larger than {MAX_REQUEST_BYTES // 1024} KiB",
            hint="a request declares one edit in a few lines; see docs/genome.md",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GenomeError(f"{where} is not UTF-8 text") from None
    data = _parse(text, where, json_file=p.suffix.lower() == ".json")
    return parse_edit_request(data, where=where)


def _parse(text: str, where: str, *, json_file: bool) -> Any:
    if json_file:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise GenomeError(f"{where} is not valid JSON: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise GenomeError(f"{where} is not valid YAML{at}: {problem}") from None


def parse_edit_request(data: Any, *, where: str = "edit request") -> EditRequest:
    """Validate an already parsed request mapping, with every problem listed."""
    if not isinstance(data, dict):
        raise GenomeError(
            f"{where} must be a mapping of keys to values, got {type(data).__name__}",
            hint="write 'name: ...', 'cells: somatic', 'purpose: therapy', 'target_gene: ...', "
            "'guide: ...' on separate lines",
        )
    try:
        return EditRequest.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(err)}" for err in exc.errors())
        raise GenomeError(
            f"{where} is invalid:\n{problems}", hint="see docs/genome.md for the request format"
        ) from None


def _describe(err: Any) -> str:
    # A key the user wrote is shown quoted and cut short: it may hold anything.
    parts = [
        str(p) if re.fullmatch(r"[a-z_]{1,32}|[0-9]+", str(p)) else repr(str(p)[:40])
        for p in err["loc"]
    ]
    where = ".".join(parts) or "request"
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        fields = list(EditRequest.model_fields) + list(TargetSite.model_fields)
        close = difflib.get_close_matches(key, fields, n=1)
        return f"{where}: unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "missing":
        return f"{where}: required, missing"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{where}: {str(err['input'])[:80]!r} is not one of {allowed}"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"
