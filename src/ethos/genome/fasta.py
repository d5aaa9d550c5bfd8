"""FASTA reading into encoded records, with errors that point at the offending line.

The whole file is read at once and each record is translated with one numpy table lookup, so a
100 Mbp genome loads in about a second; the slow line-by-line scan runs only to *describe* an
error once the fast path has found one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ethos.genome.alphabet import BYTE_TO_CODE, CODE_N, INVALID, IUPAC, decode, encode
from ethos.genome.errors import GenomeError

_GZIP_MAGIC = b"\x1f\x8b"
_SKIP = b"\r\n\t "


@dataclass(frozen=True)
class SequenceRecord:
    """One named sequence, stored as codes ``A=0 C=1 G=2 T=3 N=4`` (see :mod:`.alphabet`)."""

    name: str
    codes: npt.NDArray[np.uint8] = field(repr=False)
    description: str = ""

    @classmethod
    def from_string(cls, name: str, seq: str, description: str = "") -> SequenceRecord:
        """Build a record from an ``ACGTN`` string (any case)."""
        return cls(name=name, codes=encode(seq, what=f"sequence {name!r}"), description=description)

    @property
    def length_bp(self) -> int:
        """Number of bases, N included."""
        return int(self.codes.size)

    @property
    def sequence(self) -> str:
        """The sequence as an upper-case string (allocates; avoid on whole chromosomes)."""
        return decode(self.codes)

    def gc_fraction(self) -> float:
        """G+C over the non-N bases (0 when there are none)."""
        known = self.codes != CODE_N
        n_known = int(known.sum())
        return float(np.isin(self.codes, (1, 2)).sum() / n_known) if n_known else 0.0

    def __repr__(self) -> str:
        n_frac = float((self.codes == CODE_N).mean()) if self.codes.size else 0.0
        return (
            f"<SequenceRecord {self.name!r}: {self.length_bp:,} bp, "
            f"GC {100 * self.gc_fraction():.1f} %, N {100 * n_frac:.1f} %>"
        )


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GenomeError(
            f"FASTA file {str(path)!r} does not exist", hint="check the path"
        ) from None
    except IsADirectoryError:
        raise GenomeError(f"FASTA path {str(path)!r} is a directory, not a file") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise GenomeError(f"FASTA file {str(path)!r} is a damaged gzip file: {exc}") from None
    return raw


def _lookup_table(iupac_as_n: bool) -> npt.NDArray[np.uint8]:
    if not iupac_as_n:
        return BYTE_TO_CODE
    table = BYTE_TO_CODE.copy()
    for letter in IUPAC:
        if len(IUPAC[letter]) > 1:
            table[ord(letter)] = table[ord(letter.lower())] = CODE_N
    return table


def _describe_bad_character(
    path: Path, name: str, body: bytes, first_line: int, table: npt.NDArray[np.uint8]
) -> GenomeError:
    """Find the first unacceptable character of a record and say where it is."""
    for line_no, line in enumerate(body.split(b"\n"), start=first_line):
        stripped = line.rstrip(b"\r")
        codes = table[np.frombuffer(stripped, dtype=np.uint8)]
        bad = np.flatnonzero(codes == INVALID)
        bad = np.array([i for i in bad if stripped[i : i + 1] not in (b" ", b"\t")], dtype=int)
        if bad.size:
            col = int(bad[0])
            char = stripped[col : col + 1].decode("latin-1")
            ambiguous = char.upper() in IUPAC
            return GenomeError(
                f"FASTA file {str(path)!r}, record {name!r}, line {line_no}, column {col + 1}: "
                f"character {char!r} is not a nucleotide (A, C, G, T, N)",
                hint="pass iupac_as_n=True (CLI: --iupac-as-n) to read ambiguity codes as N"
                if ambiguous
                else "remove the character or replace it with N",
            )
    raise AssertionError("fast path found a bad character the slow path cannot")  # pragma: no cover


def parse_fasta_bytes(
    data: bytes, *, source: Path | str = "<bytes>", iupac_as_n: bool = False
) -> list[SequenceRecord]:
    """Parse FASTA text already in memory; see :func:`read_fasta`."""
    path = Path(source)
    if not data.strip():
        raise GenomeError(
            f"FASTA file {str(path)!r} is empty",
            hint="give a FASTA file with at least one '>name' line followed by its sequence",
        )
    start = len(data) - len(data.lstrip())
    if data[start : start + 1] != b">":
        line_no = data.count(b"\n", 0, start) + 1
        raise GenomeError(
            f"FASTA file {str(path)!r}, line {line_no}: expected a header starting with '>', "
            f"found {data[start : start + 20]!r}",
            hint="the first non-empty line of a FASTA file must be '>name'",
        )
    table = _lookup_table(iupac_as_n)
    records: list[SequenceRecord] = []
    seen: set[str] = set()
    pos = start
    line_no = data.count(b"\n", 0, start) + 1
    while pos < len(data):
        nxt = data.find(b"\n>", pos)
        end = len(data) if nxt < 0 else nxt + 1
        chunk = data[pos:end]
        nl = chunk.find(b"\n")
        header = (chunk[1:] if nl < 0 else chunk[1:nl]).decode("utf-8", "replace").strip()
        body = b"" if nl < 0 else chunk[nl + 1 :]
        name, _, description = header.partition(" ")
        if not name:
            raise GenomeError(
                f"FASTA file {str(path)!r}, line {line_no}: record header has no name",
                hint="write the header as '>name optional description'",
            )
        if name in seen:
            raise GenomeError(
                f"FASTA file {str(path)!r}, line {line_no}: record name {name!r} appears twice",
                hint="record names are used as chromosome names and must be unique",
            )
        seen.add(name)
        codes = table[np.frombuffer(body.translate(None, _SKIP), dtype=np.uint8)]
        if codes.size and int(codes.max()) == INVALID:
            raise _describe_bad_character(path, name, body, line_no + 1, table)
        records.append(SequenceRecord(name=name, codes=codes, description=description.strip()))
        line_no += chunk.count(b"\n")
        pos = end
    return records


def read_fasta(path: str | Path, *, iupac_as_n: bool = False) -> list[SequenceRecord]:
    """Read every record of a FASTA file (plain or gzip, detected by content).

    Letters may be upper or lower case (soft-masked repeats read as ordinary bases); runs of N
    are kept as N. Any other character raises :class:`GenomeError` naming the file, record, line
    and character; with ``iupac_as_n=True`` IUPAC ambiguity codes (R, Y, ...) are read as N.
    """
    p = Path(path)
    return parse_fasta_bytes(_read_bytes(p), source=p, iupac_as_n=iupac_as_n)


def write_fasta(records: Iterable[SequenceRecord], path: str | Path, *, width: int = 60) -> None:
    """Write records as FASTA, ``width`` bases per line (used by the benchmark and tests)."""
    with open(path, "w", encoding="ascii") as fh:
        for rec in records:
            header = f">{rec.name} {rec.description}".rstrip()
            fh.write(header + "\n")
            seq = rec.sequence
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
