"""The explanations check on a real fine-tuned MiniLM: completeness, escalation, identity share.

Completeness (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks"): the
attributions of an input add up to F(x) - F(baseline). The reference F values here come from
plain torch forward passes written in the test, independent of captum and of the check.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Any

import numpy as np
import pytest
import torch

from ethos import RunConfig
from ethos.audit.errors import AuditError
from ethos.audit.explanations import (
    ExplanationsCheck,
    field_spans,
    identity_mask,
    identity_share,
)
from ethos.audit.protocol import AuditContext, Check
from ethos.audit.run_context import context_from_run
from ethos.errors import ModelError
from ethos.models.attribution import MIN_DELTA, input_embeddings, token_attributions
from ethos.text.lexicons import identity_terms
from ethos.training import train


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> AuditContext:
    # max_length 64 (not 40) so that the race and sex fields at the end of each COMPAS record
    # survive truncation and the sensitive-field share has something to measure
    config = RunConfig.model_validate(
        {
            "data": {
                "source": "compas",
                "sample": 300,
                "min_group_size": 1,
                "include_sensitive_in_text": True,
            },
            "model": {"max_length": 64},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 8, "learning_rate": 1e-4},
            "output_dir": str(tmp_path_factory.mktemp("explain")),
        }
    )
    return context_from_run(train(config, quiet=True))


def _reference_delta(context: AuditContext, text: str) -> tuple[int, float, float]:
    """(arg-max class, P(x)[class], P(x)[class] - P(baseline)[class]) by plain forward passes."""
    tokenizer = context.extras["tokenizer"]
    encoded = tokenizer(
        text, truncation=True, max_length=context.extras["max_length"], return_tensors="pt"
    )
    ids = encoded["input_ids"]
    keep = torch.tensor(
        tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    ).bool()
    baseline = torch.where(keep, ids, torch.full_like(ids, tokenizer.pad_token_id))
    with torch.no_grad():
        p_x = torch.softmax(context.model(**encoded).logits, dim=-1)[0]
        p_b = torch.softmax(context.model(**{**encoded, "input_ids": baseline}).logits, dim=-1)[0]
    target = int(p_x.argmax())
    return target, float(p_x[target]), float(p_x[target] - p_b[target])


def test_completeness_holds_on_the_fine_tuned_minilm(context: AuditContext) -> None:
    check = ExplanationsCheck(per_group=1, max_examples=4, n_report_examples=4)
    assert isinstance(check, Check)
    section = check.run(context)
    json.dumps(section, allow_nan=False)

    completeness = section["completeness"]
    assert section["n_examples"] == len(section["examples"]) == 4
    assert completeness["within_tolerance"] is True
    assert completeness["max_gap"] <= completeness["tolerance"] == 0.05
    assert len(completeness["gaps"]) == len(completeness["steps_used"]) == 4
    assert section["sample"]["stratified_by"] == "race"
    assert sum(section["sample"]["by_group"].values()) == 4

    names = context.extras["label_names"]
    tokenizer = context.extras["tokenizer"]
    for example in section["examples"]:
        target, probability, delta = _reference_delta(context, example["text"])
        assert abs(delta) > MIN_DELTA  # the check is not vacuous: the baseline moves F
        assert example["predicted"] == names[target] == names[context.y_pred[example["row"]]]
        assert example["probability"] == pytest.approx(probability, abs=1e-5)
        assert example["probability"] - example["baseline_probability"] == pytest.approx(
            delta, abs=1e-5
        )
        total = math.fsum(example["attributions"])
        assert abs(total - delta) <= 0.05 * abs(delta)
        ids = tokenizer(example["text"], truncation=True, max_length=64)["input_ids"]
        assert example["tokens"] == tokenizer.convert_ids_to_tokens(ids)[1:-1]

    # race and sex are in the text and within 64 tokens: their fields carry some attribution
    for column in ("race", "sex"):
        field = section["sensitive_field_share"][column]
        assert field["visible"] == 1.0 and field["n"] == 4
        assert 0 < field["overall"] < 1
    assert set(section["identity_share"]) == set(context.groups.columns)
    assert all(0 <= v <= 1 for v in section["identity_share"]["race"].values())
    assert section["top_tokens"] and all(len(rows) <= 10 for rows in section["top_tokens"].values())
    assert not context.model.training


def test_a_tiny_tolerance_escalates_the_steps_and_shrinks_the_gap(context: AuditContext) -> None:
    model, tokenizer = context.model, context.extras["tokenizer"]
    texts = list(context.texts[:1])
    coarse = token_attributions(model, tokenizer, texts, n_steps=2, max_steps=2, max_length=64)
    fine = token_attributions(
        model, tokenizer, texts, n_steps=8, max_steps=32, tolerance=1e-9, max_length=64
    )
    assert [r.n_steps for r in coarse] == [2]
    assert [r.n_steps for r in fine] == [32]  # 8 -> 16 -> 32, then the cap
    for before, after in zip(coarse, fine, strict=True):
        # Gauss-Legendre error falls fast once the steps resolve the path (not monotonically
        # at very few steps): at 32 steps it is far below the default tolerance
        assert after.relative_gap < min(before.relative_gap, 0.005)
        assert after.delta == pytest.approx(before.delta, abs=1e-7)  # same F(x) - F(x')

    check = ExplanationsCheck(per_group=1, max_examples=1, n_steps=2, max_steps=8, tolerance=1e-9)
    section = check.run(context)
    completeness = section["completeness"]
    assert section["n_steps"] == 2
    assert completeness["steps_used"] == [8]  # 2 -> 4 -> 8
    assert completeness["max_steps"] == 8
    assert completeness["within_tolerance"] is False


def test_identity_share_counts_attribution_on_identity_words() -> None:
    assert {"woman", "african-american", "20-year-old"} <= identity_terms()
    assert not {"the", "person", "was", "arrested", "for", "theft"} & identity_terms()
    assert identity_share(["the", "woman", "left"], [0.1, 0.3, -0.1]) == pytest.approx(0.6)
    assert identity_share(["the", "person", "left"], [0.1, 0.3, -0.1]) == 0.0
    assert math.isnan(identity_share(["the", "woman"], [0.0, 0.0]))
    # word pieces and hyphenated compounds
    assert identity_mask(["race", ":", "african", "-", "american", ";"]) == [
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    assert identity_mask(["a", "20", "-", "year", "-", "old", "man"]) == [False] + [True] * 6
    spans = field_spans("age: 5; race: Other", ["age", "race"])
    assert spans == {"age": (0, 6), "race": (8, 19)}
    assert field_spans("age: 5", ["age", "race"]) is None


def test_identity_share_is_larger_with_identity_words(context: AuditContext) -> None:
    texts = ["the woman was arrested for theft", "the person was arrested for theft"]
    results = token_attributions(
        context.model, context.extras["tokenizer"], texts, n_steps=8, max_length=64
    )
    shares = []
    for result in results:
        words = result.words()
        shares.append(identity_share([w for w, _ in words], [a for _, a in words]))
    assert 0 < shares[0] <= 1
    assert shares[1] == 0.0
    assert "TokenAttribution" in repr(results[0]) and "steps" in repr(results[0])


def test_same_seed_same_section(context: AuditContext) -> None:
    def section(seed: int) -> dict[str, Any]:
        check = ExplanationsCheck(per_group=1, max_examples=2, n_steps=2, max_steps=2)
        return check.run(dataclasses.replace(context, seed=seed))

    first = section(0)
    assert json.dumps(first, sort_keys=True) == json.dumps(section(0), sort_keys=True)
    other = section(1)
    assert [e["row"] for e in other["examples"]] != [e["row"] for e in first["examples"]]


def test_lora_wrapped_model_is_explained_through_its_base_embeddings(
    context: AuditContext,
) -> None:
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(
        copy.deepcopy(context.model),
        LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"]),
    )
    wrapped.eval()
    assert input_embeddings(wrapped) is wrapped.get_input_embeddings()
    assert isinstance(input_embeddings(wrapped), torch.nn.Embedding)
    results = token_attributions(
        wrapped, context.extras["tokenizer"], list(context.texts[:1]), n_steps=16, max_length=64
    )
    assert all(r.relative_gap <= 0.05 for r in results)


def test_unusable_input_raises_audit_error(context: AuditContext) -> None:
    check = ExplanationsCheck()
    with pytest.raises(AuditError, match="the explanations check needs model"):
        check.run(AuditContext(texts=["a text"]))
    with pytest.raises(AuditError, match="needs texts, model"):
        check.run(AuditContext())
    extras = {"tokenizer": context.extras["tokenizer"]}
    with pytest.raises(AuditError, match="empty input: there are no texts"):
        check.run(AuditContext(texts=[], model=context.model, extras=extras))
    with pytest.raises(AuditError, match="needs the model's tokenizer"):
        check.run(AuditContext(texts=["a text"], model=context.model))
    with pytest.raises(AuditError, match="length mismatch: groups has 240 rows but"):
        check.run(
            AuditContext(
                texts=["a text"],
                model=context.model,
                groups=context.groups.iloc[:0].reindex(range(240)),
                extras=extras,
            )
        )
    with pytest.raises(AuditError, match="input-embedding layer"):
        check.run(AuditContext(texts=["a text"], model=object(), extras=extras))
    with pytest.raises(AuditError, match="n_steps <= max_steps"):
        ExplanationsCheck(n_steps=64, max_steps=32).run(
            AuditContext(texts=["a text"], model=context.model, extras=extras)
        )
    with pytest.raises(ModelError, match="target classes \\[7\\]"):
        token_attributions(context.model, extras["tokenizer"], ["a text"], target=7)


def test_plain_texts_without_groups_are_explained(context: AuditContext) -> None:
    plain = AuditContext(
        texts=["a text", "another text"],
        model=context.model,
        extras={"tokenizer": context.extras["tokenizer"]},
    )
    section = ExplanationsCheck(max_examples=1, n_steps=2, max_steps=2).run(plain)
    assert section["n_examples"] == 1 and section["sample"]["stratified_by"] is None
    assert section["identity_share"] == {} and section["sensitive_field_share"] == {}
    assert np.isfinite(section["completeness"]["max_gap"])
    assert section["examples"][0]["group"] is None
