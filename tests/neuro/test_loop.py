"""The closed loop: consent, accountability, FES benefit over open loop, tuning, aDBS."""

from __future__ import annotations

import pytest

from ethos.neuro import (
    PID,
    AdaptiveDBS,
    BetaThreshold,
    ClosedLoop,
    ConsentRecord,
    FESMuscle,
    FixedStimulation,
    InMemoryAuditSink,
    NeuroError,
    SafetyEnvelope,
    SurrogateIntent,
    cylinder_area_cm2,
    tune_gains,
)

ENVELOPE = SafetyEnvelope(area_cm2=cylinder_area_cm2(1.5, 1.27))
CONSENT = ConsentRecord.for_envelope(ENVELOPE, authorised_by="Dr A. Clinician")
DURATION_S = 20.0


def _fes_loop(controller: object, sink: InMemoryAuditSink | None = None) -> ClosedLoop:
    return ClosedLoop(FESMuscle(), controller, ENVELOPE, consent=CONSENT,  # type: ignore[arg-type]
                      sink=sink or InMemoryAuditSink())  # fmt: skip


def _m(loop: ClosedLoop, seed: int) -> float:
    return loop.run(SurrogateIntent(duration_s=DURATION_S), duration_s=DURATION_S,
                    seed=seed).objective  # fmt: skip


def test_a_run_needs_consent_for_its_envelope() -> None:
    with pytest.raises(NeuroError, match="a ConsentRecord naming who authorised"):
        ClosedLoop(
            FESMuscle(),
            PID(),
            ENVELOPE,
            consent=None,
            sink=InMemoryAuditSink(),  # type: ignore[arg-type]
        )
    tighter = SafetyEnvelope(area_cm2=ENVELOPE.area_cm2, k_max=1.5)
    with pytest.raises(
        NeuroError, match=r"does not cover this envelope \(differs in \['k_max'\]\)"
    ):
        ClosedLoop(FESMuscle(), PID(), tighter, consent=CONSENT, sink=InMemoryAuditSink())
    with pytest.raises(NeuroError, match="authorised_by is empty"):
        ConsentRecord.for_envelope(ENVELOPE, authorised_by=" ")


def test_everything_is_appended_to_the_audit_sink() -> None:
    sink = InMemoryAuditSink()
    loop = _fes_loop(PID(kp=0.3, ki=1.0), sink)
    assert sink.kinds() == ["consent"]
    assert sink.of_kind("consent")[0]["authorised_by"] == "Dr A. Clinician"
    assert sink.of_kind("consent")[0]["envelope"]["k_max"] == 1.85
    loop.set_params(kp=0.2, reason="clinician lowered gain")
    change = sink.of_kind("parameter_change")[0]
    assert change["before"]["kp"] == 0.3 and change["after"]["kp"] == 0.2
    trace = loop.run(SurrogateIntent(duration_s=5.0), duration_s=5.0, seed=0)
    assert sink.kinds()[:3] == ["consent", "parameter_change", "run_start"]
    assert sink.kinds()[-1] == "run_end"
    assert len(sink.of_kind("clamp")) == int(trace.clamped.sum()) > 0
    with pytest.raises(NeuroError, match="unknown parameter 'gain'"):
        loop.set_params(gain=1.0)


def test_closed_loop_beats_open_loop_on_the_fes_muscle() -> None:
    plant = FESMuscle()
    fixed_ma = plant.amplitude_for_force(plant.target_force_n, 200.0, 40.0)
    open_m = _m(_fes_loop(FixedStimulation(fixed_ma)), seed=11)
    closed_m = _m(_fes_loop(PID(kp=0.05, ki=0.5)), seed=11)
    assert closed_m > open_m + 1.0, (open_m, closed_m)


def test_tuned_gains_beat_untuned_on_held_out_seeds() -> None:
    sink = InMemoryAuditSink()
    loop = _fes_loop(PID(), sink)
    untuned = [_m(loop, seed) for seed in (21, 22)]
    result = tune_gains(loop, lambda: SurrogateIntent(duration_s=DURATION_S),
                        duration_s=DURATION_S, seeds=(0,), max_evaluations=30)  # fmt: skip
    assert result.tuned_objective > result.initial_objective
    tuned = [_m(loop, seed) for seed in (21, 22)]
    assert min(t - u for t, u in zip(tuned, untuned, strict=True)) > 0.5, (untuned, tuned)
    assert sink.of_kind("tuning")[0]["evaluations"] == result.n_evaluations
    assert sink.of_kind("parameter_change")[-1]["after"] == result.tuned_gains


def test_adaptive_dbs_suppresses_beta_with_less_charge_than_continuous() -> None:
    def run(controller: object) -> tuple[float, float, float]:
        loop = ClosedLoop(
            AdaptiveDBS(), controller, ENVELOPE, consent=CONSENT,  # type: ignore[arg-type]
            sink=InMemoryAuditSink(), pulse_width_us=60.0, frequency_hz=130.0,
        )  # fmt: skip
        trace = loop.run(SurrogateIntent(duration_s=DURATION_S), duration_s=DURATION_S, seed=4)
        return trace.measurement.mean(), trace.delivered_charge_uc, trace.objective

    none = run(FixedStimulation(0.0))
    continuous = run(FixedStimulation(3.0))
    adaptive = run(BetaThreshold(threshold=0.6, amplitude_ma=3.0))
    assert adaptive[0] < 0.8 * none[0], "adaptive stimulation lowers mean beta"
    assert adaptive[1] < 0.8 * continuous[1], "with clearly less charge than continuous DBS"
    assert adaptive[2] > none[2]
