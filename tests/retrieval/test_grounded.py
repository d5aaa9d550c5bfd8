"""Grounded answering: the calibrated abstention threshold, the risk-coverage curve, retrieval
through the path the audit and serving use, the run's knowledge-base record, the refusals, and the
grounding audit section on a tiny grounded run (``tiny_grounded_run``, tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from cli_helpers import run_ethos
from ethos.audit.grounding import out_of_domain_questions, retrieval_by_group
from ethos.audit.protocol import AuditContext
from ethos.config import RunConfig
from ethos.data.passages import Chunking, chunk_passages, load_passages
from ethos.errors import ConfigError, DataError, ModelError
from ethos.models.embedding import SentenceEncoder
from ethos.models.grounded import GroundedAnswerer, passage_text, retrieve
from ethos.models.knowledge_base import KnowledgeBase, build_kb
from ethos.rundir import RunDir
from ethos.stats.abstention import conformal_threshold, risk_coverage
from ethos.stats.retrieval import retrieval_metrics
from run_fixtures import tiny_grounded_config, train_quietly

torch.set_num_threads(1)

PASSAGES = [
    "Aspirin taken daily lowers the risk of a second heart attack in adults over fifty.",
    "Glaciers in the Alps have lost a third of their ice volume since the year 2000.",
    "Sourdough bread rises because wild yeast and lactic bacteria ferment the flour.",
    "Honeybees communicate the direction of flowers to the hive with a waggle dance.",
    "Insulin resistance in type two diabetes is improved by regular aerobic exercise.",
    "The central bank raised interest rates to slow inflation in the housing market.",
]
IDS = [f"p{i}" for i in range(len(PASSAGES))]
NOT_PUBMED = {"Black holes", "Printing press", "Plate tectonics", "Photosynthesis"}


# -- the threshold and the curve: reference values ------------------------------------------------


def test_conformal_threshold_is_the_floor_alpha_n_plus_1_th_smallest_score() -> None:
    scores = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 1.0]
    cut = conformal_threshold(scores, 0.8)  # floor(0.2 * 11) = 2: the second smallest
    assert (cut.rank, cut.threshold, cut.promised) == (2, 0.2, True)
    assert conformal_threshold(scores, 0.9).threshold == 0.1  # floor(0.1 * 11) = 1
    too_few = conformal_threshold(scores, 0.95)  # floor(0.05 * 11) = 0: nothing can promise it
    assert (too_few.rank, too_few.promised, too_few.threshold) == (0, False, -np.inf)
    assert too_few.to_json()["threshold"] is None


def test_conformal_coverage_is_one_minus_rank_over_n_plus_1_on_exchangeable_scores() -> None:
    """For continuous exchangeable scores P(new >= k-th smallest of n) = 1 - k / (n + 1) exactly
    (Angelopoulos & Bates 2021, section 1): n = 19, coverage 0.9 -> k = 2 -> 0.9."""
    rng = np.random.default_rng(0)
    trials = 20000
    draws = rng.standard_normal((trials, 20))
    kept = [
        draws[t, 19] >= conformal_threshold(draws[t, :19], 0.9).threshold for t in range(trials)
    ]
    assert abs(np.mean(kept) - 0.9) < 0.006  # about 3 standard errors (0.0021)


@pytest.mark.parametrize(
    ("scores", "coverage", "message"),
    [([], 0.9, "at least one"), ([0.1, np.nan], 0.9, "finite"), ([0.1], 1.0, "strictly")],
)
def test_conformal_threshold_refuses_bad_input(
    scores: list[float], coverage: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        conformal_threshold(scores, coverage)


def test_risk_coverage_matches_a_hand_computed_curve() -> None:
    curve = risk_coverage([0.6, 0.9, 0.7, 0.8], [True, True, True, False], coverages=(0.5, 1.0))
    # by confidence: 0.9 right, 0.8 wrong, 0.7 right, 0.6 right -> running accuracy 1, 1/2, 2/3, 3/4
    assert [p["accuracy"] for p in curve["points"]] == [0.5, 0.75]
    assert [p["min_confidence"] for p in curve["points"]] == [0.8, 0.6]
    assert curve["aurc"] == pytest.approx((0 + 0.5 + 1 / 3 + 0.25) / 4)
    assert risk_coverage([], [])["points"] == []
    with pytest.raises(ValueError, match="same length"):
        risk_coverage([0.1], [True, False])


# -- retrieval and passages through the grounded path --------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.load("default")


def test_recall_is_exactly_one_when_each_question_repeats_its_passage(
    encoder: SentenceEncoder,
) -> None:
    kb = build_kb(chunk_passages(IDS, PASSAGES), encoder)
    found = retrieve(kb, encoder.encode(PASSAGES).vectors, 5)
    assert retrieval_metrics(found.passage_ids, [{i} for i in IDS], ks=(1, 5)) == {
        "recall@1": 1.0,
        "recall@5": 1.0,
        "mrr": 1.0,
    }
    assert np.allclose(found.best_scores, 1.0, atol=1e-5)  # each passage is its own best match


def test_a_passage_rebuilt_from_overlapping_chunks_is_the_passage(
    encoder: SentenceEncoder,
) -> None:
    long_text = " ".join(PASSAGES)  # 84 words: 5 chunks of 24 words sharing 6
    passages = chunk_passages(["whole"], [long_text], chunking=Chunking(words=24, overlap=6))
    assert len(passages) > 3
    kb = build_kb(passages, encoder)
    assert passage_text(kb, "whole") == long_text
    without_overlap = build_kb(
        chunk_passages(["whole"], [long_text], chunking=Chunking(words=20, overlap=0)), encoder
    )
    assert passage_text(without_overlap, "whole") == long_text
    with pytest.raises(ModelError, match="no passage 'absent'"):
        passage_text(kb, "absent")


# -- a grounded run ---------------------------------------------------------------------------


def _kb_path(run: RunDir) -> Path:
    return Path(run.manifest["grounding"]["knowledge_base"]["path"])


def test_a_grounded_run_records_its_knowledge_base_and_calibrated_threshold(
    tiny_grounded_run: RunDir,
) -> None:
    record = tiny_grounded_run.manifest["grounding"]
    kb = KnowledgeBase.load(_kb_path(tiny_grounded_run))
    assert record["knowledge_base"]["kb_sha256"] == kb.sha256
    assert record["knowledge_base"]["fingerprint"] == kb.fingerprint
    abstention = record["abstention"]
    validation = tiny_grounded_run.dataset("validation")
    assert abstention["calibration_questions"] == len(validation)
    # the threshold is the recorded rank's smallest validation score, recomputed here
    encoder = SentenceEncoder.load(kb.encoder.name)
    best = np.sort(retrieve(kb, encoder.encode(list(validation.texts)).vectors, 1).best_scores)
    assert abstention["threshold"] == pytest.approx(float(best[abstention["rank"] - 1]), abs=1e-6)
    assert abstention["calibration_answered"] >= 0.95 - 1 / len(best)


def test_in_domain_questions_are_answered_and_out_of_domain_ones_abstain(
    tiny_grounded_run: RunDir,
) -> None:
    answerer = GroundedAnswerer.from_run(tiny_grounded_run)
    test = tiny_grounded_run.dataset("test")
    answers = answerer.answer(list(test.texts))
    answered = [a for a in answers if not a.abstained]
    assert len(answered) >= 0.8 * len(answers)
    own = [a.citations[0].passage_id == i for a, i in zip(answers, test.ids, strict=True)]
    assert np.mean(own) >= 0.9
    first = answered[0]
    assert first.answer in ("no", "maybe", "yes") and first.read_passage is not None
    assert sum(first.probabilities.values()) == pytest.approx(1.0, abs=1e-4)  # type: ignore[union-attr]
    assert len(first.citations) == 5 and first.citations[0].score >= first.citations[-1].score

    import json

    from ethos.data.squad import SQUAD_TINY_PATH

    document = json.loads(SQUAD_TINY_PATH.read_text())
    off_topic = [
        q["question"]
        for article in document["data"]
        if article["title"] in NOT_PUBMED
        for paragraph in article["paragraphs"]
        for q in paragraph["qas"]
    ]
    refused = answerer.answer(off_topic)
    assert len(off_topic) == 20
    assert all(a.abstained and a.answer is None for a in refused)
    assert refused[0].to_json()["message"] == "not in the knowledge base"
    assert answerer.answer([]) == []


def _edited_kb(run: RunDir, folder: Path) -> Path:
    """The run's knowledge base rebuilt with one passage changed by one word."""
    table = pd.read_csv(_kb_path(run).parent / "pubmedqa_tiny.csv")
    table.loc[7, "passage"] = str(table.loc[7, "passage"]).replace(" the ", " a ", 1)
    source = folder / "edited.csv"
    table.to_csv(source, index=False)
    passages = load_passages(
        source,
        text_field="passage",
        chunking=Chunking(enabled=False, words=1000),
        scrub_pii=False,
    )
    return build_kb(passages, SentenceEncoder.load()).save(folder / "kb-edited")


def test_one_edited_passage_changes_the_fingerprint_and_the_run_refuses_the_new_kb(
    tiny_grounded_run: RunDir, tmp_path: Path
) -> None:
    edited = KnowledgeBase.load(_edited_kb(tiny_grounded_run, tmp_path))
    original = KnowledgeBase.load(_kb_path(tiny_grounded_run))
    assert edited.fingerprint != original.fingerprint and edited.sha256 != original.sha256
    with pytest.raises(ModelError, match=r"not the one .* was trained, audited and gated with"):
        GroundedAnswerer.from_run(tiny_grounded_run, knowledge_base=tmp_path / "kb-edited")
    # a copy of the same knowledge base elsewhere is the same evidence, and is accepted
    shutil.copytree(_kb_path(tiny_grounded_run), tmp_path / "kb-moved")
    moved = GroundedAnswerer.from_run(tiny_grounded_run, knowledge_base=tmp_path / "kb-moved")
    assert moved.kb.sha256 == original.sha256


def test_a_run_that_is_not_grounded_is_refused_by_name(tiny_run: RunDir) -> None:
    with pytest.raises(ModelError, match="not a grounded run"):
        GroundedAnswerer.from_run(tiny_run)


# -- the audit section ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grounded_audit(tiny_grounded_run: RunDir, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from ethos.audit.runner import audit_run

    out = tmp_path_factory.mktemp("grounded-audit") / "audit"
    result = audit_run(
        tiny_grounded_run, out=out, checks=["informativeness", "calibration"], replace=True
    )
    return {"audit": result.audit, "report": (out / "report.html").read_text()}


def test_the_grounding_section_measures_retrieval_answers_and_abstention(
    grounded_audit: dict, tiny_grounded_run: RunDir
) -> None:
    section = grounded_audit["audit"]["grounding"]
    test = tiny_grounded_run.dataset("test")
    assert section["questions"] == section["questions_with_gold_in_kb"] == len(test)
    for system in ("retrieval", "bm25"):
        block = section[system]
        low, high = block["recall@1"]["ci95"]
        assert low <= block["recall@1"]["value"] <= high
        assert block["recall@1"]["value"] <= block["recall@5"]["value"] <= 1.0
    assert section["retrieval"]["recall@5"]["value"] >= 0.9
    answers = section["answers"]
    assert set(answers) >= {"gold", "retrieved", "trained_context", "retrieved_minus_gold"}
    # the tiny KB keeps PII and whole passages, so its gold copy is the data's own passage
    assert answers["gold"]["value"] == pytest.approx(answers["trained_context"]["value"], abs=1e-9)
    ood = section["abstention"]["out_of_domain"]
    assert ood["source"] == "squad-tiny" and ood["questions"] == 60 and ood["abstained"] >= 0.9
    curve = section["risk_coverage"]["by_retrieval_score"]
    assert curve["points"][-1]["coverage"] == 1.0
    assert curve["points"][-1]["accuracy"] == pytest.approx(answers["retrieved"]["value"])
    assert section["by_group"] == {
        "reason": "the questions carry no group (data.sensitive is empty)"
    }
    summary = grounded_audit["audit"]["summary"]["grounding"]
    assert summary["status"] in ("green", "amber") and summary["reasons"][0].startswith("recall@5")
    assert "Grounding: retrieval, answers and abstention" in grounded_audit["report"]


def test_retrieval_by_group_shows_a_knowledge_base_that_serves_one_group_worse() -> None:
    groups = pd.DataFrame({"sex": ["f", "f", "m", "m"]})
    context = AuditContext(y_true=np.zeros(4), y_pred=np.zeros(4), groups=groups)
    ranked = [["a", "x"], ["b", "x"], ["x", "c"], ["x", "y"]]
    out = retrieval_by_group(
        context, ranked, ["a", "b", "c", "d"], np.ones(4, bool), np.ones(4, bool), 1
    )
    cells = out["sex"]["groups"]
    assert cells["f"]["recall@1"] == 1.0 and cells["m"]["recall@1"] == 0.0
    assert cells["m"]["mrr"] == pytest.approx(0.25)  # 1/2 for c, 0 for d
    assert out["sex"]["recall@1_gap"] == 1.0


# -- configuration and bad input ------------------------------------------------------------------


def test_out_of_domain_questions_are_read_or_refused_clearly(tmp_path: Path) -> None:
    from ethos.audit.errors import AuditError

    assert len(out_of_domain_questions("squad-tiny")) == 60
    table = tmp_path / "q.csv"
    table.write_text("prompt\nhello\n")
    with pytest.raises(AuditError, match="no 'question' column"):
        out_of_domain_questions(str(table))
    table.write_text("question\n\n")
    with pytest.raises(AuditError):
        out_of_domain_questions(str(table))


def test_grounding_needs_a_classification_task_and_its_knowledge_base(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="grounding section is for task: classification"):
        RunConfig.model_validate(
            {
                "data": {"source": "pubmedqa"},
                "task": "multiple_choice",
                "grounding": {"knowledge_base": "kb"},
            }
        )
    with pytest.raises(ValidationError, match="coverage"):
        RunConfig.model_validate(
            {"data": {"source": "pubmedqa"}, "grounding": {"knowledge_base": "kb", "coverage": 1}}
        )
    from ethos.training.grounding import prepare_knowledge_base

    missing = tiny_grounded_config(tmp_path, tmp_path / "d.csv", tmp_path / "no-kb")
    with pytest.raises(ConfigError, match="does not exist") as raised:
        prepare_knowledge_base(missing)
    assert "ethos kb build" in (raised.value.hint or "")
    no_pair = missing.model_copy(
        update={"data": missing.data.model_copy(update={"text_pair_field": None})}
    )
    with pytest.raises(ConfigError, match="text_pair_field"):
        prepare_knowledge_base(no_pair)


def test_a_config_without_grounding_keeps_its_config_hash() -> None:
    from ethos.training.run import config_hash

    config = RunConfig.model_validate({"data": {"source": "compas"}})
    assert "grounding" not in config.model_dump(mode="json")
    assert config_hash(config) == config_hash(RunConfig.model_validate(config.model_dump()))


def test_ethos_train_with_a_missing_knowledge_base_exits_2_without_a_traceback(
    tmp_path: Path,
) -> None:
    config = tmp_path / "grounded.yaml"
    config.write_text(
        "data: {source: pubmedqa, split: {validation: 0.15, test: 0.2}}\n"
        "grounding: {knowledge_base: nowhere/kb}\n"
        f"output_dir: {tmp_path / 'runs'}\n"
    )
    result = run_ethos("train", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "grounding.knowledge_base" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_predefined_split_without_validation_rows_is_refused_before_training(
    tmp_path: Path,
) -> None:
    """A grounded run calibrates on the validation questions (and every run selects on them): a
    predefined split (split.column) without any is refused by the data layer, by name."""
    encoder = SentenceEncoder.load()
    frame = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(24)],
            "question": [
                f"Does treatment {i} help patients with condition {i}?" for i in range(24)
            ],
            "passage": [
                f"Treatment {i} was tested in a trial of condition {i}." for i in range(24)
            ],
            "answer": ["yes", "no", "maybe"] * 8,
            "part": ["train"] * 18 + ["test"] * 6,
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    passages = load_passages(data, text_field="passage", scrub_pii=False)
    kb = build_kb(passages, encoder).save(tmp_path / "kb")
    config = tiny_grounded_config(tmp_path / "runs", data, kb)
    config = config.model_copy(
        update={
            "data": config.data.model_copy(
                update={"split": config.data.split.model_copy(update={"column": "part"})}
            )
        }
    )
    with pytest.raises(DataError, match="split column 'part' leaves no validation rows"):
        train_quietly(config)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_ethos_kb_ask_answers_cites_and_abstains(tiny_grounded_run: RunDir, tmp_path: Path) -> None:
    import json

    test = tiny_grounded_run.dataset("test")
    question, own_id = str(test.texts[0]), str(test.ids[0])
    off_topic = "When was the printing press invented?"
    result = run_ethos("kb", "ask", str(tiny_grounded_run.path), question, off_topic, "--json")
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert first["question"] == question and first["citations"][0]["passage_id"] == own_id
    assert second["abstained"] and second["answer"] is None
    plain = run_ethos("kb", "ask", str(tiny_grounded_run.path), off_topic)
    assert "A: not in the knowledge base" in plain.stdout
    moved = run_ethos(
        "kb", "ask", str(tiny_grounded_run.path), "Is it?", "--knowledge-base", str(tmp_path)
    )
    empty = run_ethos("kb", "ask", str(tiny_grounded_run.path), "   ")
    for refused, expected in ((moved, "is not a knowledge base"), (empty, "a question is empty")):
        assert refused.returncode == 2 and expected in refused.stderr
        assert "Traceback" not in refused.stderr


def test_ethos_run_records_the_knowledge_base_in_the_ledger_and_gates_the_grounding(
    tiny_grounded_run: RunDir, tmp_path: Path
) -> None:
    """The whole pipeline on the tiny grounded config: the "run" ledger entry names the KB, the
    audit holds the grounding section, and the grounded-qa policy reads it."""
    from ethos.governance.ledger import Ledger
    from ethos.pipeline import run_pipeline

    kb = _kb_path(tiny_grounded_run)
    config = tiny_grounded_config(
        tmp_path / "runs", kb.parent / "pubmedqa_tiny.csv", kb, out_of_domain="squad-tiny"
    )
    ledger = str(tmp_path / "ledger.db")
    result = run_pipeline(
        config, policy="grounded-qa", ledger_url=ledger, actor="tester", log=lambda _: None
    )
    recorded = result.run.manifest["grounding"]["knowledge_base"]
    with Ledger.open(ledger) as book:
        (entry,) = book.entries(run_id=result.run.manifest["run_id"], kind="run")
    assert entry.payload["knowledge_base"]["kb_sha256"] == recorded["kb_sha256"]
    assert entry.payload["knowledge_base"]["fingerprint"] == recorded["fingerprint"]
    decision = result.run.decision()
    assert decision is not None and decision["decision"] == result.decision
    read = {c["metric"] for c in decision["constraints"]}
    assert "grounding.retrieval.recall@5.value" in read
    assert "grounding.abstention.out_of_domain.abstained" in read
    assert "Grounding: retrieval, answers and abstention" in result.report.read_text()
