"""Neural interface: simulate or load motor-imagery EEG, decode intent, stimulate safely.

The flow is ``simulate_motor_imagery`` / ``read_recording`` → :class:`MotorImageryData` →
a decoder from :data:`DECODERS` → :func:`evaluate_decoder` / :class:`StreamingDecoder` →
:class:`ClosedLoop` (controller → :class:`SafetyEnvelope` via the gate → plant), with every
consent, parameter change, clamp and fault appended to an :class:`AuditSink`: the project's
tamper-evident ledger through :class:`LedgerAuditSink`, or memory for simulations and tests.

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.neuro.audit import AuditSink, ConsentRecord, FanOutSink, InMemoryAuditSink
    from ethos.neuro.controllers import PID, BetaThreshold, Controller, FixedStimulation
    from ethos.neuro.data import CLASS_CODES, CLASSES, MotorImageryData
    from ethos.neuro.decoders import DECODERS, Decoder, make_decoder
    from ethos.neuro.errors import NeuroError
    from ethos.neuro.evaluation import DecodingResult, evaluate_decoder
    from ethos.neuro.faults import SensorFaultDetector, SensorStatus
    from ethos.neuro.gate import BiphasicTrain, StimulationGate
    from ethos.neuro.intent import EEGIntent, IntentSource, SurrogateIntent
    from ethos.neuro.ledger_sink import LedgerAuditSink
    from ethos.neuro.loop import ClosedLoop, FaultInjection, LoopTrace, ObjectiveWeights
    from ethos.neuro.plants import AdaptiveDBS, FESMuscle, Plant
    from ethos.neuro.recordings import epochs_from_raw, read_recording
    from ethos.neuro.safety import (
        SafetyCheck,
        SafetyEnvelope,
        StimCommand,
        charge_per_phase_uc,
        cylinder_area_cm2,
        shannon_k,
    )
    from ethos.neuro.simulate import (
        MOTOR_CHANNELS,
        SimulationConfig,
        simulate_motor_imagery,
        simulate_raw,
    )
    from ethos.neuro.streaming import StreamingDecoder, crop_windows
    from ethos.neuro.tuning import TuningResult, tune_gains

_EXPORTS = {
    "AuditSink": "ethos.neuro.audit",
    "ConsentRecord": "ethos.neuro.audit",
    "FanOutSink": "ethos.neuro.audit",
    "InMemoryAuditSink": "ethos.neuro.audit",
    "PID": "ethos.neuro.controllers",
    "BetaThreshold": "ethos.neuro.controllers",
    "Controller": "ethos.neuro.controllers",
    "FixedStimulation": "ethos.neuro.controllers",
    "CLASS_CODES": "ethos.neuro.data",
    "CLASSES": "ethos.neuro.data",
    "MotorImageryData": "ethos.neuro.data",
    "DECODERS": "ethos.neuro.decoders",
    "Decoder": "ethos.neuro.decoders",
    "make_decoder": "ethos.neuro.decoders",
    "NeuroError": "ethos.neuro.errors",
    "DecodingResult": "ethos.neuro.evaluation",
    "evaluate_decoder": "ethos.neuro.evaluation",
    "SensorFaultDetector": "ethos.neuro.faults",
    "SensorStatus": "ethos.neuro.faults",
    "BiphasicTrain": "ethos.neuro.gate",
    "StimulationGate": "ethos.neuro.gate",
    "EEGIntent": "ethos.neuro.intent",
    "IntentSource": "ethos.neuro.intent",
    "SurrogateIntent": "ethos.neuro.intent",
    "LedgerAuditSink": "ethos.neuro.ledger_sink",
    "ClosedLoop": "ethos.neuro.loop",
    "FaultInjection": "ethos.neuro.loop",
    "LoopTrace": "ethos.neuro.loop",
    "ObjectiveWeights": "ethos.neuro.loop",
    "AdaptiveDBS": "ethos.neuro.plants",
    "FESMuscle": "ethos.neuro.plants",
    "Plant": "ethos.neuro.plants",
    "epochs_from_raw": "ethos.neuro.recordings",
    "read_recording": "ethos.neuro.recordings",
    "SafetyCheck": "ethos.neuro.safety",
    "SafetyEnvelope": "ethos.neuro.safety",
    "StimCommand": "ethos.neuro.safety",
    "charge_per_phase_uc": "ethos.neuro.safety",
    "cylinder_area_cm2": "ethos.neuro.safety",
    "shannon_k": "ethos.neuro.safety",
    "MOTOR_CHANNELS": "ethos.neuro.simulate",
    "SimulationConfig": "ethos.neuro.simulate",
    "simulate_motor_imagery": "ethos.neuro.simulate",
    "simulate_raw": "ethos.neuro.simulate",
    "StreamingDecoder": "ethos.neuro.streaming",
    "crop_windows": "ethos.neuro.streaming",
    "TuningResult": "ethos.neuro.tuning",
    "tune_gains": "ethos.neuro.tuning",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "CLASSES",
    "CLASS_CODES",
    "DECODERS",
    "MOTOR_CHANNELS",
    "PID",
    "AdaptiveDBS",
    "AuditSink",
    "BetaThreshold",
    "BiphasicTrain",
    "ClosedLoop",
    "ConsentRecord",
    "Controller",
    "Decoder",
    "DecodingResult",
    "EEGIntent",
    "FESMuscle",
    "FanOutSink",
    "FaultInjection",
    "FixedStimulation",
    "InMemoryAuditSink",
    "IntentSource",
    "LedgerAuditSink",
    "LoopTrace",
    "MotorImageryData",
    "NeuroError",
    "ObjectiveWeights",
    "Plant",
    "SafetyCheck",
    "SafetyEnvelope",
    "SensorFaultDetector",
    "SensorStatus",
    "SimulationConfig",
    "StimCommand",
    "StimulationGate",
    "StreamingDecoder",
    "SurrogateIntent",
    "TuningResult",
    "charge_per_phase_uc",
    "crop_windows",
    "cylinder_area_cm2",
    "epochs_from_raw",
    "evaluate_decoder",
    "make_decoder",
    "read_recording",
    "shannon_k",
    "simulate_motor_imagery",
    "simulate_raw",
    "tune_gains",
]
