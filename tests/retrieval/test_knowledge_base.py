"""Knowledge bases: passages, chunks, embeddings, search, files, and the mistakes users make.

The bundled MiniLM is loaded once for the module; corpora are a dozen short passages, so the whole
file encodes a few hundred short texts (seconds on one thread). A second, tiny random encoder with
MiniLM's vocabulary stands in for "a different encoder".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cli_helpers import run_ethos
from ethos.data.passages import Chunking, chunk_passages, load_passages
from ethos.errors import ConfigError, DataError, EthosError, ModelError
from ethos.models.embedding import SentenceEncoder
from ethos.models.knowledge_base import KB_JSON, PASSAGES, VECTORS, KnowledgeBase, build_kb
from ethos.stats.retrieval import retrieval_metrics, top_k
from ethos.text.bm25 import BM25

torch.set_num_threads(1)

TOPICS = [
    "Aspirin taken daily lowers the risk of a second heart attack in adults over fifty.",
    "Glaciers in the Alps have lost a third of their ice volume since the year 2000.",
    "The violin concerto was premiered in Leipzig with the composer conducting the orchestra.",
    "Sourdough bread rises because wild yeast and lactic bacteria ferment the flour.",
    "Photosynthesis turns carbon dioxide and water into sugar using the energy of light.",
    "The marathon runner trained at altitude to raise her red blood cell count.",
    "Compilers translate source code into machine instructions before a program runs.",
    "Honeybees communicate the direction of flowers to the hive with a waggle dance.",
    "Vaccination against measles prevents outbreaks when coverage stays above ninety-five percent.",
    "The central bank raised interest rates to slow inflation in the housing market.",
    "Octopuses can change the colour and texture of their skin to hide from predators.",
    "Insulin resistance in type two diabetes is improved by regular aerobic exercise.",
]
IDS = [f"doc-{i:02d}" for i in range(len(TOPICS))]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.load("default")


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory, encoder: SentenceEncoder) -> Path:
    """A different encoder: one random layer of width 32 with MiniLM's tokenizer."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=encoder.tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    source = Path(encoder.identity.path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def kb(encoder: SentenceEncoder) -> KnowledgeBase:
    return build_kb(chunk_passages(IDS, TOPICS), encoder)


def test_recall_is_one_when_each_question_repeats_its_passage(
    kb: KnowledgeBase, encoder: SentenceEncoder
) -> None:
    gold = [{pid} for pid in IDS]
    _, dense = kb.search_passages(encoder.encode(TOPICS).vectors, k=10)
    _, names = kb.passage_groups()
    _, lexical = top_k(BM25(TOPICS).scores(TOPICS), 10)
    bm25 = [[names[i] for i in row] for row in lexical]
    for ranked in (dense, bm25):
        assert retrieval_metrics(ranked, gold) == {
            "recall@1": 1.0,
            "recall@5": 1.0,
            "recall@10": 1.0,
            "mrr": 1.0,
        }


def test_a_chunk_of_a_long_passage_finds_its_passage(encoder: SentenceEncoder) -> None:
    long_texts = [" ".join(TOPICS[i : i + 3]) for i in range(0, 12, 3)]  # ~45 words each
    passages = chunk_passages(
        ["a", "b", "c", "d"], long_texts, chunking=Chunking(words=12, overlap=3)
    )
    assert len(passages) > 4 * 3
    small = build_kb(passages, encoder)
    _, ranked = small.search_passages(encoder.encode(list(passages.texts)).vectors, k=4)
    assert [row[0] for row in ranked] == list(passages.passage_ids)
    assert all(len(set(row)) == len(row) == 4 for row in ranked)  # each passage once


def test_chunks_are_overlapping_word_windows_with_ids_and_spans() -> None:
    text = "one two  three\nfour five six seven eight nine ten"
    passages = chunk_passages(["p"], [text], chunking=Chunking(words=4, overlap=1))
    assert passages.ids == ("p#0", "p#1", "p#2")
    assert passages.texts == ("one two  three\nfour", "four five six seven", "seven eight nine ten")
    assert [text[a:b] for a, b in zip(passages.starts, passages.ends, strict=True)] == list(
        passages.texts
    )
    whole = chunk_passages(["p"], [text], chunking=Chunking(enabled=False, words=10))
    assert whole.ids == ("p",) and whole.texts == (text,)
    with pytest.raises(ConfigError, match="overlap"):
        Chunking(words=4, overlap=4)


def test_fingerprint_changes_with_one_edited_passage(
    kb: KnowledgeBase, encoder: SentenceEncoder
) -> None:
    edited = [*TOPICS[:5], TOPICS[5].replace("her", "his"), *TOPICS[6:]]
    original = chunk_passages(IDS, TOPICS)
    changed = chunk_passages(IDS, edited)
    assert changed.fingerprint != original.fingerprint
    assert chunk_passages(IDS[::-1], TOPICS[::-1]).fingerprint == original.fingerprint  # order
    assert build_kb(changed, encoder).sha256 != kb.sha256
    assert kb.fingerprint == original.fingerprint


def test_save_and_load_round_trip(
    kb: KnowledgeBase, encoder: SentenceEncoder, tmp_path: Path
) -> None:
    folder = kb.save(tmp_path / "kb")
    assert sorted(p.name for p in folder.iterdir()) == sorted([KB_JSON, VECTORS, PASSAGES])
    loaded = KnowledgeBase.load(folder)
    assert np.array_equal(loaded.vectors, kb.vectors) and loaded.vectors.dtype == np.float32
    pd.testing.assert_frame_equal(loaded.passages, kb.passages)
    assert loaded.info == json.loads(json.dumps(kb.info))
    (hits,) = loaded.search_texts(["Which drug protects the heart?"], encoder, k=3)
    assert hits[0].passage_id == "doc-00" and [h.rank for h in hits] == [1, 2, 3]
    with pytest.raises(EthosError, match="already exists"):
        kb.save(folder)


def test_a_query_encoder_other_than_the_kbs_is_refused(
    kb: KnowledgeBase, tiny_encoder_dir: Path
) -> None:
    tiny = SentenceEncoder.load(str(tiny_encoder_dir))
    assert tiny.identity.dimension == 32
    with pytest.raises(ModelError, match="not comparable") as caught:
        kb.search_texts(["heart attack"], tiny)
    assert "weights_sha256" in caught.value.message and "--model default" in str(caught.value.hint)
    tiny_kb = build_kb(chunk_passages(IDS[:3], TOPICS[:3]), tiny)
    with pytest.raises(ModelError, match="built with encoder"):
        tiny_kb.check_encoder(kb.encoder)


def test_an_empty_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.txt files"):
        load_passages(tmp_path / "empty", scrub_pii=False)
    (tmp_path / "header.csv").write_text("id,text\n")
    with pytest.raises(DataError, match="no rows"):
        load_passages(tmp_path / "header.csv", scrub_pii=False)
    with pytest.raises(DataError, match="is empty"):
        chunk_passages([], [])
    with pytest.raises(DataError, match="no text: b"):
        chunk_passages(["a", "b"], ["fine", "  "])


def test_an_over_long_passage_with_chunking_off_is_named() -> None:
    texts = ["short one", "word " * 40]
    with pytest.raises(DataError, match=r"longer than the 30-word limit .*: long \(40 words\)"):
        chunk_passages(["short", "long"], texts, chunking=Chunking(enabled=False, words=30))


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (KB_JSON, lambda p: p.write_text("{not json"), "kb.json is damaged"),
        (
            VECTORS,
            lambda p: p.write_bytes(p.read_bytes()[:-8]),
            "vectors.npy is missing or damaged",
        ),
        (PASSAGES, lambda p: p.unlink(), "passages.parquet is missing or damaged"),
    ],
)
def test_damaged_files_are_named(
    kb: KnowledgeBase, tmp_path: Path, name: str, damage: object, message: str
) -> None:
    folder = kb.save(tmp_path / "kb")
    damage(folder / name)  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        KnowledgeBase.load(folder)


def test_edited_vectors_texts_or_encoder_record_are_detected(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    folder = kb.save(tmp_path / "kb")
    vectors = np.load(folder / VECTORS)
    vectors[0, 0] += 0.01
    np.save(folder / VECTORS, vectors)
    with pytest.raises(DataError, match=r"vectors\.npy does not match kb\.json"):
        KnowledgeBase.load(folder)
    folder = kb.save(tmp_path / "kb2")
    table = pd.read_parquet(folder / PASSAGES)
    table.loc[0, "text"] = "edited"
    table.to_parquet(folder / PASSAGES, index=False)
    with pytest.raises(DataError, match=r"passages\.parquet does not match kb\.json"):
        KnowledgeBase.load(folder)
    folder = kb.save(tmp_path / "kb3")
    info = json.loads((folder / KB_JSON).read_text())
    info["encoder"]["weights_sha256"] = "0" * 64
    (folder / KB_JSON).write_text(json.dumps(info))
    with pytest.raises(DataError, match="encoder record edited"):
        KnowledgeBase.load(folder)


def test_pii_is_masked_unless_kept(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "key": ["n1", "n2"],
            "body": [
                "Please contact Maria Gonzalez at maria.gonzalez@example.com about the trial.",
                "The trial enrolled 120 adults with asthma.",
            ],
        }
    )
    table.to_json(tmp_path / "notes.jsonl", orient="records", lines=True)
    masked = load_passages(tmp_path / "notes.jsonl", id_field="key", text_field="body")
    assert "<EMAIL_ADDRESS>" in masked.texts[0] and "Gonzalez" not in masked.texts[0]
    assert masked.pii["passages_masked"] == 1 and masked.pii["by_entity"]["EMAIL_ADDRESS"] == 1
    kept = load_passages(
        tmp_path / "notes.jsonl", id_field="key", text_field="body", scrub_pii=False
    )
    assert "maria.gonzalez@example.com" in kept.texts[0] and kept.pii == {"scrubbed": False}
    assert kept.fingerprint != masked.fingerprint
    with pytest.raises(DataError, match="has no column id, text"):
        load_passages(tmp_path / "notes.jsonl", scrub_pii=False)


def test_text_folders_and_bundled_pubmedqa(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("alpha passage", encoding="utf-8")
    (tmp_path / "docs" / "sub" / "b.txt").write_text("beta passage", encoding="utf-8")
    folder = load_passages(tmp_path / "docs", scrub_pii=False)
    assert folder.passage_ids == ("a", "sub/b") and folder.ids == ("a#0", "sub/b#0")
    pubmed = load_passages("pubmedqa", scrub_pii=False)
    assert pubmed.passage_count == 1000
    first = pubmed.passage_ids.index("pqal-000")
    assert pubmed.sources[first] == "pubmedqa_expert"
    assert "Context (" not in pubmed.texts[first]
    assert "pqaa-499" in pubmed.passage_ids


def test_cli_builds_and_searches_without_tracebacks(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    pd.DataFrame({"id": IDS, "text": TOPICS}).to_csv(tmp_path / "topics.csv", index=False)
    built = run_ethos("kb", "build", str(tmp_path / "topics.csv"), "-o", str(tmp_path / "kb"), "-q")
    assert built.returncode == 0, built.stderr
    assert "passages: 12 -> 12 chunks" in built.stdout and "kb_sha256" in built.stdout
    found = run_ethos("kb", "search", str(tmp_path / "kb"), "bees dancing", "-k", "2")
    assert found.returncode == 0, found.stderr
    assert found.stdout.split()[2] == "doc-07#0"
    wrong = run_ethos(
        "kb", "search", str(tmp_path / "kb"), "bees", "--model", str(tiny_encoder_dir)
    )
    (tmp_path / "empty").mkdir()
    empty = run_ethos("kb", "build", str(tmp_path / "empty"), "-o", str(tmp_path / "kb2"))
    for done, message in ((wrong, "not comparable"), (empty, "no .txt files")):
        assert done.returncode == 2
        assert "error:" in done.stderr and message in done.stderr and "fix:" in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["kb"], "Usage: ethos kb"),
        (["kb", "build", "pubmedqa"], "Missing option '--output'"),
        (["kb", "build", "no-such.csv", "-o", "out"], "passage source no-such.csv does not exist"),
        (["kb", "build", "pubmedqa", "-o", "out", "--overlap", "96"], "chunk overlap must be"),
        (["kb", "search", "no-such-kb", "query"], "no-such-kb is not a knowledge base"),
        (["kb", "search", "no-such-kb", "query", "-k", "many"], "Invalid value for '-k'"),
    ],
)
def test_kb_usage_mistakes_answer_in_a_line_with_exit_2(
    args: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import sys

    from ethos.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ethos", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    out = capsys.readouterr()
    assert stopped.value.code == 2, out
    assert expected in out.err + out.out and "Traceback" not in out.err + out.out
