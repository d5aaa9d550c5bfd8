"""Documents of a finished, audited run (no model): all that gate, approval and admission read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ethos.rundir import RunDir

POLICIES = Path(__file__).resolve().parents[1] / "serving" / "policies"
FAIL_POLICY = POLICIES / "serve-fail.yaml"  # a hard constraint no model meets
PASS_POLICY = POLICIES / "serve-pass.yaml"  # anything passes
REVIEW_POLICY = POLICIES / "serve-review.yaml"  # nothing reaches the threshold
VERDICT_POLICIES = {"PASS": PASS_POLICY, "REVIEW": REVIEW_POLICY, "FAIL": FAIL_POLICY}


def governed_run(tmp: Path, policy: Path | None, name: str = "run") -> RunDir:
    """A finished, audited run's documents, configured with ``policy``."""
    run = tmp / name
    (run / "audit").mkdir(parents=True)
    (run / "model").mkdir()
    config: dict[str, Any] = {"data": {"source": "compas"}}
    if policy is not None:
        config["policy"] = str(policy)
    (run / "config.yaml").write_text(json.dumps(config))
    manifest = {
        "run_id": f"{name}-id",
        "config_hash": "c" * 64,
        "data": {"fingerprint": "f" * 64},
        "model": {"weights_sha256": "w" * 64},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.7, "auroc": 0.74}}))
    (run / "audit" / "audit.json").write_text(json.dumps({"calibration": {}}))
    return RunDir.open(run)
