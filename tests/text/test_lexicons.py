"""The vendored lexicons are the shared originals, and load into the shapes the checks use."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import pytest

from ethos.text.lexicons import gender_swaps, holisticbias_descriptors, identity_terms

ORIGINALS = {
    "gender_swaps.txt.gz": "b930d6dc75bdee839f4617f0bac2fa7f5dc07917dd455258efca15775e4d88d4",
    "holisticbias_descriptors_v1.1.json.gz": (
        "b6c3e95896ea8de116b8b8fef1ff36a45ea605be71d85d45e4dc1e6af97b1f99"
    ),
}


@pytest.mark.parametrize(("name", "sha256"), ORIGINALS.items())
def test_vendored_file_decompresses_to_the_original(name: str, sha256: str) -> None:
    raw = gzip.decompress((resources.files("ethos.text.lexicons") / name).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == sha256


def test_gender_swaps_go_both_ways() -> None:
    swaps = gender_swaps()
    assert swaps["actor"] == "actress" and swaps["actress"] == "actor"
    assert all(swaps[swaps[word]] for word in swaps)
    assert all(w == w.strip().lower() for w in swaps)


def test_holisticbias_axes_and_dispreferred_terms() -> None:
    axes = holisticbias_descriptors()
    assert len(axes) == 13
    assert "black" in axes["race_ethnicity"] and "buddhist" in axes["religion"]
    assert "hearing-impaired" not in axes["ability"]  # tagged dispreferred
    assert "hearing-impaired" in holisticbias_descriptors(include_dispreferred=True)["ability"]
    assert {"she", "he", "black", "catholic"} <= identity_terms()
