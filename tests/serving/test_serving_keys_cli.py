"""``ethos keys create / list / revoke``: the token is printed once and nowhere else."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ethos.errors import USER_ERROR_EXIT_CODE
from ethos.serving import keys_cli
from ethos.serving.keys_cli import app
from ethos.serving.store import ServingStore, StoreError

runner = CliRunner()
TOKEN_RE = re.compile(r"^ethos_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


def _create(db: Path, *args: str) -> tuple[str, str]:
    result = runner.invoke(app, ["create", "--db", str(db), *args])
    assert result.exit_code == 0, result.output
    tokens = TOKEN_RE.findall(result.output)
    assert len(tokens) == 1, result.output
    return tokens[0], result.output


def test_create_list_revoke_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_cli.console, "width", 200)  # one table row per key
    db = tmp_path / "keys.db"
    token, output = _create(
        db, "--name", "triage [bold]ui[/bold]", "--scope", "predict", "--scope", "feedback",
        "--rate", "90",
    )  # fmt: skip
    key_id = token.split("_")[1]
    assert "cannot be shown again" in output
    assert f"created key {key_id} 'triage [bold]ui[/bold]'" in output
    assert "predict, feedback; 90 requests/minute" in output
    with ServingStore(db) as store:
        record = store.verify(token)
    assert record is not None and record.scopes == ("predict", "feedback")

    default_token, _ = _create(db, "--name", "batch-job")
    with ServingStore(db) as store:
        default = store.verify(default_token)
    assert default is not None and default.scopes == ("predict",) and default.rate_per_minute == 600

    listed = runner.invoke(app, ["list", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    assert key_id in listed.output and "triage [bold]ui[/bold]" in listed.output
    assert "batch-job" in listed.output
    as_json = runner.invoke(app, ["list", "--db", str(db), "--json"])
    keys = json.loads(as_json.output)
    assert [k["name"] for k in keys] == ["triage [bold]ui[/bold]", "batch-job"]
    assert keys[0] == {
        "key_id": key_id, "name": "triage [bold]ui[/bold]", "scopes": ["predict", "feedback"],
        "rate_per_minute": 90, "created_at": keys[0]["created_at"], "revoked_at": None,
    }  # fmt: skip
    for output_text in (listed.output, as_json.output):
        for secret_bearer in (token, default_token):
            assert secret_bearer not in output_text
            assert secret_bearer.split("_", 2)[2] not in output_text

    revoked = runner.invoke(app, ["revoke", key_id, "--db", str(db)])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked key {key_id}" in revoked.output and "within 5 s" in revoked.output
    with ServingStore(db) as store:
        assert store.verify(token) is None
        assert store.verify(default_token) is not None
    after = json.loads(runner.invoke(app, ["list", "--db", str(db), "--json"]).output)
    assert after[0]["revoked_at"] is not None and after[1]["revoked_at"] is None


def test_empty_list_says_how_to_create_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["list", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 0
    assert "no API keys" in result.output and "ethos keys create" in result.output
    assert (
        json.loads(runner.invoke(app, ["list", "--db", str(tmp_path / "none.db"), "--json"]).output)
        == []
    )


def test_default_database_is_env_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ETHOS_SERVING_DB", str(tmp_path / "from-env.db"))
    token, _ = _create_without_db("env-key")
    with ServingStore(tmp_path / "from-env.db") as store:
        assert store.verify(token) is not None

    monkeypatch.delenv("ETHOS_SERVING_DB")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    token, output = _create_without_db("home-key")
    home_db = tmp_path / "home" / ".ethos" / "serving.db"
    assert home_db.is_file() and str(home_db) in output
    with ServingStore(home_db) as store:
        assert store.verify(token) is not None


def _create_without_db(name: str) -> tuple[str, str]:
    result = runner.invoke(app, ["create", "--name", name])
    assert result.exit_code == 0, result.output
    return TOKEN_RE.findall(result.output)[0], result.output


def test_sub_app_raises_the_store_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["revoke", "feedfacecafe", "--db", str(tmp_path / "k.db")])
    assert isinstance(result.exception, StoreError)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--name", "x", "--scope", "superuser"], "unknown API key scope: superuser"),
        (["create", "--name", "", "--scope", "predict"], "an API key needs a name"),
        (["create", "--name", "x", "--rate", "0"], "from 1 to 1000000, not 0"),
        (["revoke", "feedfacecafe"], "there is no API key with the id 'feedfacecafe'"),
    ],
)
def test_mistakes_print_one_message_and_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ethos.cli import main

    db = tmp_path / "k.db"
    monkeypatch.setattr(sys, "argv", ["ethos", "keys", *argv, "--db", str(db)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == USER_ERROR_EXIT_CODE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "fix: " in err
    assert "Traceback" not in err


def test_revoking_twice_exits_2_saying_when(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ethos.cli import main

    db = tmp_path / "k.db"
    token, _ = _create(db, "--name", "once")
    key_id = token.split("_")[1]
    assert runner.invoke(app, ["revoke", key_id, "--db", str(db)]).exit_code == 0
    monkeypatch.setattr(sys, "argv", ["ethos", "keys", "revoke", key_id, "--db", str(db)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == USER_ERROR_EXIT_CODE
    assert re.search(r"was already revoked at \d{4}-\d\d-\d\dT", capsys.readouterr().err)
