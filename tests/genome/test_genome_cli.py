"""The ``genome`` Typer sub-app: each command end to end, reports, and user errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ethos.genome import GenomeError, SequenceRecord, write_fasta
from ethos.genome.cli import app

runner = CliRunner()
GUIDE = "GACGTTACGATCGGATCCAT"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(11)
    background = "".join(rng.choice(list("ACGT"), 4000))
    near = GUIDE[:3] + "CA" + GUIDE[5:]  # GT -> CA
    genome = background[:1000] + GUIDE + "AGG" + background[1000:3000] + near + "GGG"
    write_fasta([SequenceRecord.from_string("chr1", genome + background[3000:])], tmp_path / "g.fa")
    write_fasta([SequenceRecord.from_string("region", genome[990:1040])], tmp_path / "t.fa")
    return {"genome": tmp_path / "g.fa", "target": tmp_path / "t.fa", "dir": tmp_path}


def _self_contained(path: Path) -> str:
    text = path.read_text()
    assert "data:image/png;base64," in text
    assert not re.search(r"""(src|href)=["']https?:""", text)
    return text


def test_guides_ranked_against_genome_with_html(files: dict[str, Path]) -> None:
    html = files["dir"] / "guides.html"
    result = runner.invoke(
        app, ["guides", str(files["target"]), "--genome", str(files["genome"]), "--html", str(html)]
    )
    assert result.exit_code == 0, result.output
    assert GUIDE in result.output and "specificity_cfd" in result.output
    assert GUIDE in _self_contained(html)


def test_guides_without_genome_lists_flags(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["guides", str(files["target"])])
    assert result.exit_code == 0, result.output
    assert "poly_t" in result.output and "gc_fraction" in result.output


def test_offtargets_writes_cas_offinder_tsv(files: dict[str, Path]) -> None:
    out = files["dir"] / "hits.tsv"
    result = runner.invoke(
        app, ["offtargets", str(files["genome"]), "-g", GUIDE, "-k", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert [r[5] for r in rows] == ["0", "2"]
    assert rows[1][3].startswith(GUIDE[:3] + "ca")


def test_score_prints_cfd_and_mit() -> None:
    result = runner.invoke(app, ["score", "ATGTGGAGATTGCCACCTACCGG", "ATCTGGAGATTGCCACCTACAGG"])
    assert result.exit_code == 0, result.output
    assert "0.3846" in result.output


def test_regulation_simulated_with_report(files: dict[str, Path]) -> None:
    html = files["dir"] / "reg.html"
    result = runner.invoke(
        app,
        ["regulation", "--simulate", "--method", "nnls", "--edit", "reg1=2", "--html", str(html)],
    )
    assert result.exit_code == 0, result.output
    assert "gene0" in result.output and "bootstrap" in _self_contained(html)


def test_regulation_from_csv_files(files: dict[str, Path]) -> None:
    x = pd.DataFrame(np.random.default_rng(0).random((2, 12)), index=["tf1", "tf2"])
    y = pd.DataFrame(np.array([[2.0, 0.0], [0.5, 1.0]]) @ x.to_numpy(), index=["a", "b"])
    x.to_csv(files["dir"] / "x.csv")
    y.to_csv(files["dir"] / "y.csv")
    args = ["regulation", "--x", str(files["dir"] / "x.csv"), "--y", str(files["dir"] / "y.csv")]
    result = runner.invoke(app, [*args, "--edit", "tf1=1"])
    assert result.exit_code == 0, result.output
    assert re.search(r"a\s*│\s*2\b", result.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "ACGT", "ACGT"], "expected both 23"),
        (["offtargets", "GENOME", "-g", GUIDE + "AGG"], "has 23 bases; expected 20"),
        (["offtargets", "GENOME", "-g", GUIDE[:-1] + "U"], "character 'U' at position 20"),
        (["offtargets", "GENOME", "-g", GUIDE, "--pam", "NGZ"], "unknown IUPAC code 'Z'"),
        (["guides", "EMPTY"], "is empty"),
        (["regulation"], "regulation needs data"),
        (["regulation", "--simulate", "--edit", "nope=1"], "not NAME=DELTA with a known"),
    ],
)
def test_user_errors_raise_genome_error(
    files: dict[str, Path], args: list[str], message: str
) -> None:
    empty = files["dir"] / "empty.fa"
    empty.write_text("")
    paths = {"GENOME": str(files["genome"]), "EMPTY": str(empty)}
    result = runner.invoke(app, [paths.get(a, a) for a in args])
    assert isinstance(result.exception, GenomeError), result.output
    assert message in str(result.exception)


def test_help_explains_each_command() -> None:
    for command in ("guides", "offtargets", "score", "regulation"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert len(result.output) > 200
