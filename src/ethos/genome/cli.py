"""``ethos genome ...``: guide design, off-target search, scoring, the regulation model, and the
ethics review of an edit request (``review``, ``approve``).

Each command is a thin call into :mod:`ethos.genome`; user mistakes raise
:class:`~ethos.genome.errors.GenomeError`, which the top-level CLI prints and turns into exit 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ethos.genome.errors import GenomeError
from ethos.genome.fasta import read_fasta
from ethos.genome.guides import find_guides
from ethos.genome.offtarget import hits_to_frame, search_offtargets, write_cas_offinder
from ethos.genome.offtarget_sharded import DEFAULT_WINDOW_BP, search_offtargets_sharded
from ethos.genome.plots import plot_edit_effect, plot_offtarget_counts, plot_weights
from ethos.genome.ranking import rank_guides, resolve_convention, score_hit
from ethos.genome.regulation import METHODS, RegulationModel, random_weights, simulate_expression
from ethos.genome.report import Section, write_html
from ethos.genome.review import DEFAULT_POLICY, approve_edit, review_edit
from ethos.genome.scoring import cfd_score, check_convention, mit_pam_factor, mit_score

app = typer.Typer(
    name="genome",
    help="CRISPR guide design: find guides, search off-targets, score them (CFD, MIT), "
    "predict the expression change of an edit with a linear regulation model, and review an "
    "edit request under an ethics policy.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: see ethos.cli_usage
)

PamOption = Annotated[
    str,
    typer.Option(
        "--pam",
        help="3' PAM in IUPAC codes: NGG (SpCas9, default), NRG (SpCas9 relaxed), NNGRRT "
        "(SaCas9). A genome N never satisfies a PAM position.",
    ),
]
MismatchOption = Annotated[
    int,
    typer.Option(
        "--max-mismatches",
        "-k",
        help="Largest number of protospacer mismatches reported (genome N counts as one).",
    ),
]
ConventionOption = Annotated[
    str | None,
    typer.Option(
        "--convention",
        help="Scoring convention: 'crispor' (an N in a site is a mismatch; MIT x 0.2 for a "
        "site whose PAM does not end in GG, as CRISPOR) or 'ethos' (N scores as the most "
        "active base: an upper bound). Default: crispor for a PAM other than NGG, else ethos.",
    ),
]
HtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html",
        help="Also write a self-contained HTML report (tables, inline figures) to this path.",
    ),
]


def _print_frame(frame: pd.DataFrame, title: str) -> None:
    table = Table(title=Text(title))
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for values in frame.itertuples(index=False):
        cells = [
            ("-" if math.isnan(v) else f"{v:.4g}") if isinstance(v, float) else str(v)
            for v in values
        ]
        table.add_row(*(Text(c) for c in cells))  # Text: user strings are never rich markup
    Console(width=200).print(table)


@app.command()
def guides(
    target: Annotated[
        Path, typer.Argument(help="FASTA of the target region(s); every record is searched.")
    ],
    pam: PamOption = "NGG",
    genome: Annotated[
        Path | None,
        typer.Option(
            help="Genome FASTA: search each guide's off-targets there and rank guides by "
            "specificity 100 / (100 + sum of off-target scores) (CFD first, then MIT).",
        ),
    ] = None,
    max_mismatches: MismatchOption = 4,
    top: Annotated[int, typer.Option(help="Show at most this many guides.")] = 20,
    convention: ConventionOption = None,
    html: HtmlOption = None,
) -> None:
    """List the 20-nt guides of a target region on both strands, with GC content, TTTT
    (Pol III terminator) and homopolymer flags; with --genome, ranked by specificity."""
    candidates = [g for record in read_fasta(target) for g in find_guides(record, pam=pam)]
    if not candidates:
        raise GenomeError(
            f"no guides with PAM {pam!r} in {str(target)!r}",
            hint="check the target region and the PAM pattern",
        )
    rows = []
    figures = []
    if genome is None:
        for g in candidates:
            rows.append({**g.as_row()})
        title = f"{len(candidates)} guides in {target.name} (PAM {pam})"
    else:
        reports = rank_guides(
            candidates, genome, pam=pam, max_mismatches=max_mismatches, convention=convention
        )
        for r in reports:
            info = r.guide_info
            assert info is not None
            rows.append(
                {
                    "guide": r.guide,
                    "pam": info.pam,
                    "chromosome": info.chromosome,
                    "position": info.position,
                    "strand": info.strand,
                    "specificity_cfd": r.specificity_cfd,
                    "specificity_mit": r.specificity_mit,
                    "offtargets": len(r.offtargets),
                    "gc_fraction": info.gc_fraction,
                    "poly_t": info.poly_t,
                    "homopolymer": info.homopolymer,
                }
            )
        figures.append(plot_offtarget_counts(reports[:top]))
        title = f"{len(reports)} guides in {target.name} ranked against {genome.name}"
    frame = pd.DataFrame(rows)
    _print_frame(frame.head(top), title)
    if html is not None:
        write_html(html, "ethos genome guides", [Section(title, table=frame, figures=figures)])


@app.command()
def offtargets(
    genome: Annotated[Path, typer.Argument(help="Genome FASTA (plain or gzip).")],
    guide: Annotated[
        list[str],
        typer.Option("--guide", "-g", help="20-nt protospacer without PAM; repeat for more."),
    ],
    pam: PamOption = "NGG",
    max_mismatches: MismatchOption = 4,
    shards: Annotated[
        bool,
        typer.Option(
            "--shards",
            help="Stream the FASTA in overlapping windows of --window-bp bases and search "
            "window by window: memory bounded by the window instead of the genome, same hits "
            "in the same order.",
        ),
    ] = False,
    window_bp: Annotated[
        int,
        typer.Option(help="Bases per shard with --shards or --ray (at least one site long)."),
    ] = DEFAULT_WINDOW_BP,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run the shards on Ray (implies --shards): 'local' starts Ray on this "
            "machine with --workers CPUs; HOST:PORT or ray://HOST:PORT uses a running cluster "
            "whose workers have ethos installed. Needs: pip install 'ethos[scale]'.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="CPUs of the Ray instance started by --ray local.")
    ] = 2,
    convention: ConventionOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the hits as Cas-OFFinder's tab-separated output to this path."),
    ] = None,
    html: HtmlOption = None,
) -> None:
    """Find every genome site within k mismatches of each guide next to a PAM, both strands,
    scored by CFD (0-1) and MIT (0-100). Positions are 0-based; mismatches are lower case.
    With --shards or --ray the genome is streamed (for genomes larger than memory)."""
    conv = resolve_convention(convention, pam)  # a typo fails before a long search
    if shards or ray is not None:
        hits = search_offtargets_sharded(
            genome,
            guide,
            pam=pam,
            max_mismatches=max_mismatches,
            window_bp=window_bp,
            ray_address=ray,
            workers=workers,
        )
    else:
        hits = search_offtargets(genome, guide, pam=pam, max_mismatches=max_mismatches)
    frame = hits_to_frame(hits)
    scores = [score_hit(h, pam, convention=conv) for h in hits]
    frame["cfd"] = [s[0] for s in scores]
    frame["mit"] = [s[1] for s in scores]
    title = f"{len(hits)} sites within {max_mismatches} mismatches in {genome.name}"
    _print_frame(frame, title)
    if out is not None:
        write_cas_offinder(hits, out, pam_length=len(pam))
    if html is not None:
        write_html(html, "ethos genome offtargets", [Section(title, table=frame)])


@app.command()
def score(
    guide: Annotated[str, typer.Argument(help="Guide: 23-mer (protospacer + PAM) or 20-mer.")],
    offtarget: Annotated[str, typer.Argument(help="Off-target site of the same length.")],
    convention: Annotated[
        str,
        typer.Option(
            help="'ethos' (N scores as the most active base) or 'crispor' (N is a mismatch; "
            "MIT x 0.2 for a 23-mer whose PAM does not end in GG)."
        ),
    ] = "ethos",
) -> None:
    """Score one off-target: CFD (Doench et al. 2016, 0-1, needs 23-mers) and MIT (Hsu et al.
    2013, 0-100, on the 20-nt protospacers)."""
    g, o = guide.strip(), offtarget.strip()
    if len(g) != len(o) or len(g) not in (20, 23):
        raise GenomeError(
            f"guide and off-target have {len(g)} and {len(o)} bases; expected both 23 "
            "(protospacer + PAM) or both 20 (protospacer only)",
        )
    conv = check_convention(convention)
    cfd = cfd_score(g, o, convention=conv) if len(g) == 23 else math.nan
    mit = mit_score(g[:20], o[:20], convention=conv) * mit_pam_factor(o[20:], convention=conv)
    _print_frame(pd.DataFrame([{"guide": g, "offtarget": o, "cfd": cfd, "mit": mit}]), "scores")


def _read_matrix(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, index_col=0)
    except FileNotFoundError:
        raise GenomeError(f"{what} file {str(path)!r} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GenomeError(f"{what} file {str(path)!r} is not a readable CSV: {exc}") from None


@app.command()
def regulation(
    x: Annotated[
        Path | None,
        typer.Option(help="CSV of regulator levels: one row per regulator, one column per sample."),
    ] = None,
    y: Annotated[
        Path | None,
        typer.Option(help="CSV of gene expression: one row per gene, same sample columns as X."),
    ] = None,
    simulate: Annotated[
        bool, typer.Option(help="Use simulated data from a random planted W instead of files.")
    ] = False,
    genes: Annotated[int, typer.Option(help="Simulation: number of genes.")] = 8,
    regulators: Annotated[int, typer.Option(help="Simulation: number of regulators.")] = 4,
    samples: Annotated[int, typer.Option(help="Simulation: number of samples.")] = 60,
    noise_sd: Annotated[float, typer.Option(help="Simulation: noise SD, expression units.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Simulation and bootstrap seed.")] = 0,
    method: Annotated[
        str, typer.Option(help=f"Estimator of W: {', '.join(METHODS)} (nnls keeps W >= 0).")
    ] = "ols",
    alpha: Annotated[float, typer.Option(help="Ridge penalty (method ridge only).")] = 1.0,
    edit: Annotated[
        list[str] | None,
        typer.Option(
            help="Regulator change of the edit as NAME=DELTA (repeat); default: first regulator "
            "-1 (a knock-out of one unit)."
        ),
    ] = None,
    html: HtmlOption = None,
) -> None:
    """Estimate W in Y = W X from expression data and predict the expression change of an edit
    (a change in regulator levels X) with a 95 % uncertainty band."""
    planted = None
    if simulate:
        planted = random_weights(genes, regulators, nonnegative=method == "nnls", seed=seed)
        xm, ym = simulate_expression(planted, n_samples=samples, noise_sd=noise_sd, seed=seed)
        x_frame = pd.DataFrame(xm, index=[f"reg{i}" for i in range(regulators)])
        y_frame = pd.DataFrame(ym, index=[f"gene{i}" for i in range(genes)])
    elif x is not None and y is not None:
        x_frame, y_frame = _read_matrix(x, "X"), _read_matrix(y, "Y")
    else:
        raise GenomeError(
            "regulation needs data", hint="give both --x and --y CSV files, or --simulate"
        )
    model = RegulationModel(method, alpha=alpha).fit(x_frame, y_frame)  # type: ignore[arg-type]
    names = list(model.regulator_names_)
    delta = np.zeros(len(names))
    if not edit:
        delta[0] = -1.0
    for item in edit or []:
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            raise GenomeError(
                f"edit {item!r} is not NAME=DELTA with a known regulator",
                hint=f"regulators: {', '.join(names)}",
            )
        try:
            delta[names.index(name)] = float(value)
        except ValueError:
            raise GenomeError(f"edit {item!r}: {value!r} is not a number") from None
    effect = model.predict_edit(delta, seed=seed)
    frame = effect.to_frame().reset_index()
    edit_text = ", ".join(f"{n} {d:+g}" for n, d in zip(names, delta, strict=True) if d)
    title = (
        f"predicted change after edit ({edit_text}), "
        f"{100 * effect.level:.0f} % {effect.interval} band, {model!r}"
    )
    _print_frame(frame, title)
    if html is not None:
        weights = plot_weights(
            model.weights_,
            true_weights=planted,
            gene_names=model.gene_names_,
            regulator_names=model.regulator_names_,
        )
        w_frame = pd.DataFrame(model.weights_, columns=names).assign(gene=model.gene_names_)
        write_html(
            html,
            "ethos genome regulation",
            [
                Section("estimated W", table=w_frame[["gene", *names]], figures=[weights]),
                Section(title, table=frame, figures=[plot_edit_effect(effect)]),
            ],
        )


LedgerOption = Annotated[
    str | None,
    typer.Option("--ledger", help="Ledger URL (default $ETHOS_LEDGER_URL or ~/.ethos/ledger.db)."),
]


@app.command()
def review(
    request: Annotated[
        Path, typer.Argument(help="Edit request (YAML or JSON); see docs/genome.md.")
    ],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            "-p",
            help="Edit policy: a YAML file with 'subject: edit', or a bundled name (genome-edit).",
        ),
    ] = DEFAULT_POLICY,
    genome: Annotated[
        Path | None,
        typer.Option(help="Genome FASTA searched for off-targets (default: the request's)."),
    ] = None,
    bed: Annotated[
        Path | None,
        typer.Option(help="BED file of coding regions (default: the request's coding_regions)."),
    ] = None,
    ledger: LedgerOption = None,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Append the decision to the ledger.")
    ] = True,
    top: Annotated[int, typer.Option(help="Show at most this many off-targets.")] = 20,
    html: HtmlOption = None,
) -> None:
    """Review a gene-edit request under an ethics policy: exit 0 PASS, 1 FAIL, 3 REVIEW, 2 error.

    Searches the guide's off-targets, marks those in coding regions, scores the edit with the
    same policy engine as models (germline or enhancement edits need a recorded review; a
    likely off-target cut in coding sequence fails) and appends the decision to the ledger.
    """
    if html is not None and not html.parent.exists():
        raise GenomeError(
            f"cannot write report {str(html)!r}: folder {str(html.parent)!r} does not exist",
            hint="create the folder or choose another path",
        )
    result = review_edit(
        request, policy=policy, genome=genome, bed=bed, ledger_url=ledger, record=record
    )
    card = result.scorecard
    console = Console(width=200, highlight=False)
    _print_frame(result.request_frame(), f"edit request {result.request.name}")
    offtargets = result.offtarget_frame()
    _print_frame(
        offtargets.head(top),
        f"{len(offtargets)} off-targets within {result.request.max_mismatches} mismatches, "
        f"{result.documents['edit']['offtargets']['coding']} in coding regions",
    )
    _print_frame(result.constraint_frame(), f"policy {card.policy} v{card.policy_version}")
    summary = f"decision: {result.decision}  (W = {card.welfare:.3f}, threshold {card.threshold:g})"
    console.print(summary, markup=False)
    for reason in result.reasons:
        console.print(f"  - {reason}", markup=False)
    if result.ledger is not None:
        console.print(
            f"ledger entry #{result.ledger['seq']} ({result.ledger['entry_hash'][:12]}) in "
            f"{result.ledger['url']}",
            markup=False,
        )
    if html is not None:
        sections = [
            Section(f"decision: {result.decision}", text="; ".join(result.reasons)),
            Section("edit request", table=result.request_frame()),
            Section(
                f"policy {card.policy} v{card.policy_version}", table=result.constraint_frame()
            ),
            Section(
                "off-targets",
                text="CFD 0-1 (Doench et al. 2016), MIT 0-100 (Hsu et al. 2013); 'coding' names "
                "the BED regions a site overlaps.",
                table=offtargets,
                figures=[plot_offtarget_counts([result.report])],
            ),
        ]
        write_html(html, f"ethos genome review: {result.request.name}", sections)
        console.print(f"wrote {html}", markup=False)
    raise typer.Exit(result.exit_code)


@app.command()
def approve(
    request: Annotated[Path, typer.Argument(help="The edit request whose review is REVIEW.")],
    actor: Annotated[str, typer.Option("--as", help="Who approves (recorded in the ledger).")],
    note: Annotated[str, typer.Option("--note", help="Why the edit is acceptable.")],
    ledger: LedgerOption = None,
) -> None:
    """Record a named reviewer's approval of the latest REVIEW decision about an edit request.

    A later `ethos genome review` of the same request, genome, coding regions and policy then
    passes and names the approver; a FAIL cannot be approved.
    """
    entry, decided = approve_edit(request, actor=actor, note=note, ledger_url=ledger)
    Console(highlight=False).print(
        f"approved by {entry.actor}: ledger entry #{entry.seq} ({entry.entry_hash[:12]}) "
        f"approves review #{decided.seq} of {decided.run_id}",
        markup=False,
    )
