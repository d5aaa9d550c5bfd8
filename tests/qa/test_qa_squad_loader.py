"""The SQuAD loader: the bundled file, the paragraph-level split, and every validation error."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ethos.data.squad import SQUAD_TINY_PATH, QADataset, load_squad
from ethos.errors import DataError
from ethos.hashing import file_sha256

CONTEXT = "Alexander Fleming discovered penicillin in 1928 in London."


def document(n_paragraphs: int = 10) -> dict[str, Any]:
    paragraphs = []
    for p in range(n_paragraphs):
        context = f"Paragraph {p}: " + CONTEXT
        qas = [
            {
                "id": f"p{p}-who",
                "question": "Who discovered penicillin?",
                "answers": [
                    {"text": "Alexander Fleming", "answer_start": context.index("Alexander")}
                ],
            },
            {
                "id": f"p{p}-when",
                "question": "When?",
                "answers": [{"text": "1928", "answer_start": context.index("1928")}],
            },
        ]
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": "Penicillin", "paragraphs": paragraphs}]}


def write(tmp_path: Path, doc: Any, name: str = "qa.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_bundled_tiny_file_loads(squad_tiny: QADataset) -> None:
    assert len(squad_tiny) == 60
    assert squad_tiny.n_paragraphs == 12
    assert not squad_tiny.is_impossible.any()
    assert squad_tiny.version == "1.1"
    assert squad_tiny.source_sha256 == file_sha256(str(SQUAD_TINY_PATH))
    for context, answers in zip(squad_tiny.contexts, squad_tiny.answers, strict=True):
        for text, start in answers:
            assert context[start : start + len(text)] == text
    text = repr(squad_tiny)
    assert text.startswith(
        "<QADataset 'squad_tiny': 60 questions, 12 paragraphs, 0 unanswerable, fingerprint "
    )
    assert "split:" in text and "paragraphs)" in text


def test_split_keeps_each_paragraph_in_one_part(squad_tiny: QADataset) -> None:
    for paragraph in set(squad_tiny.paragraph_ids.tolist()):
        assert len(set(squad_tiny.split[squad_tiny.paragraph_ids == paragraph].tolist())) == 1
    contexts_by_part = {
        p: set(squad_tiny.part(p).contexts) for p in ("train", "validation", "test")
    }
    assert not contexts_by_part["train"] & contexts_by_part["validation"]
    assert not contexts_by_part["train"] & contexts_by_part["test"]
    assert not contexts_by_part["validation"] & contexts_by_part["test"]
    assert all(contexts_by_part.values())


def test_part_is_aligned_and_keeps_fingerprint(squad_tiny: QADataset) -> None:
    train = squad_tiny.part("train")
    assert train.name == "squad_tiny[train]"
    assert train.fingerprint == squad_tiny.fingerprint
    assert sum(len(squad_tiny.part(p)) for p in ("train", "validation", "test")) == 60
    position = {qid: i for i, qid in enumerate(squad_tiny.ids)}
    for i, qid in enumerate(train.ids):
        j = position[qid]
        assert train.questions[i] == squad_tiny.questions[j]
        assert train.answers[i] == squad_tiny.answers[j]
        assert train.contexts[i] == squad_tiny.contexts[j]
    refs = train.references()
    assert set(refs) == set(train.ids) and all(len(v) == 1 for v in refs.values())
    with pytest.raises(ValueError, match="unknown split part"):
        squad_tiny.part("dev")


def test_split_and_fingerprint_do_not_depend_on_paragraph_order(tmp_path: Path) -> None:
    doc = document()
    a = load_squad(write(tmp_path, doc, "a.json"))
    reversed_doc = copy.deepcopy(doc)
    reversed_doc["data"][0]["paragraphs"].reverse()
    b = load_squad(write(tmp_path, reversed_doc, "b.json"))
    assert dict(zip(a.ids, a.split, strict=True)) == dict(zip(b.ids, b.split, strict=True))
    assert a.fingerprint == b.fingerprint
    assert a.source_sha256 != b.source_sha256


def test_fingerprint_changes_with_answer_and_seed(tmp_path: Path) -> None:
    base = load_squad(write(tmp_path, document(), "a.json"))
    assert load_squad(write(tmp_path, document(), "same.json")).fingerprint == base.fingerprint
    changed = document()
    changed["data"][0]["paragraphs"][3]["qas"][0]["answers"][0]["text"] = "Alexander"
    assert load_squad(write(tmp_path, changed, "b.json")).fingerprint != base.fingerprint
    reseeded = load_squad(write(tmp_path, document(), "c.json"), seed=99)
    assert (reseeded.split != base.split).any()
    assert reseeded.fingerprint != base.fingerprint


def test_whole_file_into_one_part_and_zero_fractions(tmp_path: Path) -> None:
    path = write(tmp_path, document())
    dev = load_squad(path, part="validation")
    assert set(dev.split.tolist()) == {"validation"}
    no_test = load_squad(path, test=0.0)
    assert "test" not in set(no_test.split.tolist())
    assert {"train", "validation"} <= set(no_test.split.tolist())


def test_squad_v2_unanswerable_and_gzip(tmp_path: Path) -> None:
    doc = document(3)
    doc["version"] = "v2.0"
    doc["data"][0]["paragraphs"][0]["qas"].append(
        {"id": "nope", "question": "Who discovered insulin?", "answers": [], "is_impossible": True}
    )
    path = tmp_path / "v2.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(doc, handle)
    data = load_squad(path)
    assert data.name == "v2"
    assert int(data.is_impossible.sum()) == 1
    assert data.answers[list(data.ids).index("nope")] == ()
    assert data.references()["nope"] == []
    assert "1 unanswerable" in repr(data)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"SQuAD file .*nothere\.json does not exist"):
        load_squad(tmp_path / "nothere.json")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("  \n")
    with pytest.raises(DataError, match="is empty"):
        load_squad(path)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"version": "1.1", "data": [\n  {"title": oops}]}')
    with pytest.raises(DataError, match=r"is not valid JSON: .*line 2, column"):
        load_squad(path)


def test_no_questions(tmp_path: Path) -> None:
    doc = document(1)
    doc["data"][0]["paragraphs"][0]["qas"] = []
    with pytest.raises(DataError, match="contains no questions"):
        load_squad(write(tmp_path, doc))
    with pytest.raises(DataError, match="contains no questions"):
        load_squad(write(tmp_path, {"version": "1.1", "data": []}))


def _mutated(change: Any) -> dict[str, Any]:
    doc = document(3)
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.clear(), r"the top level has no 'data' field"),
        (lambda d: d.update(data={"x": 1}), r"data is a JSON object, expected array"),
        (lambda d: d["data"].append(3), r"data\[1\] is a JSON integer, expected object"),
        (lambda d: d["data"][0].pop("paragraphs"), r"data\[0\] has no 'paragraphs' field"),
        (
            lambda d: d["data"][0]["paragraphs"][2].pop("context"),
            r"data\[0\]\.paragraphs\[2\] has no 'context' field",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][2]["qas"][1].update(question=None),
            r"data\[0\]\.paragraphs\[2\]\.qas\[1\]\.question is a JSON null, expected string",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][2]["qas"][1].pop("id"),
            r"data\[0\]\.paragraphs\[2\]\.qas\[1\] has no 'id' field",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][1]["qas"][0]["answers"][0].update(
                answer_start="3"
            ),
            r"data\[0\]\.paragraphs\[1\]\.qas\[0\]\.answers\[0\]\.answer_start is a JSON string, "
            r"expected integer",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][1]["qas"][0].update(is_impossible="no"),
            r"qas\[0\]\.is_impossible is a JSON string, not true/false",
        ),
    ],
)
def test_wrong_structure_names_the_json_path(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        load_squad(write(tmp_path, _mutated(change)))
    assert "fix:" in str(info.value)


def test_top_level_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the top level is a JSON array, expected object"):
        load_squad(write(tmp_path, [1, 2]))


def test_misaligned_answer_start_says_where_the_text_is(tmp_path: Path) -> None:
    doc = document(3)
    answer = doc["data"][0]["paragraphs"][2]["qas"][1]["answers"][0]
    right = answer["answer_start"]
    answer["answer_start"] = right + 1
    with pytest.raises(DataError) as info:
        load_squad(write(tmp_path, doc))
    message = str(info.value)
    assert "data[0].paragraphs[2].qas[1].answers[0] (question 'p2-when')" in message
    assert f"says the answer '1928' starts at character {right + 1}" in message
    assert "the context there reads '928 '" in message
    assert f"the text occurs at character {right}; set answer_start" in message


def test_answer_text_not_in_context(tmp_path: Path) -> None:
    doc = document(3)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "Marie Curie"
    with pytest.raises(DataError, match="does not occur in its context at all"):
        load_squad(write(tmp_path, doc))


def test_negative_answer_start(tmp_path: Path) -> None:
    doc = document(3)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = -1
    with pytest.raises(DataError, match="starts at character -1"):
        load_squad(write(tmp_path, doc))


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    doc = document(3)
    doc["data"][0]["paragraphs"][2]["qas"][1]["id"] = "p0-who"
    with pytest.raises(
        DataError,
        match=r"question id 'p0-who' is used twice, at data\[0\]\.paragraphs\[0\]\.qas\[0\] "
        r"and data\[0\]\.paragraphs\[2\]\.qas\[1\]",
    ):
        load_squad(write(tmp_path, doc))


def test_answerable_without_answers_and_impossible_with_answers(tmp_path: Path) -> None:
    doc = document(3)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"] = []
    with pytest.raises(DataError, match=r"has no answers") as info:
        load_squad(write(tmp_path, doc, "a.json"))
    assert "is_impossible" in str(info.value)
    doc = document(3)
    doc["data"][0]["paragraphs"][0]["qas"][0]["is_impossible"] = True
    with pytest.raises(DataError, match="is marked is_impossible but has answers"):
        load_squad(write(tmp_path, doc, "b.json"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validation": 1.5}, r"validation fraction 1\.5 is outside"),
        ({"test": -0.1}, r"test fraction -0\.1 is outside"),
        ({"validation": 0.5, "test": 0.5}, "leave no paragraphs for training"),
        ({"part": "dev"}, "unknown split part 'dev'"),
    ],
)
def test_bad_split_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_squad(write(tmp_path, document()), **kwargs)


def test_ids_are_strings_array(squad_tiny: QADataset) -> None:
    assert isinstance(squad_tiny.ids, np.ndarray)
    assert len(set(squad_tiny.ids.tolist())) == len(squad_tiny)
