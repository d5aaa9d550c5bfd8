"""A drift alert on a live server: shifted inputs raise it, `/v1/alerts` lists it, and the dashboard
shows it in a real headless Chromium (logged in the way a browser is: HTTP Basic, key as password).
"""

from __future__ import annotations

import random

from live_server import LiveServer

from browser import open_in_chromium


def shifted_texts(n: int, seed: int = 3) -> list[str]:
    """Long texts of made-up words: far longer and far more out-of-vocabulary than COMPAS rows."""
    rng = random.Random(seed)
    letters = "qxzjkvwy"
    return [
        " ".join("".join(rng.choice(letters) for _ in range(9)) for _ in range(120))
        for _ in range(n)
    ]


def test_shifted_inputs_raise_an_alert_seen_on_the_dashboard(
    server: LiveServer, keys: dict[str, str]
) -> None:
    with server.client(keys["predict"]) as client:
        for start in range(0, 48, 8):
            body = {"inputs": [{"text": t} for t in shifted_texts(48)[start : start + 8]]}
            assert client.post("/v1/predict", json=body).status_code == 200
    with server.client(keys["admin"]) as ops:
        alerts = ops.get("/v1/alerts").json()
        metrics = ops.get("/metrics").text
    active = {a["metric"]: a for a in alerts["active"]}
    assert {"length_psi", "oov_rate_delta"} <= set(active), alerts
    for name in ("length_psi", "oov_rate_delta"):
        assert active[name]["value"] > active[name]["threshold"]
    assert 'ethos_monitor{metric="length_psi"}' in metrics
    with open_in_chromium(
        f"{server.url}/dashboard", http_credentials={"username": "ops", "password": keys["admin"]}
    ) as visit:
        page = visit.page
        text = page.inner_text("body")
        assert "length_psi" in text or "input lengths drifted" in text
        boxes = page.eval_on_selector_all(
            "svg", "els => els.map(e => e.getBoundingClientRect().width)"
        )
        assert boxes and all(width > 0 for width in boxes)
        assert not visit.problems
        assert all(r.startswith(server.url) for r in visit.requests)  # nothing from elsewhere
    with server.client() as anonymous:  # no key: a 401 that makes a browser ask for one
        denied = anonymous.get("/dashboard")
        assert (
            denied.status_code == 401
            and 'Basic realm="ethos"' in denied.headers["www-authenticate"]
        )
    with server.client(keys["predict"]) as app:  # the dashboard is for admins
        assert app.get("/dashboard").status_code == 403
