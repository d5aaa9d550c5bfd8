"""`ethos demo`: the governed loop end to end on bundled COMPAS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ethos.cli.data import data_describe
from ethos.cli.output import console
from ethos.cli.report import print_summary, report_run

MITIGATION = {"method": "thresholds", "attribute": "race", "constraint": "equalized_odds"}
"""The demo's mitigation of a FAIL on the policy's equalized-odds limit across race."""


def demo(quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """The main job on bundled COMPAS: describe the data, then the governed run — fine-tune,
    compare with baselines, audit, gate against the criminal-justice policy, write the card and
    record it in the ledger. When the gate does not pass, a mitigated child run (the parent's
    weights deciding with per-group equalized-odds thresholds on race) goes through the same
    pipeline and is compared with its parent (`ethos diff`). Exits 0 whatever the decisions (it
    is a demonstration)."""
    from ethos import load_config, run_pipeline

    config = load_config(_example_path("compas"))
    data_describe("compas", tokens=False)
    result = run_pipeline(config, quiet=quiet, log=lambda m: console.print(m))
    report_run(result.run)
    console.print(
        f"training {result.seconds['train']:.0f} s, audit {result.seconds['audit']:.0f} s"
    )
    print_summary(result)
    if result.decision == "PASS":
        console.print("the run passed its policy; there is nothing to mitigate")
        return
    _mitigate(config, result, quiet=quiet)


def _mitigate(config: Any, parent: Any, *, quiet: bool) -> None:
    """The parent's mitigated child, governed and diffed against it, and the outcome said."""
    from ethos import RunConfig, run_pipeline
    from ethos.cli.diff import print_diff

    console.print(
        f"\nthe parent's decision is {parent.decision}; next, a mitigated child: the parent's "
        "weights unchanged (train.max_steps: 0), deciding with per-group thresholds that "
        "equalise error rates across race on the validation part (fairness post-processing; "
        "it needs each person's race when deciding, which the card states). The child goes "
        "through the same pipeline and is compared with its parent on the parent's test rows.",
        markup=False,
    )
    settings = config.model_dump(mode="json", by_alias=True)
    settings["model"]["name"] = str(parent.run.model_dir.resolve())
    settings["train"]["max_steps"] = 0
    settings["train"]["fairness"] = MITIGATION
    child = run_pipeline(
        RunConfig.model_validate(settings),
        quiet=quiet,
        log=lambda m: console.print(m),
        parent=parent.run,
        lineage={"relation": "mitigation: equalized-odds thresholds on race"},
    )
    report_run(child.run)
    print_summary(child)
    diff = child.run.diff()
    if diff is not None:
        console.print(f"\nethos diff {parent.run.path} {child.run.path}", markup=False)
        print_diff(diff)
    if child.decision == "PASS":
        console.print("the mitigated child passes the policy", markup=False)
    else:
        console.print(
            f"the mitigated child still does not pass ({child.decision}): "
            + ("; ".join(child.reasons[:3]) or "see its report"),
            markup=False,
        )


def _example_path(name: str) -> Path:
    """The installed path of a bundled example config."""
    from importlib import resources

    return Path(str(resources.files("ethos.examples") / f"{name}.yaml"))
