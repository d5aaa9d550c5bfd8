"""The ``ethos`` root group: every command by name and summary, ``--version``, and :func:`main`.

Nothing here imports a command's module: :data:`COMMANDS` names where each command is defined,
and :class:`~ethos.cli.lazy_group.LazyGroup` imports it when it is used, so ``ethos --help`` and
``ethos data describe --help`` answer without loading torch, pandas or pydantic. A new command is
a module (heavy imports inside its function body) plus one line here.
"""

from __future__ import annotations

import sys

import typer

from ethos.cli.lazy_group import LazyCommand, LazyGroup
from ethos.cli.output import err_console
from ethos.cli_usage import HELP_OPTION_NAMES, print_version, readable_help, usage_error
from ethos.errors import USER_ERROR_EXIT_CODE, EthosError

COMMANDS = (
    LazyCommand(
        "serve",
        "ethos.serving.serve_cli:serve_command",
        "Serve a gated run over HTTP: /v1/predict, /v1/explain, /v1/feedback, /v1/model, "
        "/v1/alerts, /dashboard, /metrics, /healthz, /readyz (OpenAPI at /docs). A causal_lm run "
        "answers POST /v1/generate instead of predict, explain and feedback; its responses are "
        "always PII-masked. A grounded run also answers POST /v1/answer from the knowledge base "
        "it recorded, and is refused when that knowledge base changed.",
    ),
    LazyCommand(
        "init",
        "ethos.cli.init:init",
        "Write a commented run config to start from (it runs as it is).",
    ),
    LazyCommand(
        "train",
        "ethos.cli.train:train_command",
        "Fine-tune the configured model and write a run directory (model, manifest, metrics).",
    ),
    LazyCommand(
        "audit",
        "ethos.cli.audit:audit_command",
        "Audit fairness, calibration, robustness, explanations and privacy (a multiple-choice "
        "run: accuracy and BBQ bias; a causal LM: generation audits); write audit.json and a "
        "self-contained report.html.",
    ),
    LazyCommand(
        "audit-lm",
        "ethos.cli.audit_lm:audit_lm_command",
        "Audit a language model: stereotype preference (CrowS-Pairs) and, with --generation, "
        "counterfactual bias, PII leakage and memorisation; write audit.json and report.html.",
    ),
    LazyCommand(
        "gate",
        "ethos.cli.gate:gate_command",
        "Score a run against an ethics policy and decide: exit 0 PASS, 1 FAIL, 3 REVIEW, "
        "4 INSUFFICIENT_EVIDENCE, 2 error.",
    ),
    LazyCommand(
        "approve",
        "ethos.cli.approve:approve_command",
        "Record a human sign-off on a REVIEW decision (a FAIL cannot be approved).",
    ),
    LazyCommand(
        "diff",
        "ethos.cli.diff:diff_command",
        "Compare a child run with its parent: paired bootstrap deltas with 95% intervals on the "
        "shared test rows, and the gate decisions side by side; writes the child's diff.json.",
    ),
    LazyCommand(
        "retrain",
        "ethos.cli.retrain:retrain_command",
        "Fine-tune a child from a run's weights on labelled feedback (with a replay of the "
        "parent's training rows), then audit, gate, diff it against the parent and record it "
        "linked to it.",
    ),
    LazyCommand(
        "card",
        "ethos.cli.card:card_command",
        "Write the model card (model/README.md, Hugging Face format) and its HTML rendering.",
    ),
    LazyCommand(
        "run",
        "ethos.cli.run:run_command",
        "Train, audit, gate, write the card and record it all: the governed run in one command.",
    ),
    LazyCommand(
        "sweep",
        "ethos.cli.sweep:sweep_command",
        "Train a grid of configs, audit and gate every run, and write a page of Pareto fronts.",
    ),
    LazyCommand(
        "export",
        "ethos.cli.export:export_command",
        "Write a run's model as a standalone Hugging Face model folder (with its tokenizer).",
    ),
    LazyCommand(
        "predict",
        "ethos.cli.predict:predict",
        "Score a file with a trained run: the same rows plus predicted label and probabilities.",
    ),
    LazyCommand(
        "demo",
        "ethos.cli.demo:demo",
        "The main job on bundled COMPAS: describe the data, then the governed run — fine-tune, "
        "compare with baselines, audit, gate against the criminal-justice policy, write the card "
        "and record it in the ledger. When the gate does not pass, a mitigated child run (the "
        "parent's weights deciding with per-group equalized-odds thresholds on race) goes "
        "through the same pipeline and is compared with its parent (`ethos diff`). Exits 0 "
        "whatever the decisions (it is a demonstration).",
    ),
    LazyCommand("data", "ethos.cli.data:app", "Inspect and prepare data sets."),
    LazyCommand(
        "kb",
        "ethos.cli.kb:app",
        "Knowledge bases for retrieval: build one from passages (embedded, PII-scrubbed, "
        "fingerprinted), search it, and ask a grounded run's questions.",
    ),
    LazyCommand(
        "genome",
        "ethos.genome.cli:app",
        "CRISPR guide design, off-target scoring, and the ethics review of edit requests.",
    ),
    LazyCommand(
        "neuro", "ethos.neuro.cli:app", "EEG intent decoding and safe closed-loop stimulation."
    ),
    LazyCommand(
        "ledger",
        "ethos.governance.ledger_cli:app",
        "The tamper-evident ledger: show and verify.",
    ),
    LazyCommand(
        "keys", "ethos.serving.keys_cli:app", "API keys for `ethos serve`: create, list, revoke."
    ),
)
"""The commands in the order ``ethos --help`` lists them: a function's summary is its
docstring's first paragraph, a group's is its whole help (tests/test_cli_startup.py checks both
against the loaded commands)."""


class EthosGroup(LazyGroup):
    """The root group, with :data:`COMMANDS` loaded on use."""

    lazy_commands = COMMANDS


app = typer.Typer(
    name="ethos",
    cls=EthosGroup,
    help="Fine-tune pretrained models for high-stakes decisions with ethics built into every run: "
    "train under a declared policy, audit, score, gate, document and record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": HELP_OPTION_NAMES},
    rich_markup_mode=None,  # plain help; rich mode kept docstring line breaks mid-sentence
)


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
