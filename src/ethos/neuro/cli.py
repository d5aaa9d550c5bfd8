"""``ethos neuro ...``: simulate EEG, decode motor imagery, run the closed loop safely.

Each command is a thin call into :mod:`ethos.neuro` and can write a self-contained HTML report.
User mistakes raise :class:`~ethos.neuro.errors.NeuroError`, which the top-level CLI prints and
turns into exit code 2.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

import matplotlib

matplotlib.use("Agg")

import typer
from rich.table import Table

from ethos.neuro.audit import AuditSink, ConsentRecord, FanOutSink, InMemoryAuditSink
from ethos.neuro.controllers import PID, BetaThreshold, FixedStimulation
from ethos.neuro.data import CLASSES
from ethos.neuro.decoders import DECODERS, make_decoder
from ethos.neuro.errors import NeuroError
from ethos.neuro.evaluation import evaluate_decoder
from ethos.neuro.intent import SurrogateIntent
from ethos.neuro.ledger_sink import LedgerAuditSink, envelope_sha256, open_ledger
from ethos.neuro.loop import ClosedLoop, FaultInjection, LoopTrace
from ethos.neuro.plants import AdaptiveDBS, FESMuscle
from ethos.neuro.plots import (
    plot_class_spectra,
    plot_confusion,
    plot_csp_patterns,
    plot_loop,
)
from ethos.neuro.recordings import read_recording
from ethos.neuro.report import Section, write_html
from ethos.neuro.safety import SafetyEnvelope, cylinder_area_cm2
from ethos.neuro.simulate import SimulationConfig, simulate_motor_imagery, simulate_raw
from ethos.neuro.tuning import tune_gains
from ethos.terminal import output_console

app = typer.Typer(
    name="neuro",
    help="Neural interface: simulate motor-imagery EEG, decode intent (CSP+LDA, Riemannian "
    "tangent space, PyTorch MLP), and run closed-loop stimulation inside a safety envelope "
    "(Shannon k <= 1.85, <= 30 µC/cm²/phase) with every decision recorded.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: see ethos.cli_usage
)
console = output_console()

HtmlOption = Annotated[
    Path | None,
    typer.Option("--html", help="Also write a self-contained HTML report (figures inline)."),
]


def _print_rows(title: str, rows: Sequence[Mapping[str, object]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))  # rows differ (gains)
    table = Table(title=title)
    for column in columns:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*[str(row.get(column, "")) for column in columns])
    console.print(table)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for one FIF file per subject.")],
    subjects: Annotated[int, typer.Option(help="Number of simulated subjects.")] = 1,
    trials_per_class: Annotated[int, typer.Option(help="Trials of each class per subject.")] = 20,
    classes: Annotated[
        str, typer.Option(help=f"Comma-separated classes among {', '.join(CLASSES)}.")
    ] = "left_hand,right_hand",
    snr_db: Annotated[
        float, typer.Option(help="In-band (8-30 Hz) signal-to-noise ratio, dB.")
    ] = 10.0,
    erd: Annotated[
        float, typer.Option(help="Depth of the desynchronisation, 0 = no class signal.")
    ] = 0.7,
    sfreq_hz: Annotated[float, typer.Option(help="Sampling rate in Hz.")] = 250.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    html: HtmlOption = None,
) -> None:
    """Simulate motor-imagery EEG with an MNE spherical head model and write FIF recordings.

    Sources in left, right and medial motor cortex carry mu and beta rhythms that
    desynchronise contralaterally during imagined movement; cues are stored as annotations, so
    `ethos neuro decode` reads the files back directly.
    """
    config = SimulationConfig(
        n_subjects=subjects, trials_per_class=trials_per_class,
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
        snr_db=snr_db, erd_fraction=erd, sfreq_hz=sfreq_hz, seed=seed,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    rows, figures = [], []
    for subject in range(subjects):
        path = out / f"sub-{subject + 1:02d}_raw.fif"
        simulate_raw(config, subject=subject).save(path, overwrite=True, verbose="ERROR")
        rows.append({"subject": f"sub-{subject + 1:02d}", "file": str(path)})
    sessions = simulate_motor_imagery(config)
    for session in sessions:
        figures.append(plot_class_spectra(session))
    _print_rows("simulated recordings", rows)
    if html is not None:
        config_rows = [{"setting": k, "value": v} for k, v in vars(config).items()
                       if k != "ch_names"]  # fmt: skip
        write_html(html, "Simulated motor imagery", [
            Section("Configuration", "Spherical 3-layer head model, standard 10-20 montage, "
                    "22 channels.", rows=config_rows),
            Section("Recordings", rows=rows),
            Section("Class spectra", "Mean power per class at C3, Cz, C4 (epochs 0.5-2.5 s "
                    "after the cue, 8-30 Hz): imagery lowers the contralateral mu/beta peak.",
                    figures=figures),
        ])  # fmt: skip
        console.print(f"report: {html}")


@app.command()
def decode(
    recording: Annotated[Path, typer.Argument(help="EDF, BDF, GDF or FIF recording.")],
    decoder: Annotated[str, typer.Option(help=f"One of {', '.join(DECODERS)}, or 'all'.")] = "all",
    permutations: Annotated[
        int, typer.Option(help="Label permutations for the chance-level test (0 = skip).")
    ] = 100,
    folds: Annotated[int, typer.Option(help="Stratified cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed for folds and permutations.")] = 0,
    html: HtmlOption = None,
) -> None:
    """Cross-validate decoders on one recording: accuracy, kappa, ROC-AUC, permutation p.

    Events come from annotations named after classes (left_hand, right_hand, feet, rest) or a
    stim channel with codes 1-4; signals are band-passed 8-30 Hz and cut 0.5-2.5 s after cues.
    """
    data = read_recording(recording)
    names = list(DECODERS) if decoder == "all" else [decoder]
    results = []
    for name in names:
        params = {"sfreq_hz": data.sfreq_hz} if name == "bandpower_mlp" else {}
        results.append(evaluate_decoder(
            make_decoder(name, **params), data.X, data.y, name=name,
            class_names=data.class_names, n_splits=folds, n_permutations=permutations, seed=seed,
        ))  # fmt: skip
    rows = [r.summary() for r in results]
    _print_rows(f"{data!r}", rows)
    if html is not None:
        csp = make_decoder("csp_lda").fit(data.X, data.y).named_steps["csp"]
        sections = [
            Section("Data", repr(data)),
            Section("Within-session cross-validation", f"{folds}-fold stratified; permutation "
                    f"test with {permutations} label permutations.", rows=rows),
            Section("CSP patterns", "Spatial patterns of the CSP filters fitted on all epochs.",
                    figures=[plot_csp_patterns(csp.patterns_, data.info)]),
        ]  # fmt: skip
        sections += [Section(f"Confusion matrix: {r.decoder}",
                             figures=[plot_confusion(r.confusion, r.class_names)])
                     for r in results]  # fmt: skip
        write_html(html, f"Decoding {recording.name}", sections)
        console.print(f"report: {html}")


@app.command("closed-loop")
def closed_loop(
    authorised_by: Annotated[
        str, typer.Option(help="Who authorised this stimulation envelope (recorded first).")
    ],
    plant: Annotated[str, typer.Option(help="fes (muscle) or adbs (beta suppression).")] = "fes",
    duration_s: Annotated[float, typer.Option(help="Simulated seconds per run.")] = 30.0,
    area_cm2: Annotated[
        float, typer.Option(help="Electrode area in cm²; default a 1.5x1.27 mm DBS contact.")
    ] = cylinder_area_cm2(1.5, 1.27),
    k_max: Annotated[float, typer.Option(help="Shannon k limit; may only be <= 1.85.")] = 1.85,
    accuracy: Annotated[float, typer.Option(help="Decoder accuracy of the intent model.")] = 0.85,
    tune: Annotated[bool, typer.Option(help="Tune PID gains to maximise M (FES only).")] = True,
    fault_at_s: Annotated[
        float | None, typer.Option(help="Inject a 1 s flat-line sensor fault at this time.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the evaluated run.")] = 1,
    audit_log: Annotated[
        Path | None, typer.Option(help="Also write every audit event as JSON lines here.")
    ] = None,
    ledger_url: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Ledger URL (default $ETHOS_LEDGER_URL or ~/.ethos/ledger.db); every event "
            "is appended to it, the consent first.",
        ),
    ] = None,
    html: HtmlOption = None,
) -> None:
    """Simulate closed-loop stimulation driven by decoded intent, against open-loop stimulation.

    Every command passes the safety envelope; a sensor fault switches stimulation off in the
    same cycle. M = Σ C(t)·W_t - λ·charge (see ethos.neuro.loop) scores each run. The consent
    (who authorised which envelope), then every run start, parameter change, clamp, fault and
    run end are appended to the tamper-evident ledger under one run id (`ethos ledger show
    --run ID`).
    """
    if plant not in ("fes", "adbs"):
        raise NeuroError(f"--plant {plant!r} is unknown", hint="use fes or adbs")
    envelope = SafetyEnvelope(area_cm2=area_cm2, k_max=k_max)
    consent = ConsentRecord.for_envelope(envelope, authorised_by=authorised_by,
                                         purpose=f"simulated {plant} closed loop")  # fmt: skip
    with open_ledger(ledger_url) as ledger:
        recorded = LedgerAuditSink(ledger)
        memory = InMemoryAuditSink()
        traces = _closed_loop_runs(
            plant, envelope, consent, FanOutSink(recorded, memory), duration_s=duration_s,
            accuracy=accuracy, tune=tune, fault_at_s=fault_at_s, seed=seed,
        )  # fmt: skip
    rows = [{"run": label, **trace.summary()} for label, trace in traces.items()]
    _print_rows(f"closed loop, {plant}, {duration_s:g} s, seed {seed}", rows)
    console.print(recorded.summary(), markup=False)
    if audit_log is not None:
        memory.write_jsonl(audit_log)
        console.print(f"audit log: {audit_log} ({len(memory.events)} events)")
    if html is not None:
        sections = [
            Section("Consent", f"Authorised by {authorised_by} for the stimulation envelope "
                    f"below (sha256 {envelope_sha256(envelope.parameters())[:12]}).",
                    rows=[{"limit": k, "value": v} for k, v in envelope.parameters().items()]),
            Section("Runs", "M = sum over cycles of C(t)*W_t minus λ·delivered charge; C(t) is "
                    "the plant's credit against the true intent, W_t the cycle's duration "
                    "weighted by w_move (intended movement) or w_rest.", rows=rows),
            Section("Audit events", f"{len(memory.events)} events "
                    f"({_event_counts(memory.kinds())}); {recorded.summary()}"),
        ]  # fmt: skip
        for label, trace in traces.items():
            figure = plot_loop(trace, f"{label}: M = {trace.objective:.2f}")
            sections.append(Section(label, figures=[figure]))
        write_html(html, f"Closed loop: {plant}", sections)
        console.print(f"report: {html}")
    console.print(json.dumps({label: round(t.objective, 3) for label, t in traces.items()}))


def _closed_loop_runs(
    plant: str,
    envelope: SafetyEnvelope,
    consent: ConsentRecord,
    sink: AuditSink,
    *,
    duration_s: float,
    accuracy: float,
    tune: bool,
    fault_at_s: float | None,
    seed: int,
) -> dict[str, LoopTrace]:
    """The runs `closed-loop` compares, every event appended to ``sink``."""
    faults = () if fault_at_s is None else (FaultInjection(fault_at_s, fault_at_s + 1.0,
                                                           "flat_line"),)  # fmt: skip

    def source() -> SurrogateIntent:
        return SurrogateIntent(accuracy=accuracy, duration_s=duration_s)

    traces: dict[str, LoopTrace] = {}
    if plant == "fes":
        muscle = FESMuscle()
        fixed = muscle.amplitude_for_force(muscle.target_force_n, 200.0, 40.0)
        width_us, freq_hz = 200.0, 40.0
        open_loop = ClosedLoop(
            FESMuscle(), FixedStimulation(fixed), envelope, consent=consent, sink=sink,
            pulse_width_us=width_us, frequency_hz=freq_hz,
        )  # fmt: skip
        traces["open loop (fixed)"] = open_loop.run(source(), duration_s=duration_s, seed=seed,
                                                    faults=faults)  # fmt: skip
        loop = ClosedLoop(
            FESMuscle(),
            PID(),
            envelope,
            consent=consent,
            sink=sink,
            pulse_width_us=width_us,
            frequency_hz=freq_hz,
        )
        traces["PID, untuned"] = loop.run(source(), duration_s=duration_s, seed=seed,
                                          faults=faults)  # fmt: skip
        if tune:
            tune_gains(loop, source, duration_s=duration_s, seeds=(seed + 100,),
                       max_evaluations=40)  # fmt: skip
            traces["PID, tuned"] = loop.run(source(), duration_s=duration_s, seed=seed,
                                            faults=faults)  # fmt: skip
    else:
        width_us, freq_hz = 60.0, 130.0
        for label, controller in (
            ("no stimulation", FixedStimulation(0.0)),
            ("continuous DBS", FixedStimulation(3.0)),
            ("adaptive (beta threshold)", BetaThreshold(threshold=0.6)),
        ):
            loop = ClosedLoop(AdaptiveDBS(), controller, envelope, consent=consent, sink=sink,
                              pulse_width_us=width_us, frequency_hz=freq_hz)  # fmt: skip
            traces[label] = loop.run(source(), duration_s=duration_s, seed=seed, faults=faults)
    return traces


def _event_counts(kinds: list[str]) -> str:
    """'3 clamp, 1 fault, ...' in order of first appearance: what the audit trail holds."""
    counts = Counter(kinds)
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "none"
