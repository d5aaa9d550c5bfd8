"""FASTA reading into encoded records, with errors that point at the offending line.

One parser, :func:`fasta_pieces`, turns blocks of FASTA bytes into record headers and runs of
codes; :func:`read_fasta` feeds it the whole file at once (a 100 Mbp genome loads in about a
second) and :mod:`.fasta_stream` feeds it fixed-size blocks, so both accept and refuse exactly
the same files with the same messages. Each block is translated with one numpy table lookup;
the slow line-by-line scan runs only to *describe* an error once the fast path has found one.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import numpy.typing as npt

from ethos.genome.alphabet import BYTE_TO_CODE, CODE_N, INVALID, IUPAC, decode, encode
from ethos.genome.errors import GenomeError

_GZIP_MAGIC = b"\x1f\x8b"
_SKIP = b"\r\n\t "
_HEADER = ord(">")
_EXCERPT_BYTES = 20  # how much of a line that should have been a header an error quotes
#: Block size of a streamed read: large enough that numpy's per-call overhead vanishes.
DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024


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


class FastaPiece(NamedTuple):
    """The next bases of record ``record_index``; a record's first piece may be empty."""

    record_index: int
    name: str
    description: str
    codes: npt.NDArray[np.uint8]


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """The raw file and the stream to read (the raw file itself, or a gzip reader over it)."""
    try:
        raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - read_blocks closes it
    except FileNotFoundError:
        raise GenomeError(
            f"FASTA file {str(path)!r} does not exist", hint="check the path"
        ) from None
    except IsADirectoryError:
        raise GenomeError(f"FASTA path {str(path)!r} is a directory, not a file") from None
    gzipped = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw  # type: ignore[assignment]
    return raw, stream


def read_blocks(path: str | Path, *, block_bytes: int | None) -> Iterator[bytes]:
    """The file's bytes (gunzipped when it is gzip, detected by content) in blocks.

    ``block_bytes=None`` reads everything in one block. A damaged gzip stream is a
    :class:`GenomeError` naming the file, wherever in the file the damage is found.
    """
    p = Path(path)
    raw, stream = _open(p)
    try:
        while True:
            try:
                block = stream.read(-1 if block_bytes is None else block_bytes)
            except (OSError, EOFError) as exc:
                raise GenomeError(f"FASTA file {str(p)!r} is a damaged gzip file: {exc}") from None
            if not block:
                return
            yield block
            if block_bytes is None:
                return
    finally:
        stream.close()
        raw.close()


def _lookup_table(iupac_as_n: bool) -> npt.NDArray[np.uint8]:
    if not iupac_as_n:
        return BYTE_TO_CODE
    table = BYTE_TO_CODE.copy()
    for letter in IUPAC:
        if len(IUPAC[letter]) > 1:
            table[ord(letter)] = table[ord(letter.lower())] = CODE_N
    return table


def _describe_bad_character(
    path: Path,
    name: str,
    body: bytes,
    first_line: int,
    table: npt.NDArray[np.uint8],
    first_column: int = 0,
) -> GenomeError:
    """Find the first unacceptable character of ``body`` and say where it is.

    ``body`` starts on line ``first_line`` at 0-based column ``first_column`` (not 0 when a
    streamed block boundary fell inside a line).
    """
    lines = body.split(b"\n")
    for line_no, line in enumerate(lines, start=first_line):
        stripped = line.rstrip(b"\r")
        codes = table[np.frombuffer(stripped, dtype=np.uint8)]
        bad = np.flatnonzero(codes == INVALID)
        bad = np.array([i for i in bad if stripped[i : i + 1] not in (b" ", b"\t")], dtype=int)
        if bad.size:
            col = int(bad[0])
            char = stripped[col : col + 1].decode("latin-1")
            if line_no == first_line:
                col += first_column
            ambiguous = char.upper() in IUPAC
            return GenomeError(
                f"FASTA file {str(path)!r}, record {name!r}, line {line_no}, column {col + 1}: "
                f"character {char!r} is not a nucleotide (A, C, G, T, N)",
                hint="pass iupac_as_n=True (CLI: --iupac-as-n) to read ambiguity codes as N"
                if ambiguous
                else "remove the character or replace it with N",
            )
    raise AssertionError("fast path found a bad character the slow path cannot")  # pragma: no cover


def _parse_header(line: bytes, path: Path, line_no: int, seen: set[str]) -> tuple[str, str]:
    header = line.decode("utf-8", "replace").strip()
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
    return name, description.strip()


def fasta_pieces(
    blocks: Iterable[bytes], *, source: Path | str = "<bytes>", iupac_as_n: bool = False
) -> Iterator[FastaPiece]:
    """Parse FASTA bytes arriving in blocks of any size into headers and runs of codes.

    Memory is one block plus one header line: a sequence line longer than a block is parsed
    in parts (errors still give its line and column). Errors are those of :func:`read_fasta`.
    """
    path = Path(source)
    table = _lookup_table(iupac_as_n)
    seen: set[str] = set()
    index, name, description = -1, "", ""
    line_no, column = 1, 0  # position of buf[pos]: 1-based line, 0-based column
    carry = b""
    for block in itertools.chain(blocks, [None]):
        final = block is None
        buf = carry + block if block is not None and carry else (block or carry)
        carry = b""
        pos, size = 0, len(buf)
        while pos < size:
            if index < 0 and buf[pos] != _HEADER:  # before the first header: blank space only
                rest = buf[pos:]
                skipped = len(rest) - len(rest.lstrip())
                line_no += rest.count(b"\n", 0, skipped)
                pos += skipped
                if pos < size and buf[pos] != _HEADER:
                    if size - pos < _EXCERPT_BYTES and not final:
                        carry = buf[pos:]  # quote the same 20 bytes whatever the block size
                        break
                    raise GenomeError(
                        f"FASTA file {str(path)!r}, line {line_no}: expected a header starting "
                        f"with '>', found {buf[pos : pos + _EXCERPT_BYTES]!r}",
                        hint="the first non-empty line of a FASTA file must be '>name'",
                    )
                column = 0
                continue
            if column == 0 and buf[pos] == _HEADER:
                nl = buf.find(b"\n", pos)
                if nl < 0 and not final:
                    carry = buf[pos:]
                    break
                end = size if nl < 0 else nl
                name, description = _parse_header(buf[pos + 1 : end], path, line_no, seen)
                index += 1
                yield FastaPiece(index, name, description, np.zeros(0, dtype=np.uint8))
                pos, line_no = end + 1, line_no + 1
                continue
            nxt = buf.find(b"\n>", pos)
            end = size if nxt < 0 else nxt + 1
            body = buf[pos:end]
            codes = table[np.frombuffer(body.translate(None, _SKIP), dtype=np.uint8)]
            if codes.size and int(codes.max()) == INVALID:
                raise _describe_bad_character(path, name, body, line_no, table, column)
            if codes.size:
                yield FastaPiece(index, name, description, codes)
            newlines = body.count(b"\n")
            column = len(body) - body.rfind(b"\n") - 1 if newlines else column + len(body)
            line_no += newlines
            pos = end
    if index < 0:
        raise GenomeError(
            f"FASTA file {str(path)!r} is empty",
            hint="give a FASTA file with at least one '>name' line followed by its sequence",
        )


def _records(pieces: Iterable[FastaPiece]) -> list[SequenceRecord]:
    records: list[SequenceRecord] = []
    parts: list[npt.NDArray[np.uint8]] = []
    current: FastaPiece | None = None

    def close(piece: FastaPiece) -> None:
        codes = parts[0] if len(parts) == 1 else np.concatenate(parts or [piece.codes])
        records.append(SequenceRecord(piece.name, codes, piece.description))

    for piece in pieces:
        if current is not None and piece.record_index != current.record_index:
            close(current)
            parts = []
        if current is None or piece.record_index != current.record_index:
            current = piece
        if piece.codes.size:
            parts.append(piece.codes)
    if current is not None:
        close(current)
    return records


def parse_fasta_bytes(
    data: bytes, *, source: Path | str = "<bytes>", iupac_as_n: bool = False
) -> list[SequenceRecord]:
    """Parse FASTA text already in memory; see :func:`read_fasta`."""
    return _records(fasta_pieces([data], source=source, iupac_as_n=iupac_as_n))


def read_fasta(path: str | Path, *, iupac_as_n: bool = False) -> list[SequenceRecord]:
    """Read every record of a FASTA file (plain or gzip, detected by content).

    Letters may be upper or lower case (soft-masked repeats read as ordinary bases); runs of N
    are kept as N. Any other character raises :class:`GenomeError` naming the file, record, line
    and character; with ``iupac_as_n=True`` IUPAC ambiguity codes (R, Y, ...) are read as N.
    For a genome larger than memory, :func:`ethos.genome.fasta_stream.iter_windows` reads the
    same files in bounded windows.
    """
    p = Path(path)
    blocks = read_blocks(p, block_bytes=None)
    return _records(fasta_pieces(blocks, source=p, iupac_as_n=iupac_as_n))


def write_fasta(records: Iterable[SequenceRecord], path: str | Path, *, width: int = 60) -> None:
    """Write records as FASTA, ``width`` bases per line (used by the benchmark and tests)."""
    with open(path, "w", encoding="ascii") as fh:
        for rec in records:
            header = f">{rec.name} {rec.description}".rstrip()
            fh.write(header + "\n")
            seq = rec.sequence
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
