"""The model card as serving shows it: read from the run's card files, and said to be stale when
the run was gated again after the card was written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from live_server import POLICIES, LiveServer, gated_copy

from ethos.governance.card import write_card
from ethos.governance.gate import gate_run
from ethos.rundir import RunDir
from ethos.serving.cardinfo import card_summary, plain


def test_model_info_carries_the_card_summary(
    server: LiveServer, keys: dict[str, str], pass_run: RunDir
) -> None:
    with server.client(keys["predict"]) as client:
        info = client.get("/v1/model").json()
        page = client.get(info["card"]["url"])
    decision = json.loads((pass_run.path / "decision.json").read_text())
    card = info["card"]
    assert card["available"] and card["matches_served_decision"] is True
    assert card["stale"] is None
    assert (card["markdown"], card["html"], card["url"]) == (
        "model/README.md",
        "card.html",
        "/v1/model/card",
    )
    assert card["decision"] == info["decision"] == "PASS"
    assert card["policy"] == info["policy"] == "serve-test-pass"
    assert card["decision_id"] == info["decision_id"] == decision["ledger"]["entry_hash"]
    assert card["welfare"] == pytest.approx(decision["welfare"], abs=1e-4)  # the card rounds
    assert card["threshold"] == 0.0
    accuracy = pass_run.metrics["test"]["accuracy"]
    assert card["test_metrics"]["accuracy"] == pytest.approx(accuracy)
    assert {"macro_f1", "auroc"} <= set(card["test_metrics"])
    uses = card["intended_use"]
    assert uses and uses[0].startswith("Predicts two_year_recid"), uses
    assert not any(c in " ".join(uses) for c in "`\\*"), uses  # plain text, not Markdown
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Model card:" in page.text and "Intended use" in page.text


def test_the_dashboard_names_the_card_and_whether_it_is_current(
    server: LiveServer, keys: dict[str, str]
) -> None:
    with server.client(keys["admin"]) as ops:
        page = ops.get("/dashboard").text
    assert "<th>model card</th>" in page
    assert "card.html, written " in page and "describes the decision being served" in page


def test_a_card_or_server_behind_the_runs_decision_is_reported_stale(
    tiny_run: RunDir, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.db")
    run = gated_copy(tiny_run, tmp_path, "PASS", ledger)
    first_id = json.loads((run.path / "decision.json").read_text())["ledger"]["entry_hash"]
    bare = card_summary(run, first_id)
    assert not bare["available"] and bare["matches_served_decision"] is None
    assert bare["test_metrics"]["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    write_card(run)
    current = card_summary(run, first_id)
    assert current["matches_served_decision"] is True and current["stale"] is None
    old_card = (run.model_dir / "README.md").read_text()
    # gated again while a server admitted under the first decision runs: the gate rewrites the
    # card, so it is the server that is behind
    second_id = gate_run(run, POLICIES / "serve-pass.yaml", ledger_url=ledger).decision["ledger"][
        "entry_hash"
    ]
    assert second_id != first_id
    behind = card_summary(run, first_id)
    assert behind["matches_served_decision"] is False and behind["stale"] == "server"
    assert behind["decision_id"] == second_id
    # a card older than the run's decision (put back by hand, say) is the one behind
    (run.model_dir / "README.md").write_text(old_card)
    old = card_summary(run, second_id)
    assert old["matches_served_decision"] is False and old["stale"] == "card"
    assert old["decision_id"] == first_id  # what the card describes, not what is served


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("Predicts `two_year_recid` (classes `0`, `1`)", "Predicts two_year_recid (classes 0, 1)"),
        ("policy ``a`b`` version 1", "policy a`b version 1"),
        ("**Derived, not declared**: x\\_y \\[z\\]", "Derived, not declared: x_y [z]"),
    ],
)
def test_card_markdown_is_shown_as_plain_text(markdown: str, text: str) -> None:
    assert plain(markdown) == text
