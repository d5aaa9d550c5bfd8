"""How a finished run and a governed run are printed (`ethos train`, `run`, `demo`).

Shared by the commands that train, so the metrics table and the decision summary read the same
whichever command produced them.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ethos.cli.output import console, err_console


def report_run(run: Any) -> None:
    """The run directory and its test metrics (with the baselines), or the QA scores."""
    console.print(f"run directory: {run.path}", markup=False)
    metrics = run.metrics
    if "baselines" in metrics and run.config.task == "classification":
        console.print(_metrics_table(metrics))
        test = metrics.get("test", {})
        if test.get("informative") is False:
            err_console.print(
                "warning: the model is not informative on the test part ("
                + "; ".join(str(r) for r in test.get("reasons", [])[:2])
                + "): its fairness, calibration and robustness figures mean nothing, and every "
                "bundled policy fails it",
                markup=False,
            )
    elif run.config.task == "causal_lm":
        console.print(_causal_table(metrics))
    elif run.config.task == "multiple_choice":
        console.print(_choice_table(metrics))
    else:
        console.print(_qa_table(metrics))


def print_summary(result: Any) -> None:
    """The gate's decision of a governed run and where its report, card and run are."""
    console.print(
        f"decision: {result.decision}  (W = {result.welfare:.3f}, threshold {result.threshold:g})"
    )
    if result.broken:
        console.print(f"  broken constraints: {', '.join(result.broken)}", markup=False)
    for reason in result.reasons:
        console.print(f"  - {reason}", markup=False)
    console.print(f"report: {result.report}")
    console.print(f"card:   {result.card}")
    console.print(f"run:    {result.run.path}")


def _qa_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="extractive QA (official SQuAD exact match and F1, 0-100)")
    for column in ("part", "questions", "exact match", "F1"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part in ("validation", "test"):
        scores = metrics[part]
        table.add_row(
            part, f"{scores['count']:.0f}", f"{scores['exact_match']:.1f}", f"{scores['f1']:.1f}"
        )
    return table


def _causal_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="causal LM (response tokens' loss; exact match of greedy generations)")
    for column in ("part", "pairs", "loss", "perplexity", "exact match"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part in ("validation", "test"):
        scores = metrics[part]
        exact = scores.get("exact_match")
        table.add_row(
            part,
            f"{scores['count']:.0f}",
            f"{scores['loss']:.3f}",
            f"{scores['perplexity']:.3f}",
            "-" if exact is None else f"{exact:.3f}",
        )
    return table


def _choice_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="multiple choice (share of questions answered right)")
    for column in ("part", "questions", "accuracy"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part in ("validation", "test"):
        scores = metrics.get(part) or {}
        accuracy = scores.get("accuracy")
        rows = scores.get("rows", scores.get("count"))
        table.add_row(
            part,
            "-" if rows is None else f"{rows:.0f}",
            "-" if accuracy is None else f"{accuracy:.3f}",
        )
    return table


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="test metrics (same split)")
    for column in ("model", "accuracy", "macro-F1", "AUROC"):
        table.add_column(column, justify="left" if column == "model" else "right")
    rows = [("fine-tuned", metrics["test"])] + [
        (name, scores["test"]) for name, scores in metrics["baselines"].items()
    ]
    for name, scores in rows:
        auroc = scores.get("auroc")
        table.add_row(
            name,
            f"{scores['accuracy']:.3f}",
            f"{scores['macro_f1']:.3f}",
            "-" if auroc is None else f"{auroc:.3f}",
        )
    return table
