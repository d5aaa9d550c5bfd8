"""``ethos keys ...``: create, list and revoke the API keys of `ethos serve`.

Thin calls into :class:`ethos.serving.store.ServingStore`. Mistakes (an unknown scope, an unknown
key id, a database that cannot be opened) raise :class:`~ethos.serving.store.StoreError`, which
the top-level CLI prints as one message, exiting 2.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ethos.serving.store import (
    DEFAULT_CACHE_TTL_S,
    DEFAULT_RATE_PER_MINUTE,
    SCOPES,
    URL_ENV,
    ServingStore,
)
from ethos.terminal import output_console

app = typer.Typer(
    name="keys",
    help="API keys for `ethos serve`: create (the token is shown once), list, revoke.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: see ethos.cli_usage
)
console = output_console()

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Serving database: a SQLite file path or URL, or postgresql+psycopg://... "
        f"(default: ${URL_ENV}, else ~/.ethos/serving.db)",
        show_default=False,
    ),
]


@app.command()
def create(
    name: Annotated[
        str, typer.Option("--name", help="Who or what will use the key (e.g. triage-frontend).")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help=f"What the key may do; repeat for several: {', '.join(SCOPES)} "
            "(admin allows everything). Default: predict.",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        int, typer.Option("--rate", help="Requests per minute allowed (bursts up to this many).")
    ] = DEFAULT_RATE_PER_MINUTE,
    db: DbOption = None,
) -> None:
    """Create a key and print its token once: only a salted hash of it is kept."""
    with ServingStore(db) as store:
        issued = store.create_key(name, scope or ["predict"], rate)
        record = store.key(issued.key_id)
        location = store.url
    assert record is not None
    console.print(
        f"created key {record.key_id} '{record.name}' in {location}: scopes "
        f"{', '.join(record.scopes)}; {record.rate_per_minute} requests/minute",
        markup=False,
    )
    typer.echo(issued.token)
    console.print(
        "This token cannot be shown again: ethos keeps only a salted hash of it. Store it now "
        "and send it as 'Authorization: Bearer <token>'.",
        markup=False,
    )


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`ethos keys list` shows them).")],
    db: DbOption = None,
) -> None:
    """Revoke a key for good; running servers refuse it within a few seconds."""
    with ServingStore(db) as store:
        record = store.revoke_key(key_id)
    revoked = record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "now"
    console.print(
        f"revoked key {record.key_id} '{record.name}' at {revoked}; running servers refuse it "
        f"within {DEFAULT_CACHE_TTL_S:g} s (they cache verified keys that long)",
        markup=False,
    )


@app.command("list")
def list_keys(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead.")] = False,
) -> None:
    """List keys (ids, names, scopes, rates, dates); tokens are never stored, so never shown."""
    with ServingStore(db) as store:
        keys = store.list_keys()
        location = store.url
    if as_json:
        typer.echo(json.dumps([k.to_dict() for k in keys], ensure_ascii=False, indent=2))
        return
    if not keys:
        console.print(
            f"no API keys in {location}; create one with `ethos keys create`", markup=False
        )
        return
    table = Table(title=escape(f"API keys in {location}"), title_justify="left")
    id_width = max(len(key.key_id) for key in keys)
    table.add_column("key id", no_wrap=True, min_width=id_width)  # copied into `keys revoke`
    for column in ("name", "scopes", "rate/min"):
        table.add_column(column)
    for column in ("created (UTC)", "revoked (UTC)"):
        table.add_column(column, no_wrap=True, min_width=19)
    for key in keys:
        table.add_row(
            key.key_id,
            escape(key.name),
            ", ".join(key.scopes),
            str(key.rate_per_minute),
            key.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-",
        )
    console.print(table)
