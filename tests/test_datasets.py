"""Bundled data: files match their recorded checksums and loaders give the published row counts."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import pytest

from ethos import DataConfig, DataError, load_dataset
from ethos import datasets as bundled

PROVENANCE = Path(bundled.__file__).with_name("PROVENANCE.md")


def test_vendored_files_match_provenance_checksums() -> None:
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", PROVENANCE.read_text(), re.M)
    )
    assert set(recorded) == {p.name for p in bundled.FILES.iterdir()}  # every file, no other
    for name, digest in recorded.items():
        assert hashlib.sha256((bundled.FILES / name).read_bytes()).hexdigest() == digest, name


def test_compas_propublica_filter_gives_6172_rows() -> None:
    """ProPublica (Angwin et al. 2016) report 6172 defendants after their filter."""
    assert len(bundled.compas_raw()) == 7214
    table = bundled.compas()
    assert len(table) == 6172
    assert set(table["c_charge_degree"]) == {"felony", "misdemeanor"}


def test_compas_dataset_keeps_vendor_scores_out_of_the_text() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset(DataConfig(source="compas"))
    assert len(dataset) == 6172
    assert list(dataset.groups.columns) == ["race", "sex", "age_cat"]
    assert list(dataset.extra.columns) == ["decile_score", "score_text"]
    assert not any("decile" in t or "score" in t for t in dataset.texts)
    assert not any("African-American" in t or "Female" in t for t in dataset.texts)
    assert dataset.texts[0].startswith("age: ")
    assert any("age itself stays a model feature" in note for note in dataset.notes)
    with pytest.raises(DataError, match="decile_score must never be model input"):
        load_dataset(DataConfig(source="compas", record_fields=["age", "decile_score"]))


def test_adult_german_pubmedqa_row_counts_and_labels() -> None:
    adult = bundled.adult()
    assert len(adult) == 32561 + 16281
    assert set(adult["income"]) == {"<=50K", ">50K"}
    german = bundled.german()
    assert len(german) == 1000
    assert german["credit_risk"].value_counts().to_dict() == {"good": 700, "bad": 300}
    assert german["sex"].value_counts().to_dict() == {"male": 690, "female": 310}
    assert not german.isna().any().any()
    assert german.loc[0, "checking_account"] == "below 0 DM"
    pubmedqa = bundled.pubmedqa()
    assert pubmedqa["answer"].value_counts().to_dict() == {"yes": 276, "no": 169, "maybe": 55}


def test_clinical_demographic_pairs_reads_every_record_of_every_line() -> None:
    """145 lines, two of which hold two records each: 147 cases, 49 per clinical domain."""
    cases = bundled.clinical_demographic_pairs()
    assert len(cases) == 147 and cases["id"].is_unique
    assert cases["clinical_domain"].value_counts().to_dict() == {
        "gastro": 49,
        "internal_medicine": 49,
        "dental": 49,
    }
    assert list(cases.columns) == [
        "patient_a",
        "patient_b",
        "diagnosis",
        "treatment",
        "clinical_domain",
        "id",
    ]
    assert not cases.isna().any().any()


def test_extra_training_pool_goes_to_train_only() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset(
            DataConfig(source="pubmedqa", extra_train_source="pubmedqa-artificial")
        )
    assert len(dataset) == 1000
    artificial = [i.startswith("pqaa-") for i in dataset.ids]
    assert set(dataset.split[artificial]) == {"train"}
    assert dataset.text_pairs is not None


def test_unknown_bundled_name_suggests() -> None:
    with pytest.raises(DataError, match="did you mean 'compas'"):
        load_dataset(DataConfig(source="compass"))


def test_bbq_has_the_published_11956_questions_and_crows_pairs_1508_pairs() -> None:
    """Row counts of the authors' files (BBQ: six of eleven categories; CrowS-Pairs: all)."""
    table = bundled.bbq()
    counts = table["category"].value_counts().to_dict()
    assert counts == {
        "Age": 3680,
        "Nationality": 3080,
        "Physical_appearance": 1576,
        "Disability_status": 1556,
        "Religion": 1200,
        "Sexual_orientation": 864,
    }
    assert table["id"].is_unique and set(table["label"]) == {0, 1, 2}
    assert len(bundled.bbq(["Religion"])) == 1200
    with pytest.raises(ValueError, match="unknown BBQ categories"):
        bundled.bbq(["Gender_identity"])
    pairs = bundled.crows_pairs()
    assert len(pairs) == 1508 and pairs["bias_type"].nunique() == 9
    assert set(pairs["stereo_antistereo"]) == {"stereo", "antistereo"}
