"""``ethos ledger ...``: verify the chain and show its entries.

Thin calls into :class:`ethos.governance.ledger.Ledger`. A ledger that cannot be opened raises
:class:`~ethos.governance.ledger.LedgerError` (the top-level CLI prints it, exit 2); a ledger that
opens but fails verification exits 1, so scripts can tell "broken" from "could not check".
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ethos.governance.ledger import Ledger
from ethos.governance.ledger_canonical import HMAC_KEY_ENV
from ethos.governance.ledger_store import URL_ENV
from ethos.terminal import output_console

BROKEN_EXIT_CODE = 1

app = typer.Typer(
    name="ledger",
    help="The tamper-evident ledger of runs, decisions and approvals: verify it, show it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: see ethos.cli_usage
)
console = output_console()

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"Ledger location: a SQLite file path or URL, or postgresql+psycopg://... "
        f"[default: ${URL_ENV}, else ~/.ethos/ledger.db]",
        show_default=False,
    ),
]


@app.command()
def verify(url: UrlOption = None) -> None:
    """Re-walk the hash chain (and signatures, when a key is set); exit 1 at the first break."""
    with Ledger.open(url) as ledger:
        report = ledger.verify()
    console.print(f"ledger {report.url}: {report.summary()}", markup=False)
    if not report.signatures_checked:
        console.print(
            f"  note: {HMAC_KEY_ENV} is not set, so a consistent rewrite of the chain would not "
            "be detected",
            markup=False,
        )
    if not report.ok:
        raise typer.Exit(BROKEN_EXIT_CODE)


@app.command()
def show(
    url: UrlOption = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run id's entries.")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only entries of this kind (e.g. approval).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of full entries instead.")
    ] = False,
) -> None:
    """List entries in chain order (does not verify them; use `verify` for that)."""
    with Ledger.open(url) as ledger:
        entries = ledger.entries(run_id=run, kind=kind)
        location = ledger.url
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
        return
    if not entries:
        console.print(f"ledger {location}: no matching entries", markup=False)
        return
    table = Table(title=f"ledger {location}", title_justify="left")
    for column in ("seq", "time (UTC)", "kind", "actor", "run", "decision", "hash"):
        whole = column in ("seq", "time (UTC)", "hash")  # copied or compared: never wrapped
        table.add_column(column, overflow="fold", no_wrap=whole, min_width=19 if whole else None)
    for entry in entries:
        cells = (
            str(entry.seq),
            entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.kind,
            entry.actor,
            entry.run_id or "",
            entry.decision or "",
            entry.entry_hash[:12] + (" (signed)" if entry.signature else ""),
        )
        table.add_row(*(escape(cell) for cell in cells))  # actors and ids are data, not markup
    console.print(table)
