"""QA features on the bundled tokenizer: windows, answer positions, and decoding back to text."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from ethos.data.squad import QADataset
from ethos.errors import DataError, ModelError
from ethos.models.qa import CLS_INDEX, QAFeatures, decode_best_spans, prepare_qa_features
from ethos.models.squad_metric import squad_scores


def recovered(features: QAFeatures, f: int, contexts: tuple[str, ...] | list[str]) -> str:
    assert features.start_positions is not None and features.end_positions is not None
    start, end = int(features.start_positions[f]), int(features.end_positions[f])
    first, last = features.offsets[f][start], features.offsets[f][end]
    assert first is not None and last is not None
    return contexts[int(features.example_index[f])][first[0] : last[1]]


def test_round_trip_one_window_per_question(tokenizer: Any, squad_tiny: QADataset) -> None:
    features = prepare_qa_features(
        tokenizer,
        squad_tiny.questions,
        squad_tiny.contexts,
        squad_tiny.answers,
        max_length=256,
        doc_stride=64,
    )
    assert len(features) == len(squad_tiny)
    assert features.example_index.tolist() == list(range(len(squad_tiny)))
    for f in range(len(features)):
        assert features.start_positions is not None
        assert features.start_positions[f] != CLS_INDEX
        assert recovered(features, f, squad_tiny.contexts) == squad_tiny.answers[f][0][0]


def test_round_trip_with_small_windows(tokenizer: Any, squad_tiny: QADataset) -> None:
    features = prepare_qa_features(
        tokenizer,
        squad_tiny.questions,
        squad_tiny.contexts,
        squad_tiny.answers,
        max_length=64,
        doc_stride=16,
    )
    assert features.start_positions is not None and features.end_positions is not None
    assert len(features) > len(squad_tiny)  # the paragraphs need several 64-token windows
    found = set()
    for f in range(len(features)):
        assert len(features.input_ids[f]) <= 64
        example = int(features.example_index[f])
        if features.start_positions[f] == CLS_INDEX:
            assert features.end_positions[f] == CLS_INDEX
            continue
        assert features.start_positions[f] <= features.end_positions[f]
        assert recovered(features, f, squad_tiny.contexts) == squad_tiny.answers[example][0][0]
        found.add(example)
    assert found == set(range(len(squad_tiny)))  # every short answer lies whole in some window


def test_offsets_only_for_context_tokens(tokenizer: Any) -> None:
    features = prepare_qa_features(
        tokenizer,
        ["Who?"],
        ["Gutenberg printed."],
        [[("Gutenberg", 0)]],
        max_length=32,
        doc_stride=8,
    )
    offsets = features.offsets[0]
    ids = features.input_ids[0]
    assert offsets[0] is None and ids[0] == tokenizer.cls_token_id
    assert offsets[-1] is None and ids[-1] == tokenizer.sep_token_id
    question_part = offsets[: ids.index(tokenizer.sep_token_id) + 1]
    assert all(span is None for span in question_part)
    assert next(span for span in offsets if span is not None) == (0, 3)  # "gut" of gutenberg
    assert features.token_type_ids is not None


def long_context() -> tuple[str, int]:
    filler = " ".join(f"Sentence number {i} talks about nothing in particular." for i in range(40))
    context = filler + " The treaty was signed in Westphalia in 1648. " + filler
    return context, context.index("Westphalia")


def test_long_context_is_split_with_stride(tokenizer: Any) -> None:
    context, start = long_context()
    max_length, stride = 96, 24
    features = prepare_qa_features(
        tokenizer,
        ["Where was the treaty signed?"],
        [context],
        [[("Westphalia", start)]],
        max_length=max_length,
        doc_stride=stride,
    )
    assert len(features) > 5
    assert set(features.example_index.tolist()) == {0}
    spans = [[s for s in offsets if s is not None] for offsets in features.offsets]
    assert spans[0][0][0] == 0
    assert spans[-1][-1][1] == len(context.rstrip())
    for window, following in itertools.pairwise(spans):
        assert window[-stride:] == following[:stride]  # consecutive windows share the stride
    assert all(len(ids) <= max_length for ids in features.input_ids)
    assert features.start_positions is not None
    hits = [f for f in range(len(features)) if features.start_positions[f] != CLS_INDEX]
    assert 1 <= len(hits) <= 2
    for f in hits:
        assert recovered(features, f, [context]) == "Westphalia"
    # not padded: the last window is shorter, and all attention masks are ones
    assert len(features.input_ids[-1]) < max_length
    assert all(set(mask) == {1} for mask in features.attention_mask)


def test_unanswerable_targets_cls_and_no_answers_means_no_labels(tokenizer: Any) -> None:
    features = prepare_qa_features(
        tokenizer, ["Who?"], ["Nobody knows."], [[]], max_length=32, doc_stride=8
    )
    assert features.start_positions is not None and features.end_positions is not None
    assert (features.start_positions[0], features.end_positions[0]) == (CLS_INDEX, CLS_INDEX)
    row = features.rows()[0]
    assert row["start_positions"] == 0 and set(row) >= {"input_ids", "attention_mask"}
    unlabeled = prepare_qa_features(
        tokenizer, ["Who?"], ["Nobody knows."], max_length=32, doc_stride=8
    )
    assert unlabeled.start_positions is None
    assert "start_positions" not in unlabeled.rows()[0]


def test_rows_can_be_padded_by_a_collator(tokenizer: Any, squad_tiny: QADataset) -> None:
    from transformers import DataCollatorWithPadding

    features = prepare_qa_features(
        tokenizer,
        squad_tiny.questions[:4],
        squad_tiny.contexts[:4],
        squad_tiny.answers[:4],
        max_length=64,
        doc_stride=16,
    )
    batch = DataCollatorWithPadding(tokenizer)(features.rows()[:5])
    longest = max(len(ids) for ids in features.input_ids[:5])
    assert tuple(batch["input_ids"].shape) == (5, longest)
    assert features.start_positions is not None
    assert batch["start_positions"].tolist() == features.start_positions[:5].tolist()


def test_question_too_long_for_window(tokenizer: Any) -> None:
    question = "why " * 40
    with pytest.raises(
        DataError, match=r"question 1 is 40 tokens long, leaving 0 of max_length 32"
    ):
        prepare_qa_features(
            tokenizer, ["ok?", question], ["text.", "text."], max_length=32, doc_stride=8
        )


def test_window_longer_than_model_and_slow_tokenizer(tokenizer: Any) -> None:
    with pytest.raises(ModelError, match=r"max_length 1024 is longer than the model accepts \(512"):
        prepare_qa_features(tokenizer, ["q"], ["c"], max_length=1024, doc_stride=128)

    class Slow:
        is_fast = False

    with pytest.raises(ModelError, match="not a fast tokenizer"):
        prepare_qa_features(Slow(), ["q"], ["c"], max_length=64, doc_stride=16)


def planted(features: QAFeatures, width: int, spans: dict[int, tuple[int, int, float]]) -> Any:
    """Logits of -5 everywhere (padded to ``width``), chosen (start, end, height) per feature."""
    start = np.full((len(features), width), -5.0)
    end = np.full((len(features), width), -5.0)
    for f, (s, e, height) in spans.items():
        start[f, s] = height
        end[f, e] = height
    return start, end


def test_decode_picks_planted_span(tokenizer: Any) -> None:
    context = "The judge read the long order to the court on Monday."
    # one token per word: the judge read the long order to the court on monday .
    features = prepare_qa_features(
        tokenizer, ["What did the judge read?"], [context], max_length=64, doc_stride=16
    )
    offsets = features.offsets[0]
    first = next(t for t, span in enumerate(offsets) if span is not None)
    long_order = (first + 4, first + 5)  # "long order"
    start, end = planted(features, 80, {0: (*long_order, 9.0)})
    assert decode_best_spans(start, end, features, [context]) == ["long order"]
    # higher logits on question and special tokens are ignored: only context tokens answer
    start[0, 1] = end[0, 2] = 50.0
    start[0, CLS_INDEX] = end[0, CLS_INDEX] = 50.0
    assert decode_best_spans(start, end, features, [context]) == ["long order"]
    # end before start is no span: the best end (judge) precedes the best start (long),
    # so the best valid pair is start "long" (9) + end "to" (1)
    start, end = planted(features, 80, {0: (first + 4, first + 1, 9.0)})
    end[0, first + 6] = 1.0
    assert decode_best_spans(start, end, features, [context]) == ["long order to"]
    # length limit: "the judge read the long" is 5 tokens; at max_answer_tokens=4 the best
    # remaining pair is start "the" (9) + end "judge" (0)
    start, end = planted(features, 80, {0: (first, first + 4, 9.0)})
    end[0, first + 1] = 0.0
    assert decode_best_spans(start, end, features, [context]) == ["The judge read the long"]
    assert decode_best_spans(start, end, features, [context], max_answer_tokens=4) == ["The judge"]


def test_decode_chooses_best_window_and_null_answer(tokenizer: Any) -> None:
    context, start_char = long_context()
    question = "Where was the treaty signed?"
    features = prepare_qa_features(
        tokenizer,
        [question, question],
        [context, "The treaty was signed in Paris."],
        [[("Westphalia", start_char)], [("Paris", 25)]],
        max_length=96,
        doc_stride=24,
    )
    assert features.start_positions is not None and features.end_positions is not None
    spans = {}
    for f in range(len(features)):
        s, e = int(features.start_positions[f]), int(features.end_positions[f])
        if s != CLS_INDEX:
            spans[f] = (s, e, 8.0)
        else:  # a distractor in every other window, scoring lower than the gold span
            first = next(t for t, span in enumerate(features.offsets[f]) if span is not None)
            spans[f] = (first, first, 3.0)
    start, end = planted(features, 96, spans)
    predictions = decode_best_spans(
        start, end, features, [context, "The treaty was signed in Paris."]
    )
    assert predictions == ["Westphalia", "Paris"]
    scores = squad_scores(
        {"a": predictions[0], "b": predictions[1]}, {"a": ["Westphalia"], "b": ["Paris"]}
    )
    assert scores["exact_match"] == 100.0
    # SQuAD 2.0: a strong classifier-token score makes the second example unanswerable
    last = len(features) - 1
    start[last, CLS_INDEX] = end[last, CLS_INDEX] = 20.0
    with_null = decode_best_spans(
        start, end, features, [context, "The treaty was signed in Paris."], null_score_threshold=0.0
    )
    assert with_null == ["Westphalia", ""]


def test_decode_checks_shapes(tokenizer: Any) -> None:
    features = prepare_qa_features(tokenizer, ["q?"], ["c."], max_length=32, doc_stride=8)
    with pytest.raises(ValueError, match="for 1 features"):
        decode_best_spans(np.zeros((2, 8)), np.zeros((2, 8)), features, ["c."])


def test_no_examples_give_no_features(tokenizer: Any) -> None:
    features = prepare_qa_features(tokenizer, [], [], [], max_length=64, doc_stride=16)
    assert len(features) == 0 and features.rows() == []
    assert decode_best_spans(np.zeros((0, 4)), np.zeros((0, 4)), features, []) == []
