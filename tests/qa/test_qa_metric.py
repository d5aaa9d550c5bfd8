"""SQuAD exact match and F1 against examples worked by hand (arithmetic in each test)."""

from __future__ import annotations

import pytest

from ethos.models.squad_metric import (
    exact_match_score,
    f1_score,
    normalize_answer,
    squad_scores,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Cat", "cat"),  # case, then the article 'the' is dropped
        ("an apple a day", "apple day"),  # 'an' and 'a' are whole-word articles
        ("theory", "theory"),  # 'the' inside a word stays
        ("Nuremberg, 1947!", "nuremberg 1947"),  # punctuation removed
        ("  many \t spaces\n here ", "many spaces here"),  # whitespace collapsed
        ("U.S.A.", "usa"),  # dots removed without inserting spaces
        ("re-arrest", "rearrest"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_exact_match_ignores_case_articles_punctuation_and_spaces() -> None:
    assert exact_match_score("The  Calvin cycle.", "calvin cycle") == 1.0
    assert exact_match_score("Calvin cycles", "calvin cycle") == 0.0


def test_f1_partial_overlap() -> None:
    # pred "the cat sat" -> [cat, sat]; gold "a cat sat down" -> [cat, sat, down]
    # common 2: P = 2/2 = 1, R = 2/3, F1 = 2 * 1 * 2/3 / (1 + 2/3) = (4/3) / (5/3) = 0.8
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_with_multiplicity() -> None:
    # pred [very, very, good], gold [very, good]: common = min(2,1) + min(1,1) = 2
    # P = 2/3, R = 2/2 = 1, F1 = 2 * (2/3) / (5/3) = 0.8
    assert f1_score("very very good", "very good") == pytest.approx(0.8)


def test_f1_no_overlap_is_zero() -> None:
    assert f1_score("penicillin", "Alexander Fleming") == 0.0


def test_empty_prediction_and_unanswerable_convention() -> None:
    # SQuAD 2.0: when either side has no tokens, F1 = EM = 1 if both are empty, else 0
    assert f1_score("", "Mainz") == 0.0
    assert f1_score("Mainz", "") == 0.0
    assert f1_score("", "") == 1.0
    assert f1_score("the", "") == 1.0  # 'the' normalises to nothing
    assert exact_match_score("", "") == 1.0


def test_corpus_scores_take_max_over_gold_answers_and_average() -> None:
    predictions = {
        "q1": "the cat sat",  # golds: "a cat sat down" F1 0.8, "cat sat" EM 1 -> EM 1, F1 1
        "q2": "in Mainz",  # gold "Mainz": P 1/2, R 1/1, F1 = 2 * 0.5 / 1.5 = 2/3; EM 0
        "q3": "",  # unanswerable, empty prediction: EM 1, F1 1
        "q4": "oxygen",  # unanswerable, something predicted: EM 0, F1 0
    }
    references = {
        "q1": ["a cat sat down", "cat sat"],
        "q2": ["Mainz"],
        "q3": [],
        "q4": [],
    }
    scores = squad_scores(predictions, references)
    # EM = (1 + 0 + 1 + 0) / 4 * 100 = 50; F1 = (1 + 2/3 + 1 + 0) / 4 * 100 = 66.666...
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (8 / 3) / 4)
    assert scores["count"] == 4
    assert scores["missing"] == 0


def test_corpus_scores_missing_prediction_counts_as_empty() -> None:
    # q1 missing -> "" vs "Mainz": 0; q2 exact: 1; extra id ignored. EM = F1 = 1/2 * 100
    scores = squad_scores({"q2": "1947", "other": "x"}, {"q1": ["Mainz"], "q2": ["1947"]})
    assert scores == {"exact_match": 50.0, "f1": 50.0, "count": 2.0, "missing": 1.0}


def test_corpus_scores_reject_bad_references() -> None:
    with pytest.raises(ValueError, match="at least one"):
        squad_scores({}, {})
    with pytest.raises(TypeError, match="list of gold answers"):
        squad_scores({"q": "x"}, {"q": "x"})
