"""FASTA reading, 2-bit encoding and their errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethos.genome import GenomeError, SequenceRecord, TwoBitSequence, read_fasta, write_fasta
from ethos.genome.alphabet import reverse_complement


def _write(tmp_path: Path, text: str, name: str = "g.fa") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_multi_record_mixed_case_and_n_runs(tmp_path: Path) -> None:
    path = _write(tmp_path, ">chr1 first\nACGTacgt\nNNNNgg\n\n>chr2\r\nttaa\r\n")
    records = read_fasta(path)
    assert [r.name for r in records] == ["chr1", "chr2"]
    assert records[0].description == "first"
    assert records[0].sequence == "ACGTACGTNNNNGG"
    assert records[1].sequence == "TTAA"
    assert "chr1" in repr(records[0]) and "14 bp" in repr(records[0])


def test_gzip_is_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">x\nACGTN\n"))
    assert read_fasta(path)[0].sequence == "ACGTN"


def test_bad_character_names_file_record_line_and_character(tmp_path: Path) -> None:
    path = _write(tmp_path, ">chr1\nACGT\n>chr2\nACGT\nACXT\n")
    with pytest.raises(GenomeError) as err:
        read_fasta(path)
    message = str(err.value)
    assert "g.fa" in message
    assert "record 'chr2'" in message
    assert "line 5, column 3" in message
    assert "character 'X' is not a nucleotide" in message


def test_iupac_codes_are_an_error_unless_read_as_n(tmp_path: Path) -> None:
    path = _write(tmp_path, ">chr1\nACRT\n")
    with pytest.raises(GenomeError, match="iupac_as_n=True"):
        read_fasta(path)
    assert read_fasta(path, iupac_as_n=True)[0].sequence == "ACNT"


def test_empty_fasta_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n  \n")
    with pytest.raises(GenomeError, match=r"FASTA file '.*g\.fa' is empty"):
        read_fasta(path)


def test_text_before_first_header_and_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(GenomeError, match="line 1: expected a header starting with '>'"):
        read_fasta(_write(tmp_path, "ACGT\n>x\nAC\n", "a.fa"))
    with pytest.raises(GenomeError, match="record name 'x' appears twice"):
        read_fasta(_write(tmp_path, ">x\nAC\n>x\nGT\n", "b.fa"))
    with pytest.raises(GenomeError, match="does not exist"):
        read_fasta(tmp_path / "missing.fa")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    records = [SequenceRecord.from_string("a", "ACGTN" * 30), SequenceRecord.from_string("b", "")]
    write_fasta(records, tmp_path / "r.fa", width=7)
    back = read_fasta(tmp_path / "r.fa")
    assert [(r.name, r.sequence) for r in back] == [("a", "ACGTN" * 30), ("b", "")]


@settings(max_examples=100, deadline=None)
@given(st.text("ACGTN", max_size=200))
def test_two_bit_round_trip_keeps_n_blocks(seq: str) -> None:
    record = SequenceRecord.from_string("x", seq)
    packed = TwoBitSequence.from_codes(record.codes)
    assert np.array_equal(packed.to_codes(), record.codes)
    assert packed.packed.size == (len(seq) + 3) // 4
    assert reverse_complement(reverse_complement(seq)) == seq
