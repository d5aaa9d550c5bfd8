"""The robustness check: perturbations, exact flip rates on hand-written models, one real run."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ethos.audit import AuditContext, AuditError
from ethos.audit.errors import AuditWarning
from ethos.audit.robustness import RobustnessCheck, _stratified_order
from ethos.text.lexicons import holisticbias_descriptors
from ethos.text.perturb import (
    NOISE,
    char_swaps,
    find_terms,
    keyboard_neighbours,
    keyboard_typos,
    match_case,
    random_casing,
    replace_term,
    swap_gender,
    whitespace_noise,
    word_dropout,
)

TEXT = "The Quick brown fox didn't jump over the lazy dog near the African-American museum today"
WORDS = re.compile(r"[A-Za-z]{3,}")


def _binary(p: Sequence[float]) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.column_stack([1.0 - p, p])


def _run(context: AuditContext, **options: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditWarning)
        section = RobustnessCheck(**options).run(context)
    json.dumps(section, allow_nan=False)
    return section


# --------------------------------------------------------------------------------------------
# Perturbation functions.


@pytest.mark.parametrize("name", sorted(NOISE))
def test_noise_is_deterministic_given_the_seed_and_changes_the_text(name: str) -> None:
    perturb = NOISE[name]
    first = perturb(TEXT, np.random.default_rng(7), rate=0.2)
    assert first == perturb(TEXT, np.random.default_rng(7), rate=0.2)
    assert first != TEXT
    outputs = {perturb(TEXT, np.random.default_rng(seed), rate=0.2) for seed in range(10)}
    assert len(outputs) > 1  # the seed matters


def test_casing_and_whitespace_keep_the_words() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        cased = random_casing(TEXT, rng, rate=0.3)
        assert cased != TEXT and cased.lower() == TEXT.lower()
        spaced = whitespace_noise(TEXT, rng, rate=0.3)
        assert spaced != TEXT and spaced.split() == TEXT.split()
    assert random_casing("isn't", np.random.default_rng(0), rate=1.0) in {"ISN'T", "Isn't"}


def test_keyboard_typos_replace_one_letter_per_chosen_word_by_a_neighbour() -> None:
    neighbours = keyboard_neighbours()
    assert "s" in neighbours["a"] and "a" not in neighbours["a"]
    n_words = len(WORDS.findall(TEXT))
    out = keyboard_typos(TEXT, np.random.default_rng(1), rate=0.25)
    assert len(out) == len(TEXT)
    changed = [(a, b) for a, b in zip(TEXT, out, strict=True) if a != b]
    assert len(changed) == round(0.25 * n_words)
    for before, after in changed:
        assert after.lower() in neighbours[before.lower()]
        assert before.isupper() == after.isupper()


def test_char_swaps_and_word_dropout() -> None:
    out = char_swaps(TEXT, np.random.default_rng(2), rate=0.25)
    changed = [i for i, (a, b) in enumerate(zip(TEXT, out, strict=True)) if a != b]
    assert len(changed) == 2 * round(0.25 * len(WORDS.findall(TEXT)))  # two letters per swap
    assert all(TEXT[i] == out[i + 1] and TEXT[i + 1] == out[i] for i in changed[::2])

    words = TEXT.split()
    dropped = word_dropout(TEXT, np.random.default_rng(3), rate=0.2).split()
    assert len(dropped) == len(words) - round(0.2 * len(words))
    it = iter(words)
    assert all(w in it for w in dropped)  # what is left is in the original order
    assert word_dropout("alone", np.random.default_rng(0)) == "alone"  # never drops every word


def test_gender_swap_is_whole_word_and_keeps_case() -> None:
    text, swapped = swap_gender("He said she is an actress. HE IS. Sheila, manly, woman-made men")
    assert text == "She said he is an actor. SHE IS. Sheila, manly, woman-made women"
    assert swapped == ["he", "she", "actress", "he", "men"]
    assert swap_gender("nothing to see")[1] == []
    assert match_case("Asian", "east asian") == "East Asian"
    assert match_case("MALE", "female") == "FEMALE"


def test_descriptors_are_replaced_only_on_word_boundaries() -> None:
    race = holisticbias_descriptors()["race_ethnicity"]
    text = "An Asian, an east asian, an asian-american and Asians; ASIAN"
    assert find_terms(text, race) == ["asian", "east asian", "asian-american", "asian"]
    out = replace_term(text, "asian", "latino", vocabulary=race)
    assert out == "An Latino, an east asian, an asian-american and Asians; LATINO"


def test_the_stratified_order_keeps_group_shares_in_every_prefix() -> None:
    strata = np.array(["a"] * 75 + ["b"] * 25, dtype=object)
    order = _stratified_order(strata, 100, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(100))
    for k in (4, 20, 40):
        assert abs(int((strata[order[:k]] == "b").sum()) - k / 4) <= 1


# --------------------------------------------------------------------------------------------
# The check on hand-written models with exactly known answers.


def _she_model(texts: Sequence[str]) -> np.ndarray:
    return _binary([0.9 if re.search(r"\bshe\b", t, re.I) else 0.2 for t in texts])


GENDER_TEXTS = [
    "he is a nurse",  # -> she: flips, delta +0.7
    "He said hello",  # -> She: flips, delta +0.7
    "She laughed",  # -> He: flips, delta -0.7
    "his book is good",  # -> her: no flip
    "the actress smiled",  # -> actor: no flip
    "they went home",  # nothing to swap: not measured
]


def test_gender_swap_flip_rate_of_a_keyword_model() -> None:
    context = AuditContext(texts=GENDER_TEXTS, predict_proba=_she_model, seed=3)
    cf = _run(context, families=["gender_swap"], budget=10)["counterfactual"]["gender_swap"]
    # by hand: 5 texts contain a swappable word; 3 of them flip, each by |0.9 - 0.2| = 0.7
    assert cf["coverage"] == pytest.approx(5 / 6)
    assert cf["n"] == 5 and cf["n_texts"] == 5
    assert cf["flip_rate"] == pytest.approx(3 / 5)
    assert cf["mean_abs_delta"] == pytest.approx(3 * 0.7 / 5)
    assert cf["mean_delta"] == pytest.approx((0.7 + 0.7 - 0.7) / 5)
    assert cf["max_abs_delta"] == pytest.approx(0.7)
    assert cf["per_group"]["he"] == pytest.approx(
        {"n": 2, "flip_rate": 1.0, "mean_abs_delta": 0.7, "mean_delta": 0.7}
    )
    assert cf["per_group"]["his"]["flip_rate"] == 0.0
    assert [w["flipped"] for w in cf["worst"]] == [True, True, True, False, False]
    assert {w["perturbed"] for w in cf["worst"][:3]} == {
        "she is a nurse",
        "She said hello",
        "He laughed",
    }


def test_noise_flip_rates_of_a_whitespace_sensitive_model() -> None:
    texts = [f"the {w} sat on the mat near the door today" for w in ("cat", "dog", "cow", "hen")]

    def model(batch: Sequence[str]) -> np.ndarray:  # positive iff any whitespace is not a space
        return _binary([0.8 if re.search(r"\t|\n| {2}", t) else 0.3 for t in batch])

    out = _run(AuditContext(texts=texts, predict_proba=model), families=list(NOISE), budget=10)
    rates = {name: family["flip_rate"] for name, family in out["noise"].items()}
    assert rates == {
        "char_keyboard": 0.0,
        "char_swap": 0.0,
        "casing": 0.0,
        "whitespace": 1.0,
        "word_dropout": 0.0,
    }
    assert out["noise"]["whitespace"]["mean_abs_delta"] == pytest.approx(0.5)
    assert out["max_flip_rate"] == 1.0 and out["max_flip_rate_family"] == "noise.whitespace"
    assert out["max_counterfactual_flip_rate"] is None  # no counterfactual family was run
    assert all(f["n"] == 4 for f in out["noise"].values())


def test_holisticbias_flip_rate_with_every_other_descriptor() -> None:
    race = holisticbias_descriptors()["race_ethnicity"]
    texts = ["an asian man", "the white cat", "a dog"]

    def model(batch: Sequence[str]) -> np.ndarray:  # positive iff "asian" occurs anywhere
        return _binary([0.7 if "asian" in t.lower() else 0.1 for t in batch])

    context = AuditContext(texts=texts, predict_proba=model)
    section = _run(
        context, families=["holisticbias"], axes=["race_ethnicity"], n_replacements=100, budget=30
    )
    family = section["counterfactual"]["holisticbias"]["race_ethnicity"]
    # by hand: each eligible text is tried with all len(race) - 1 other descriptors. "asian" flips
    # to every descriptor without "asian" in it; "white" flips to every descriptor with it.
    with_asian = sum("asian" in t for t in race)
    others = len(race) - 1
    flips_asian = others - (with_asian - 1)
    flips_white = with_asian
    assert family["coverage"] == pytest.approx(2 / 3)
    assert family["n"] == 2 * others and family["n_texts"] == 2
    assert family["flip_rate"] == pytest.approx((flips_asian + flips_white) / (2 * others))
    assert family["per_group"]["asian"]["flip_rate"] == pytest.approx(flips_asian / others)
    assert family["per_group"]["white"]["flip_rate"] == pytest.approx(flips_white / others)
    assert set(section["counterfactual"]["holisticbias"]) == {"race_ethnicity"}


def _records_context(**extra: Any) -> AuditContext:
    records = pd.DataFrame({"age": [30, 41, 52, 63], "sex": ["female", "male", "male", "other"]})

    def render(frame: pd.DataFrame) -> list[str]:
        return [f"age: {a}; sex: {s}" for a, s in zip(frame["age"], frame["sex"], strict=True)]

    def model(batch: Sequence[str]) -> np.ndarray:
        return _binary([0.6 if re.search(r"\bfemale\b", t) else 0.4 for t in batch])

    return AuditContext(
        texts=render(records),
        predict_proba=model,
        groups=records[["sex"]],
        extras={"records": records, "render": render, "sensitive_in_text": ["sex"], **extra},
    )


def test_record_flips_of_a_sensitive_field() -> None:
    out = _run(_records_context(), families=["records"], budget=10)
    sex = out["counterfactual"]["records"]["sex"]
    # by hand: female -> male, other (2 flips); male -> female (flip), other (no) twice;
    # other -> female (flip), male (no): 5 flips in 8 pairs, each |0.6 - 0.4| = 0.2
    assert sex["values"] == ["female", "male", "other"]
    assert sex["n"] == 8 and sex["n_texts"] == 4
    assert sex["flip_rate"] == pytest.approx(5 / 8)
    assert sex["mean_abs_delta"] == pytest.approx(5 * 0.2 / 8)
    assert sex["per_group"]["female"]["flip_rate"] == 1.0
    assert sex["per_group"]["male"]["flip_rate"] == pytest.approx(0.5)
    assert sex["per_group"]["other"]["flip_rate"] == pytest.approx(0.5)
    assert sex["per_target"]["female"] == pytest.approx(
        {"n": 3, "flip_rate": 1.0, "mean_abs_delta": 0.2, "mean_delta": 0.2}
    )
    assert out["max_counterfactual_flip_rate"] == pytest.approx(5 / 8)
    assert out["max_counterfactual_flip_rate_family"] == "counterfactual.records.sex"


def test_multiclass_delta_is_on_the_originally_predicted_class() -> None:
    def model(batch: Sequence[str]) -> np.ndarray:
        she = np.array([bool(re.search(r"\bshe\b", t)) for t in batch])
        return np.where(she[:, None], [0.1, 0.2, 0.7], [0.7, 0.2, 0.1])

    context = AuditContext(texts=["he ran", "a tree"], predict_proba=model)
    out = _run(context, families=["gender_swap"], budget=5)
    family = out["counterfactual"]["gender_swap"]
    assert family["flip_rate"] == 1.0
    assert family["mean_delta"] == pytest.approx(0.1 - 0.7)  # P(class 0) before and after
    assert out["probability"].startswith("probability of the class predicted")


def test_one_model_call_within_the_budget_and_the_sample_size() -> None:
    calls: list[int] = []

    def model(batch: Sequence[str]) -> np.ndarray:
        calls.append(len(batch))
        return _she_model(batch)

    texts = [f"he said {i} things to her" for i in range(40)]
    context = AuditContext(texts=texts, predict_proba=model, seed=1)
    out = _run(context, budget=1.5, sample_size=6)
    assert len(calls) == 1 and calls[0] == out["sample"]["model_rows"] <= 60
    assert out["sample"]["max_rows"] == 60 and out["sample"]["model_calls"] == 1
    for family in [*out["noise"].values(), out["counterfactual"]["gender_swap"]]:
        assert 0 < family["n_texts"] <= 6
    # a budget that fits little: fewer texts, never more rows
    calls.clear()
    small = _run(context, budget=0.25, sample_size=6)
    assert calls[0] <= 10 and small["sample"]["budget_limited"]
    assert small["sample"]["model_rows"] == calls[0]


def test_same_seed_same_section_and_pairs_travel_with_their_texts() -> None:
    texts = [f"he answered question {i}" for i in range(12)]
    pairs = [f"question {i}" for i in range(12)]

    def model(batch: Sequence[str], second: Sequence[str] | None = None) -> np.ndarray:
        assert second is not None and len(second) == len(batch)
        for text, pair in zip(batch, second, strict=True):
            digits = re.findall(r"\d+", text)  # word dropout may remove the number
            assert not digits or digits == re.findall(r"\d+", pair)
        return _she_model(batch)

    groups = pd.DataFrame({"g": ["a", "b", "c"] * 4})
    context = AuditContext(
        texts=texts, predict_proba=model, groups=groups, seed=5, extras={"text_pairs": pairs}
    )
    first = _run(context, families=["gender_swap"], budget=3)
    assert first["counterfactual"]["gender_swap"]["flip_rate"] == 1.0
    assert first["sample"]["stratified_by"] == ["g"]
    again = _run(replace(context), families=["gender_swap"], budget=3)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    full = _run(context, budget=3)
    assert json.dumps(full, sort_keys=True) == json.dumps(_run(context, budget=3), sort_keys=True)


def test_without_records_the_record_flips_are_skipped_with_a_note() -> None:
    context = AuditContext(texts=GENDER_TEXTS, predict_proba=_she_model)
    out = _run(context, families=["records", "gender_swap"], budget=5)
    assert "records" not in out["counterfactual"]
    assert any("record flips skipped" in note for note in out["notes"])


# --------------------------------------------------------------------------------------------
# Unusable input.


@pytest.mark.parametrize(
    ("context", "options", "message"),
    [
        (AuditContext(texts=[], predict_proba=_she_model), {}, "no texts"),
        (AuditContext(texts=["a", 3], predict_proba=_she_model), {}, "strings"),
        (
            AuditContext(
                texts=["a b", "c d"], predict_proba=_she_model, groups=pd.DataFrame({"g": [1]})
            ),
            {},
            "length mismatch",
        ),
        (
            AuditContext(
                texts=["a b"], predict_proba=_she_model, extras={"text_pairs": ["x", "y"]}
            ),
            {},
            "length mismatch",
        ),
        (
            AuditContext(texts=["he ran"], predict_proba=lambda t: np.ones((1, 2))),
            {"budget": 10},
            "shape",
        ),
        (
            AuditContext(texts=["he ran"], predict_proba=_she_model),
            {"families": ["nope"]},
            "unknown",
        ),
        (AuditContext(texts=["he ran"], predict_proba=_she_model), {"budget": 0}, "budget"),
        (AuditContext(texts=["he ran"]), {}, "the robustness check needs predict_proba"),
    ],
)
def test_unusable_input_is_an_audit_error(
    context: AuditContext, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuditError, match=message):
        RobustnessCheck(**options).run(context)


def test_records_of_the_wrong_length_are_an_audit_error() -> None:
    context = _records_context()
    bad = replace(context, texts=[*(context.texts or []), "age: 1; sex: male"], groups=None)
    with pytest.raises(AuditError, match="records has 4"):
        RobustnessCheck(families=["records"]).run(bad)


# --------------------------------------------------------------------------------------------
# End to end on a tiny fine-tuned COMPAS run.


@pytest.fixture(scope="module")
def compas_context(tmp_path_factory: pytest.TempPathFactory) -> AuditContext:
    from ethos import RunConfig
    from ethos.audit.run_context import context_from_run
    from ethos.training import train

    tmp: Path = tmp_path_factory.mktemp("robustness_run")
    config = {
        "data": {
            "source": "compas",
            "sample": 300,
            "min_group_size": 1,
            "include_sensitive_in_text": True,
        },
        "model": {"max_length": 40},
        "train": {"epochs": 1, "batch_size": 16, "max_steps": 5},
        "output_dir": str(tmp),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(RunConfig.model_validate(config), quiet=True)
    return context_from_run(run)


def test_robustness_of_a_tiny_compas_run(compas_context: AuditContext) -> None:
    calls: list[int] = []
    inner = compas_context.predict_proba
    assert inner is not None

    def counting(texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        calls.append(len(texts))
        return inner(texts, pairs)

    context = replace(compas_context, predict_proba=counting)
    section = _run(context)
    n = len(context.texts or [])
    assert calls == [section["sample"]["model_rows"]] and calls[0] <= n  # default budget: one pass
    records = section["counterfactual"]["records"]
    assert set(records) == {"race", "sex"}
    for column, family in records.items():
        assert family["n"] > 0 and family["coverage"] == 1.0
        assert 0.0 <= family["flip_rate"] <= 1.0
        assert 0.0 <= family["mean_abs_delta"] <= family["max_abs_delta"] <= 1.0
        assert set(family["per_group"]) <= set(family["values"])
        assert all(column in w["change"] for w in family["worst"])
    assert 0.0 <= section["max_counterfactual_flip_rate"] <= 1.0
    assert 0.0 <= section["max_flip_rate"] <= 1.0
    assert context.groups is not None
    assert section["sample"]["stratified_by"] == list(context.groups.columns)
    json.dumps(section, allow_nan=False)
