"""Neural interface: simulate or load motor-imagery EEG, decode intent, stimulate safely.

The flow is ``simulate_motor_imagery`` / ``read_recording`` → :class:`MotorImageryData` →
a decoder from :data:`DECODERS` → :func:`evaluate_decoder` / :class:`StreamingDecoder` →
:class:`ClosedLoop` (controller → :class:`SafetyEnvelope` via the gate → plant), with every
consent, parameter change, clamp and fault appended to an :class:`AuditSink`: the project's
tamper-evident ledger through :class:`LedgerAuditSink`, or memory for simulations and tests.
"""

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
