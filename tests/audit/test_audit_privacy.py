"""The privacy check: Presidio PII masking on hostile texts, the loss-threshold membership attack on
cases with a known answer (Yeom et al. 2018), and the whole check on a real tiny COMPAS run."""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ethos.audit import AuditContext, AuditError, Check, to_jsonable
from ethos.audit.membership import (
    Rows,
    attack_from_losses,
    loss_attack,
    per_example_loss,
    tpr_at_fpr,
)
from ethos.audit.privacy import PrivacyCheck
from ethos.errors import EthosError
from ethos.text import pii

# --- PII: exact masks where Presidio is deterministic (regexes with checksums, spaCy NER) -------

HOSTILE = [
    (
        "Contact John Smith at john.smith@example.com or (212) 555-0147.",
        "Contact <PERSON> at <EMAIL_ADDRESS> or <PHONE_NUMBER>.",
    ),
    (  # 4111 1111 1111 1111 passes the Luhn check; an SSN with its context word
        "My SSN is 536-22-8471 and my card is 4111 1111 1111 1111.",
        "My SSN is <US_SSN> and my card is <CREDIT_CARD>.",
    ),
    ("card 4111-1111-1111-1111", "card <CREDIT_CARD>"),
    (
        "Reach me at +44 20 7946 0958 or jane.doe+tag@mail.co.uk",
        "Reach me at <PHONE_NUMBER> or <EMAIL_ADDRESS>",
    ),
    ("Visit https://example.org/profile?id=7 for details.", "Visit <URL> for details."),
    (
        "Call 555-123-4567 now, ask for Maria Garcia. IP 192.168.1.1",
        "Call <PHONE_NUMBER> now, ask for <PERSON>. IP <IP_ADDRESS>",
    ),
    (  # unicode names, an internationalised e-mail domain, a snowman after it
        "Zoë Müller lives in Berlin; email zoe@müller.de ☃",
        "<PERSON> lives in <LOCATION>; email <EMAIL_ADDRESS> ☃",
    ),
    (
        "Card 5500 0000 0000 0004, IBAN DE89 3704 0044 0532 0130 00",
        "Card <CREDIT_CARD>, IBAN <IBAN_CODE>",
    ),
    # no PII: a wrong Luhn digit, a record text, markup and control characters, empty strings
    ("Card 4111 1111 1111 1112 here", "Card 4111 1111 1111 1112 here"),
    (
        "age: 34; prior offences: 2; charge degree: felony",
        "age: 34; prior offences: 2; charge degree: felony",
    ),
    ("<script>alert(1)</script> \x00 null", "<script>alert(1)</script> \x00 null"),
    ("", ""),
    ("   \n", "   \n"),
]


def test_presidio_masks_hostile_texts_exactly() -> None:
    texts = [t for t, _ in HOSTILE]
    assert pii.mask_texts(texts) == [m for _, m in HOSTILE]


def test_find_pii_reports_types_offsets_and_scores() -> None:
    text = "Contact John Smith at john.smith@example.com"
    (spans,) = pii.find_pii([text])
    assert [(s.entity_type, text[s.start : s.end]) for s in spans] == [
        ("PERSON", "John Smith"),
        ("EMAIL_ADDRESS", "john.smith@example.com"),  # the URL hits inside it are dropped
    ]
    assert all(pii.SCORE_THRESHOLD <= s.score <= 1.0 for s in spans)
    assert pii.count_entities([spans, spans]) == {"EMAIL_ADDRESS": 2, "PERSON": 2}


def test_entities_choose_what_is_masked_and_unknown_types_fail() -> None:
    text = "John Smith, john.smith@example.com"
    assert pii.mask_texts([text], entities=["EMAIL_ADDRESS"]) == ["John Smith, <EMAIL_ADDRESS>"]
    with pytest.raises(EthosError, match=r"unknown PII entity types \['SOCIAL'\]"):
        pii.find_pii([text], entities=["SOCIAL"])
    with pytest.raises(EthosError, match="no PII entity types"):
        pii.find_pii([text], entities=[])


def test_the_engine_is_built_once_per_process() -> None:
    assert pii.analyzer_engine() is pii.analyzer_engine()


def test_resolve_overlaps_keeps_the_best_span() -> None:
    S = pii.PiiSpan
    spans = [S(0, 10, "URL", 0.5), S(0, 22, "EMAIL_ADDRESS", 1.0), S(5, 30, "PERSON", 0.85)]
    spans += [S(30, 34, "PERSON", 0.85), S(30, 34, "PERSON", 0.85), S(40, 44, "URL", 0.5)]
    assert pii.resolve_overlaps(spans) == [
        S(0, 22, "EMAIL_ADDRESS", 1.0),
        S(30, 34, "PERSON", 0.85),
        S(40, 44, "URL", 0.5),
    ]
    assert pii.mask_text("x" * 50, [S(40, 44, "URL", 0.5), S(0, 2, "A", 1.0)]) == (
        "<A>" + "x" * 38 + "<URL>" + "x" * 6
    )


def test_windows_cover_the_text_and_any_short_entity() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        words = ["".join(rng.choice(list("abcé"), rng.integers(1, 30))) for _ in range(400)]
        text = " ".join(words)[: int(rng.integers(1, 6000))]
        starts = pii.windows(text)
        assert starts[0] == 0 and starts == sorted(set(starts))
        assert starts[-1] + pii.WINDOW_CHARS >= len(text)
        assert all(s == 0 or text[s - 1] == " " for s in starts)  # words are < 100 characters
        for a, b in itertools.pairwise(starts):  # every 100-character piece fits
            assert a + pii.WINDOW_CHARS - b >= pii.WINDOW_OVERLAP
    no_spaces = "x" * 2500
    assert pii.windows(no_spaces) == [0, 900, 1800]
    with pytest.raises(ValueError, match="twice the overlap"):
        pii.windows("abc", size=10, overlap=5)


def test_long_text_entities_across_window_edges_are_masked_once() -> None:
    email = "someone.important@example.com"
    pieces, expected = [], []
    for i in range(25):  # ~20 000 characters
        filler = "lorem ipsum dolor " * (i % 7 + 40) + "x" * (i % 13)
        pieces += [filler, " ", email, " "]
        expected += [filler, " ", "<EMAIL_ADDRESS>", " "]
    text = "".join(pieces) + "ünïcode ☃ end"
    expected_text = "".join(expected) + "ünïcode ☃ end"
    starts = [m.start() for m in re.finditer(re.escape(email), text)]
    window_ends = [s + pii.WINDOW_CHARS for s in pii.windows(text)]
    cut = [a for a in starts if any(a < end < a + len(email) for end in window_ends)]
    assert cut  # some e-mails are cut by a window's end, and still found whole, once
    (spans,) = pii.find_pii([text], entities=["EMAIL_ADDRESS"])
    assert [s.start for s in spans] == starts
    assert pii.mask_text(text, spans) == expected_text


def test_pii_section_samples_with_the_seed_and_masks_examples() -> None:
    texts = [f"row {i}: nothing to see" for i in range(40)]
    texts[3] = "row 3: mail ana.lopez@example.com"
    texts[17] = "row 17: call (212) 555-0147 or mail bo@example.org"
    full = pii.pii_section(texts, sample=None, seed=0, n_examples=5)
    assert full["scanned"] == full["total"] == 40
    assert full["texts_with_pii"] == 2 and full["rate"] == pytest.approx(2 / 40)
    assert full["by_entity"] == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert full["examples"] == [
        "row 3: mail <EMAIL_ADDRESS>",
        "row 17: call <PHONE_NUMBER> or mail <EMAIL_ADDRESS>",
    ]
    low, high = full["rate_ci95"]
    assert low < 2 / 40 < high  # Wilson 95 % for 2/40: (0.0138, 0.165)
    assert (low, high) == pytest.approx((0.01382, 0.16503), abs=1e-4)
    part = pii.pii_section(texts, sample=10, seed=5)
    assert part["scanned"] == 10 and part["total"] == 40
    assert part == pii.pii_section(texts, sample=10, seed=5)
    assert not any("@" in e for e in full["examples"] + part["examples"])


def test_wilson_interval_reference_values() -> None:
    # Wilson 1927; e.g. 0 of 10 -> [0, 0.2775], 5 of 10 -> [0.2366, 0.7634]
    assert pii.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert pii.wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert all(math.isnan(v) for v in pii.wilson_interval(0, 0))


# --- Membership inference: reference cases ------------------------------------------------------


def test_memorised_members_are_found_perfectly() -> None:
    result = attack_from_losses(np.zeros(50), np.full(80, 5.0))
    assert result["auc"] == 1.0
    assert result["tpr_at_1pct_fpr"] == 1.0
    assert result["advantage"] == 1.0
    assert (result["n_members"], result["n_nonmembers"]) == (50, 80)
    assert (result["mean_loss_members"], result["mean_loss_nonmembers"]) == (0.0, 5.0)


def test_identical_loss_distributions_give_chance() -> None:
    rng = np.random.default_rng(7)
    result = attack_from_losses(rng.exponential(1.0, 4000), rng.exponential(1.0, 4000))
    assert result["auc"] == pytest.approx(0.5, abs=0.02)
    assert result["tpr_at_1pct_fpr"] == pytest.approx(0.01, abs=0.006)


def test_auc_matches_a_hand_count_of_pairs() -> None:
    # member beats non-member when its loss is lower: 5 of the 6 pairs, and one tie counts 1/2
    assert attack_from_losses([0.1, 0.2, 0.3], [0.25, 0.4])["auc"] == pytest.approx(5 / 6)
    assert attack_from_losses([0.1, 0.4], [0.4, 0.5])["auc"] == pytest.approx(3.5 / 4)


def test_tpr_at_fpr_interpolates_the_upper_envelope() -> None:
    fpr = np.array([0.0, 0.0, 0.02, 1.0])
    tpr = np.array([0.0, 0.5, 0.7, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.01) == pytest.approx(0.6)
    assert tpr_at_fpr(fpr, tpr, 0.0) == 0.5
    assert tpr_at_fpr(fpr, tpr, 1.0) == 1.0


def test_per_example_loss_is_cross_entropy() -> None:
    prob = np.array([[0.25, 0.75], [0.9, 0.1], [1.0, 0.0]])
    loss = per_example_loss(prob, np.array([1, 1, 1]))
    assert loss[:2] == pytest.approx([-math.log(0.75), -math.log(0.1)])
    assert loss[2] == pytest.approx(-math.log(1e-12))  # clipped, finite
    with pytest.raises(AuditError, match="class indices"):
        per_example_loss(prob, np.array([0, 1, 2]))


class MemorisingModel:
    """A 'model' that is certain of every training row's label and confidently wrong elsewhere."""

    def __init__(self, members: dict[str, int]) -> None:
        self.members = members
        self.calls = 0

    def __call__(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        self.calls += 1
        out = np.full((len(texts), 2), 0.5)
        for i, text in enumerate(texts):
            if text in self.members:
                out[i] = np.eye(2)[self.members[text]]
            else:
                out[i] = [0.99, 0.01]  # non-members all have label 1 below: high loss
        return out


def test_loss_attack_on_a_memorising_model() -> None:
    members = Rows([f"train {i}" for i in range(40)], None, np.arange(40) % 2)
    nonmembers = Rows([f"held out {i}" for i in range(25)], None, np.ones(25, dtype=np.int64))
    model = MemorisingModel(dict(zip(members.texts, members.labels.tolist(), strict=True)))
    result = loss_attack(model, members, nonmembers, sample=300, seed=0)
    assert result["auc"] == 1.0 and result["tpr_at_1pct_fpr"] == 1.0
    assert result["n_members"] == result["n_nonmembers"] == 25  # balanced
    assert result["mean_loss_members"] == 0.0
    assert result["mean_loss_nonmembers"] == pytest.approx(-math.log(0.01))
    small = loss_attack(model, members, nonmembers, sample=10, seed=3)
    assert small["n_members"] == small["n_nonmembers"] == 10
    assert small == loss_attack(model, members, nonmembers, sample=10, seed=3)


# --- The check ----------------------------------------------------------------------------------


def _uniform(texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
    return np.full((len(texts), 2), 0.5)


def _section(check: PrivacyCheck, context: AuditContext) -> dict[str, Any]:
    section = to_jsonable(check.run(context))
    json.dumps(section, allow_nan=False)
    return section  # type: ignore[no-any-return]


def test_check_follows_the_protocol_and_runs_what_it_can() -> None:
    check = PrivacyCheck()
    assert isinstance(check, Check) and check.name == "privacy"
    assert check.requires == ("texts", "predict_proba", "y_true")
    with pytest.raises(AuditError, match="the privacy check needs texts, predict_proba, y_true"):
        check.run(AuditContext())
    texts = ["call me on (212) 555-0147", "all good", "mail x.y@example.com", "fine"]
    context = AuditContext(y_true=np.array([0, 1, 0, 1]), texts=texts, predict_proba=_uniform)
    section = _section(check, context)
    assert section["membership_inference"] == {
        "skipped": "no training texts in the audit context (extras['train_texts'])"
    }
    assert section["pii"]["source"] == "audited"
    assert section["pii"]["by_entity"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    assert section["epsilon"] is None
    assert any("differential privacy" in n for n in section["notes"])
    assert any("audited texts instead" in n for n in section["notes"])
    assert _section(PrivacyCheck(), context) == section  # deterministic


def test_check_reads_training_rows_pairs_and_epsilon() -> None:
    train = [f"question {i}" for i in range(30)]
    pairs = [f"answer {i}" for i in range(30)]
    train[4] = "question from Ms. Jane Doe, jane@doe.org"
    seen: list[int] = []

    def predict(texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        assert pairs is not None and len(pairs) == len(texts)
        seen.append(len(texts))
        return _uniform(texts)

    context = AuditContext(
        y_true=np.array(["no", "yes"] * 10),
        labels=["no", "yes"],
        texts=[f"held {i}" for i in range(20)],
        predict_proba=predict,
        seed=3,
        extras={
            "train_texts": train,
            "train_pairs": pairs,
            "train_labels": np.arange(30) % 2,
            "text_pairs": [f"other {i}" for i in range(20)],
            "dp_epsilon": 8.0,
            "dp_delta": 1e-5,
            "part": "test",
        },
    )
    section = _section(PrivacyCheck(pii_sample=None, mia_sample=12), context)
    assert section["pii"]["source"] == "train" and section["pii"]["scanned"] == 30
    assert section["pii"]["by_entity"] == {"EMAIL_ADDRESS": 1, "PERSON": 1}
    assert section["pii"]["examples"] == ["question from Ms. <PERSON>, <EMAIL_ADDRESS>\nanswer 4"]
    mia = section["membership_inference"]
    assert seen == [12, 12]
    assert mia["n_members"] == mia["n_nonmembers"] == 12
    assert mia["auc"] == 0.5  # equal losses everywhere: every pair ties
    assert mia["mean_loss_members"] == pytest.approx(math.log(2))
    assert mia["nonmembers_from"] == "test"
    assert section["epsilon"] == 8.0 and section["delta"] == 1e-5
    assert not any("differential privacy" in n for n in section["notes"])


# --- End to end on a real tiny run --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_context(tmp_path_factory: pytest.TempPathFactory) -> AuditContext:
    from ethos import RunConfig
    from ethos.audit.run_context import context_from_run
    from ethos.training import train

    tmp: Path = tmp_path_factory.mktemp("privacy-run")
    config = RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 300, "min_group_size": 1},
            "model": {"max_length": 40},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 5},
            "output_dir": str(tmp),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(config, quiet=True)
        return context_from_run(run)


def test_privacy_check_on_a_tiny_compas_run(tiny_context: AuditContext) -> None:
    section = _section(PrivacyCheck(), tiny_context)
    n_train = len(tiny_context.extras["train_texts"])
    n_test = len(tiny_context.texts or [])
    found = section["pii"]
    assert found["source"] == "train"
    assert found["scanned"] == found["total"] == n_train  # fewer than the default 500
    assert sum(found["by_entity"].values()) >= found["texts_with_pii"]
    assert set(found["by_entity"]) <= set(pii.DEFAULT_ENTITIES)
    assert all("<" in e for e in found["examples"])
    mia = section["membership_inference"]
    assert mia["n_members"] == mia["n_nonmembers"] == min(300, n_train, n_test)
    assert 0.0 <= mia["auc"] <= 1.0 and 0.0 <= mia["tpr_at_1pct_fpr"] <= 1.0
    assert mia["mean_loss_members"] > 0 and mia["mean_loss_nonmembers"] > 0
    # after five steps the model has memorised nothing: the attack is near chance
    assert abs(mia["auc"] - 0.5) < 0.2
    assert section["epsilon"] is None
    small = PrivacyCheck(pii_sample=40, mia_sample=20)
    again = _section(small, tiny_context)
    assert again["pii"]["scanned"] == 40 and again["membership_inference"]["n_members"] == 20
    assert again == _section(small, tiny_context)  # deterministic
