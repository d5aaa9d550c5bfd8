"""The `ethos` command line. Every command is a thin call into the Python API.

User mistakes (EthosError) are printed as one message without a traceback and exit with code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

if TYPE_CHECKING:
    from ethos.data.build import TokenCounter

from ethos.cli_usage import HELP_OPTION_NAMES, print_version, readable_help, usage_error
from ethos.config import DataConfig, RunConfig, load_config
from ethos.data.scrub_cli import scrub_command
from ethos.errors import USER_ERROR_EXIT_CODE, EthosError
from ethos.examples import example_names, example_text
from ethos.genome.cli import app as genome_app
from ethos.governance.ledger_cli import app as ledger_app
from ethos.neuro.cli import app as neuro_app
from ethos.serving.keys_cli import app as keys_app
from ethos.serving.serve_cli import serve_command
from ethos.terminal import output_console

app = typer.Typer(
    name="ethos",
    help="Fine-tune pretrained models for high-stakes decisions with ethics built into every run: "
    "train under a declared policy, audit, score, gate, document and record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": HELP_OPTION_NAMES},
    rich_markup_mode=None,  # plain help; rich mode kept docstring line breaks mid-sentence
)
data_app = typer.Typer(
    help="Inspect and prepare data sets.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(data_app, name="data")
data_app.command("scrub")(scrub_command)
app.command("serve")(serve_command)
app.add_typer(
    genome_app,
    name="genome",
    help="CRISPR guide design, off-target scoring, and the ethics review of edit requests.",
)
app.add_typer(neuro_app, name="neuro", help="EEG intent decoding and safe closed-loop stimulation.")
app.add_typer(ledger_app, name="ledger", help="The tamper-evident ledger: show and verify.")
app.add_typer(keys_app, name="keys", help="API keys for `ethos serve`: create, list, revoke.")

console = output_console()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=print_version,
        is_eager=True,
        help="Print the installed ethos version and exit.",
    ),
) -> None:
    """Fine-tune pretrained models for high-stakes decisions with ethics built into every run:
    train under a declared policy, audit, score, gate, document and record."""


err_console = output_console(stderr=True)


@app.command()
def init(
    path: Path = typer.Argument(Path("ethos.yaml"), help="Where to write the config."),
    example: str | None = typer.Option(
        None,
        "--example",
        "-e",
        help=f"Starting point: one of {', '.join(example_names())} (default compas).",
    ),
    from_file: Path | None = typer.Option(
        None,
        "--from",
        metavar="FILE",
        help="Your own data (CSV/TSV, JSONL or Parquet): propose label, input and group columns "
        "from its columns.",
    ),
    separator: str | None = typer.Option(
        None, "--separator", help="With --from: the CSV separator (default: detected)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented run config to start from (it runs as it is).

    With --from FILE the config is proposed from your data: check the lines marked CHECK.
    """
    if from_file is not None:
        from ethos.data.init_config import summary_lines, write_config_from_file

        if example is not None:
            raise EthosError("give either --example or --from, not both")
        proposal = write_config_from_file(from_file, path, separator=separator, force=force)
        console.print(f"wrote {path} from {from_file}", markup=False)
        for line in summary_lines(proposal):
            console.print(line, markup=False)
        console.print(f"next: ethos data describe {path}, then ethos train {path}", markup=False)
        return
    if separator is not None:
        raise EthosError("--separator goes with --from FILE")
    example = example or "compas"
    text = example_text(example, absolute_data=True)
    if path.exists() and not force:
        raise EthosError(f"{path} already exists", hint="choose another path or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {path} (example '{example}'); next: ethos data describe {path}")


def _config_for(target: str) -> RunConfig:
    """A config file, or a bundled set name used with its defaults."""
    from ethos.config import looks_like_path
    from ethos.datasets import BUNDLED, bundled_names

    if target in BUNDLED and not Path(target).exists():
        return RunConfig(data=DataConfig(source=target))
    if not looks_like_path(target) and not Path(target).exists():
        raise EthosError(
            f"'{target}' is neither a config file nor a bundled data set",
            hint=f"pass a YAML config path or one of: {', '.join(bundled_names())}",
        )
    return load_config(target)


@data_app.command("describe")
def data_describe(
    target: str = typer.Argument(
        ..., metavar="TARGET", help="A run config (YAML) or a bundled set name."
    ),
    tokens: bool = typer.Option(
        True, "--tokens/--no-tokens", help="Count tokens with the model's tokenizer."
    ),
) -> None:
    """Load and validate the data: rows, label balance, groups, fingerprint and warnings."""
    from ethos.data import load_dataset

    config = _config_for(target)
    if config.task == "extractive_qa":
        from ethos.data.squad import load_squad

        split = config.data.split
        squad = load_squad(
            config.data.source, validation=split.validation, test=split.test, seed=split.seed
        )
        console.print(repr(squad))
        console.print(f"  fingerprint: {squad.fingerprint}")
        return
    counter = _token_counter(config.model.name) if tokens else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are printed with the summary below
        dataset = load_dataset(
            config.data, max_length=config.model.max_length, count_tokens=counter
        )
    console.print(repr(dataset))
    console.print(f"  fingerprint: {dataset.fingerprint}")


def _token_counter(model_name: str) -> TokenCounter:
    from ethos.models.tokens import token_counter

    return token_counter(model_name)


@app.command("train")
def train_command(
    config_path: Path | None = typer.Argument(
        None, metavar="CONFIG", help="Run config (YAML). Not needed with --resume."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        metavar="RUN_DIR",
        help="Continue a killed or interrupted run from its newest checkpoint; it ends with the "
        "same model and metrics as an uninterrupted run.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    output_dir: Path | None = typer.Option(None, help="Overrides output_dir from the config."),
) -> None:
    """Fine-tune the configured model and write a run directory (model, manifest, metrics).

    The run directory is created and printed at the start and gets a checkpoint after every
    epoch; Ctrl-C stops after the current step with a checkpoint and prints the command that
    continues the run (`ethos train --resume RUN_DIR`).
    """
    if resume is not None:
        if config_path is not None:
            raise EthosError(
                "give either CONFIG or --resume RUN_DIR, not both",
                hint="a resumed run uses the config.yaml saved in its run directory",
            )
        _train_and_report(None, quiet=quiet, resume=resume)
        return
    if config_path is None:
        raise EthosError(
            "missing CONFIG", hint="ethos train CONFIG, or ethos train --resume RUN_DIR"
        )
    config = load_config(config_path)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": output_dir})
    _train_and_report(config, quiet=quiet)


def _train_and_report(config: RunConfig | None, *, quiet: bool, resume: Path | None = None) -> None:
    """Train ``config`` (or resume the run in ``resume``), saying first where the run lives.

    The folder is printed as soon as it exists, because it is what ``--resume`` needs if the
    process dies; earlier unfinished runs of the same config are named, but a new run is still
    started (the user may want a fresh one, and nothing here asks). Ctrl-C ends with one line
    holding the exact resume command and exit code 130, not a traceback.
    """
    import shlex

    from ethos.training.interrupt import Interrupted
    from ethos.training.run import RunStart, train
    from ethos.training.run import resume as resume_run

    def started(start: RunStart) -> None:
        for earlier in start.unfinished:
            err_console.print(
                f"note: {earlier} is an unfinished run of this config; continue it with "
                f"`ethos train --resume {shlex.quote(str(earlier))}` (starting a new run now)",
                markup=False,
                soft_wrap=True,
            )
        where = f" (resuming from {start.checkpoint.name})" if start.checkpoint else ""
        console.print(f"run directory: {start.path}{where}", markup=False)

    try:
        if resume is not None:
            run = resume_run(resume, quiet=quiet, on_start=started)
        else:
            assert config is not None
            run = train(config, quiet=quiet, on_start=started)
    except Interrupted as stopped:
        saved = f"checkpoint {stopped.checkpoint.name}" if stopped.checkpoint else "no checkpoint"
        err_console.print(
            f"interrupted ({saved}); continue with: "
            f"ethos train --resume {shlex.quote(str(stopped.run_dir))}",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    _report(run)


def _report(run: Any) -> None:
    console.print(f"run directory: {run.path}", markup=False)
    metrics = run.metrics
    if "baselines" in metrics:
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
    else:
        console.print(_qa_table(metrics))


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


@app.command("audit")
def audit_command(
    run_dir: Path | None = typer.Argument(
        None, metavar="RUN_DIR", help="A finished run directory (or use --predictions)."
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Audit any system's decisions from a CSV/Parquet file (or a bundled set name, e.g. "
        "compas) instead of a run.",
    ),
    label: str | None = typer.Option(None, "--label", help="True outcome column (--predictions)."),
    prediction: str | None = typer.Option(
        None, "--prediction", help="Predicted label column (--predictions)."
    ),
    score: str | None = typer.Option(
        None, "--score", help="Score column; decisions are score >= --threshold."
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="Decision threshold."),
    group: list[str] = typer.Option(
        [], "--group", help="Sensitive attribute column; repeat for several."
    ),
    positive: str | None = typer.Option(
        None,
        "--positive",
        help="The positive (selected) outcome, in both the label and the prediction column "
        "(default 1; 1/1.0/'1' and Yes/yes match). LABEL=PREDICTION when the columns use "
        "different words, e.g. 1=approved.",
    ),
    calibration: bool | None = typer.Option(
        None,
        "--calibration/--no-calibration",
        help="Demand (or skip) calibration; by default it runs when scores are probabilities.",
    ),
    checks: str | None = typer.Option(
        None, "--checks", help="Comma-separated checks for a run audit (default: all)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: RUN_DIR/audit or FILE.audit)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing audit folder."),
) -> None:
    """Audit fairness, calibration, robustness, explanations and privacy; write audit.json and a
    self-contained report.html.

    Examples:

      ethos audit runs/<run-id>

      ethos audit --predictions compas --label two_year_recid --score decile_score
      --threshold 5 --group race --group sex
    """
    from ethos.audit.runner import audit_predictions, audit_run
    from ethos.rundir import RunDir

    if (run_dir is None) == (predictions is None):
        raise EthosError(
            "give either RUN_DIR or --predictions FILE",
            hint="ethos audit runs/<run-id>, or ethos audit --predictions FILE --label COL ...",
        )
    if predictions is not None:
        if label is None:
            raise EthosError("--predictions needs --label COL (the true outcome)")
        result = audit_predictions(
            predictions,
            label=label,
            groups=group,
            prediction=prediction,
            score=score,
            threshold=threshold,
            positive=positive,
            calibration=calibration,
            out=out,
            replace=force,
        )
    else:
        assert run_dir is not None
        names = [c.strip() for c in checks.split(",") if c.strip()] if checks else None
        result = audit_run(RunDir.open(run_dir), out=out, checks=names, replace=force)
    for dimension, entry in result.audit["summary"].items():
        reasons = [str(r) for r in entry["reasons"]] or [""]
        console.print(f"  {dimension:<15} {entry['status']:<6} {reasons[0]}", markup=False)
        for reason in reasons[1:]:
            console.print(f"  {'':<15} {'':<6} {reason}", markup=False)
    console.print(f"wrote {result.path / 'audit.json'} and {result.report}")


@app.command("gate")
def gate_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished, audited run."),
    policy: str | None = typer.Option(
        None,
        "--policy",
        "-p",
        help="Policy YAML file or bundled name (medical, criminal-justice, credit); default: "
        "the run config's policy.",
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL (default $ETHOS_LEDGER_URL or ~/.ethos/ledger.db)."
    ),
    record: bool = typer.Option(
        True,
        "--record/--no-record",
        help="Append the decision to the ledger (default). --no-record gives an advisory "
        "decision in decision.advisory.json that cannot be served or approved.",
    ),
    why: str | None = typer.Option(
        None,
        "--why",
        help="Required when --policy is not the run's own policy: who asked for it and why "
        "(recorded in the ledger with the decision).",
    ),
) -> None:
    """Score a run against an ethics policy and decide: exit 0 PASS, 1 FAIL, 3 REVIEW, 2 error.

    Prints the scorecard (composites with weights and scores), every constraint, the reasons and
    how much each weight would have to change to flip the decision; writes decision.json and
    records it in the ledger (what serving and approval check against), and refreshes the model
    card if the run has one.
    """
    from ethos.governance.gate import gate_run
    from ethos.rundir import RunDir

    run = RunDir.open(run_dir)
    source = policy or run.config.policy
    if source is None:
        raise EthosError(
            "no policy given and the run's config names none",
            hint="pass --policy FILE or a bundled name: medical, criminal-justice, credit",
        )
    result = gate_run(run, source, ledger_url=ledger, record=record, why=why)
    _print_decision(result)
    if not record:
        console.print(
            "advisory only (--no-record): nothing was recorded, and this decision "
            "cannot be served or approved"
        )
    raise typer.Exit(result.exit_code)


def _print_decision(result: Any) -> None:
    from ethos.governance.gate import render_tree

    card = result.scorecard
    console.print(f"policy {card.policy} v{card.policy_version}")
    for line in render_tree(card):
        console.print("  " + line, markup=False)
    for c in card.constraints:
        console.print(f"  [{c.status:^9}] {c.label}: {c.detail}", markup=False)
    fragile = [s for s in result.decision["sensitivity"] if s["relative_change"] is not None]
    if fragile:
        weakest = min(fragile, key=lambda s: abs(s["relative_change"]))
        console.print(
            f"  most fragile weight: {weakest['path']} (a {weakest['relative_change']:+.1%} "
            "change flips the decision)",
            markup=False,
        )
    console.print(
        f"decision: {card.decision}  (W = {card.welfare:.3f}, threshold {card.threshold:g})"
    )
    for reason in card.reasons:
        console.print(f"  - {reason}", markup=False)
    for warning in result.decision.get("small_group_warnings", []):
        err_console.print(f"warning: {warning}", markup=False)
    console.print(f"wrote {result.path}")


@app.command("approve")
def approve_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run whose decision is REVIEW."),
    actor: str = typer.Option(..., "--as", help="Who approves (recorded in the ledger)."),
    note: str = typer.Option(..., "--note", help="Why the review outcome is acceptable."),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL."),
) -> None:
    """Record a human sign-off on a REVIEW decision (a FAIL cannot be approved)."""
    from ethos.governance.approve import approve_run
    from ethos.rundir import RunDir

    approval = approve_run(RunDir.open(run_dir), actor=actor, note=note, ledger_url=ledger)
    entry = approval.record["ledger"]
    console.print(
        f"approved by {approval.record['approved_by']}: ledger entry #{entry['seq']} "
        f"({entry['entry_hash'][:12]}); wrote {approval.path}"
    )


@app.command("card")
def card_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory."),
) -> None:
    """Write the model card (model/README.md, Hugging Face format) and its HTML rendering."""
    from ethos.governance.card import write_card
    from ethos.rundir import RunDir

    card = write_card(RunDir.open(run_dir))
    console.print(f"wrote {card.markdown} and {card.html}")


@app.command("run")
def run_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Run config (YAML)."),
    policy: str | None = typer.Option(
        None, "--policy", "-p", help="Overrides the config's policy (file or bundled name)."
    ),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    output_dir: Path | None = typer.Option(None, help="Overrides output_dir from the config."),
) -> None:
    """Train, audit, gate, write the card and record it all: the governed run in one command.

    Exit code is the gate's: 0 PASS, 1 FAIL, 3 REVIEW (2 for a user error).
    """
    from ethos.pipeline import run_pipeline

    config = load_config(config_path)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": output_dir})
    result = run_pipeline(
        config, policy=policy, ledger_url=ledger, quiet=quiet, log=lambda m: console.print(m)
    )
    _report(result.run)
    _print_summary(result)
    raise typer.Exit(result.exit_code)


@app.command("sweep")
def sweep_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Base run config (YAML)."),
    grid: list[str] = typer.Option(
        [],
        "--grid",
        "-g",
        metavar="KEY=[VALUES]",
        help="A config key and the values to try, e.g. 'fairness.lambda=[0,0.5,1]' or "
        "'privacy.epsilon=[1,8,inf]'; repeat for more keys (the sweep is their product). Keys "
        "that are not a top-level section are read below train.",
    ),
    policy: str | None = typer.Option(
        None, "--policy", "-p", help="Overrides the config's policy (file or bundled name)."
    ),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="DIR",
        help="New (or empty) folder for runs/, sweep.json and index.html; default "
        "OUTPUT_DIR/sweep-<time>.",
    ),
    max_points: int = typer.Option(
        64, "--max-points", min=1, help="Refuse a grid with more points than this."
    ),
) -> None:
    """Train a grid of configs, audit and gate every run, and write a page of Pareto fronts.

    Each point is a governed run (as `ethos run`) with its own ledger entries. The page
    (OUT/index.html) shows accuracy against the fairness gap and against ε, each with its Pareto
    front, W for every point, and a table of all points with their decisions. Points train one
    after another in this process; to spread the training over GPUs use the engine's Accelerate
    launch path (`accelerate launch -m ethos sweep ... --out DIR`, see docs/sweep.md).

    Every point is validated before anything trains. Exit code: 0 when every point ran (whatever
    its decision), 1 when some point failed (recorded with its error), 2 for a user error.
    """
    from ethos.sweep import sweep

    config = load_config(config_path)
    result = sweep(
        config,
        grid,
        policy=policy,
        ledger_url=ledger,
        out=out,
        max_points=max_points,
        quiet=quiet,
        base_dir=config_path.parent,
        source=str(config_path),
        log=lambda m: console.print(m, markup=False),
    )
    raise typer.Exit(result.exit_code)


def _print_summary(result: Any) -> None:
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


@app.command("export")
def export_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (must not exist)."),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="Fold a LoRA adapter into the base weights, giving a plain Hugging Face model that "
        "loads with from_pretrained and needs neither peft nor ethos.",
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger to check the run's decision in (warns when not cleared)."
    ),
) -> None:
    """Write a run's model as a standalone Hugging Face model folder (with its tokenizer)."""
    from ethos.models.export import export_model
    from ethos.rundir import RunDir

    run = RunDir.open(run_dir)
    _warn_if_not_cleared(run, ledger)
    written = export_model(run, output, merge=merge)
    console.print(f"wrote {written}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory."),
    input_path: Path = typer.Option(..., "--input", "-i", help="CSV or JSONL rows to score."),
    output_path: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write (CSV); default INPUT.predictions.csv."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger to check the run's decision in (warns when not cleared)."
    ),
) -> None:
    """Score a file with a trained run: the same rows plus predicted label and probabilities."""
    from ethos.rundir import RunDir
    from ethos.training.predict import predict_file

    run = RunDir.open(run_dir)
    _warn_if_not_cleared(run, ledger)
    written = predict_file(run, input_path, output_path)
    console.print(f"wrote {written}")


def _warn_if_not_cleared(run: Any, ledger_url: str | None) -> None:
    """Say so (on stderr) when the run's recorded decision does not clear it for decisions."""
    from ethos.governance.decision_record import governance_warning

    warning = governance_warning(run, ledger_url)
    if warning:
        err_console.print(f"warning: {warning}", markup=False)


@app.command()
def demo(quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """The main job on bundled COMPAS: describe the data, then the governed run — fine-tune,
    compare with baselines, audit, gate against the criminal-justice policy, write the card and
    record it in the ledger. Exits 0 whatever the decision (it is a demonstration)."""
    from ethos.pipeline import run_pipeline

    config = load_config(_example_path("compas"))
    data_describe("compas", tokens=False)
    result = run_pipeline(config, quiet=quiet, log=lambda m: console.print(m))
    _report(result.run)
    console.print(
        f"training {result.seconds['train']:.0f} s, audit {result.seconds['audit']:.0f} s"
    )
    _print_summary(result)


def _example_path(name: str) -> Path:
    from importlib import resources

    return Path(str(resources.files("ethos.examples") / f"{name}.yaml"))


def main() -> None:
    """Console entry point: one clear line (and a hint) for every user mistake, exit code 2.

    Usage mistakes come from the click that typer bundles (``typer._click``, not the ``click``
    package), so they are caught through typer's own base class: catching ``click`` alone let
    every mistyped command print a traceback.
    """
    try:
        command = typer.main.get_command(app)
        readable_help(command)
        code = command.main(args=sys.argv[1:], prog_name="ethos", standalone_mode=False)
    except EthosError as exc:
        err_console.print(f"error: {exc.message}", markup=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"  fix: {exc.hint}", markup=False, soft_wrap=True)
        sys.exit(USER_ERROR_EXIT_CODE)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:
        sys.exit(usage_error(exc))
    if isinstance(code, int) and code:
        sys.exit(code)
