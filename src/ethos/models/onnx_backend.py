"""A run's classifier on ONNX Runtime: exported once, cached in the run, verified on every load.

PyTorch eager is not the fastest way to run a small encoder on a CPU: ONNX Runtime fuses the
graph (LayerNorm, GELU, bias adds) and its dynamic int8 MatMul kernels use VNNI where the CPU has
it, which PyTorch's own dynamic quantisation barely did (1.03x on MiniLM). :class:`OnnxRunModel`
is the run model's forward pass (:meth:`ethos.models.inference.RunModel.forward`) on an ONNX
Runtime session: the same encoding (the run model's tokenizer, truncation and padding), the same
outputs (class probabilities, and the mean of the last hidden states over real tokens for the
drift monitor, from the same pass), the same signature. Everything else (records to text, the
decision rule, explanations) stays with the run model.

Export: ``torch.onnx.export(dynamo=True)``, not optimum-onnx. The graph must output the pooled
embedding beside the logits; with torch.onnx that is a ten-line wrapper module, while optimum
would need a custom ``OnnxConfig`` and a model patcher for an output its task presets do not
know. The dynamo exporter is torch's maintained one (the TorchScript exporter warns that it is
deprecated) and captures the model soundly: Python control flow that depends on the data (an
attention-mask shortcut, say) is refused rather than silently frozen into the trace as it was at
the example input. It runs offline and downloads nothing: it needs ``onnx`` and ``onnxscript``
(pure Python, beside ``onnxruntime`` in ethos's ``serving`` extra) and the run's own weights.
Batch and sequence axes are dynamic; models whose tokenizer gives ``token_type_ids`` (BERT,
MiniLM) take them as a third input, so text pairs work.

Int8: ``onnxruntime.quantization.quantize_dynamic`` (weights int8 per output channel, activations
quantised per batch at run time). Per-channel scales keep each output row's own range, which
matters for the few rows with large weights; ``reduce_range`` (7-bit weights) is used only on x86
CPUs without VNNI, where the u8 x s8 instruction can saturate.

Cache: ``<run>/exports/onnx/`` (:attr:`ethos.rundir.RunDir.exports_dir`) holds
``model.float32.onnx``, ``model.int8.onnx`` and ``export.json``, written last and atomically,
with each file's sha256 and what it was made from (the manifest's ``weights_sha256``, the
exporter, opset and quantisation settings). The manifest is not touched: it is the training
record that the ledger and the card bind to, written once when the run finished, while this
folder is a cache that can be deleted at any time (the next start exports again); and several
``--workers`` starting at once would race on a read-modify-write of one shared file. Every load
hashes the file it is about to run (the bytes hashed are the bytes handed to ONNX Runtime). A
file whose hash differs from the record, or an export recorded for other weights, is refused with
the folder to delete: within one run directory the weights never change legitimately (retraining
makes a new run), so a mismatch means damage or a copy from another run, which someone should
look at rather than have silently replaced. An export in an older layout (``format``) or made
with quantisation settings this machine would not choose is rebuilt, and the log says so.

Threads: one session per process, ``intra_op_num_threads`` = usable cores / server processes (at
least 1), inter-op 1 (a BERT graph is one chain of operators): ``--workers N`` processes then
share the cores instead of each spinning up a thread per core.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import platform
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ethos.errors import ModelError
from ethos.hashing import file_sha256
from ethos.models.encoding import collate
from ethos.rundir import RunDir, atomic_write_text

if TYPE_CHECKING:
    from ethos.models.inference import RunModel

log = logging.getLogger("ethos.models.onnx")

Precision = Literal["float32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("float32", "int8")
EXPORT_FORMAT = 1
"""The layout of ``export.json`` and the graph's inputs and outputs; a cache in another format is
rebuilt."""
ONNX_SUBDIR = "onnx"
DOCUMENT = "export.json"
LOCK = ".lock"
FILES: dict[Precision, str] = {"float32": "model.float32.onnx", "int8": "model.int8.onnx"}
OUTPUTS = ("logits", "pooled")
QUANTIZED_OPS = frozenset({"MatMulInteger", "DynamicQuantizeMatMul", "QAttention"})


class OnnxExportError(ModelError):
    """A cached ONNX export that must not be used (damaged, or made for other weights)."""


# --- the cache -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnnxFile:
    """One verified file of the cache and its record in ``export.json``."""

    precision: Precision
    path: Path
    sha256: str
    content: bytes
    record: dict[str, Any]
    """This file's entry: sha256, source, settings, quantised MatMuls."""
    document: dict[str, Any]
    """The whole ``export.json``: format, run id, weights, exporter, opset, input names."""


def onnx_dir(run: RunDir) -> Path:
    """Where a run's ONNX files are cached: ``exports/onnx/`` inside the run directory."""
    return run.exports_dir / ONNX_SUBDIR


def cached_onnx(scorer: RunModel, precision: Precision, *, per_channel: bool = True) -> OnnxFile:
    """The run's ONNX graph at ``precision``: exported (and quantised) on first use, reused and
    verified after that. Raises :class:`OnnxExportError` for a damaged or foreign cache."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown ONNX precision {precision!r}", hint="use float32 or int8")
    directory = onnx_dir(scorer.run)
    with _locked(directory):  # one process exports; the others wait and reuse its files
        document = _current_document(directory, scorer.run)
        if document is None or not _usable(document, "float32"):
            document = _export_float32(scorer, directory)
        if precision == "int8":
            settings = int8_settings(per_channel=per_channel)
            if not _usable(document, "int8", settings):
                document = _quantize(scorer.run, directory, document, settings)
        return _verified(directory, document, precision)


def _current_document(directory: Path, run: RunDir) -> dict[str, Any] | None:
    """``export.json`` if it belongs to this run's weights and layout; None when there is none or
    it is an older layout (rebuilt); refused when it was made for other weights."""
    path = directory / DOCUMENT
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        document = exc
    if not isinstance(document, dict):
        raise OnnxExportError(
            f"{path} is not an ONNX export record ({document})",
            hint=f"delete {directory} (the next start exports the model again)",
        )
    if document.get("format") != EXPORT_FORMAT:
        log.warning("%s is in an older layout; exporting the model again", path)
        return None
    expected = _weights(run)
    if document.get("weights_sha256") != expected:
        raise OnnxExportError(
            f"the ONNX export in {directory} was made for other weights (weights_sha256 "
            f"{str(document.get('weights_sha256'))[:12]}, run {document.get('run_id')}) than "
            f"this run's ({str(expected)[:12]}, run {run.manifest.get('run_id')})",
            hint=f"delete {directory} (the next start exports this run's model)",
        )
    return document


def _usable(
    document: dict[str, Any] | None, precision: Precision, settings: dict[str, Any] | None = None
) -> bool:
    """Whether ``document`` records a file of ``precision`` (made with ``settings``)."""
    record = ((document or {}).get("files") or {}).get(precision)
    if not isinstance(record, dict):
        return False
    if settings is not None and record.get("settings") != settings:
        log.warning(
            "the cached int8 ONNX file was quantised with %s; this machine uses %s: quantising "
            "again",
            record.get("settings"),
            settings,
        )
        return False
    return True


def _verified(directory: Path, document: dict[str, Any], precision: Precision) -> OnnxFile:
    """The recorded file of ``precision``, its bytes hashed against the record."""
    record = document["files"][precision]
    path = directory / str(record.get("file"))
    hint = f"delete {directory} (the next start exports the model again)"
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise OnnxExportError(
            f"the cached ONNX file {path} recorded in {DOCUMENT} cannot be read: {exc}", hint=hint
        ) from None
    digest = _sha256(content)
    if digest != record.get("sha256"):
        raise OnnxExportError(
            f"the cached ONNX file {path} is not the one exported (sha256 {digest[:12]}, "
            f"recorded {str(record.get('sha256'))[:12]}): it was damaged or replaced",
            hint=hint,
        )
    return OnnxFile(precision, path, digest, content, record, document)


def _export_float32(scorer: RunModel, directory: Path) -> dict[str, Any]:
    """Export the float32 graph and start a new record (an older int8 file is dropped with it)."""
    target = directory / FILES["float32"]
    started = time.perf_counter()
    details = export_onnx(scorer, target)
    log.info("exported %s in %.1f s", target, time.perf_counter() - started)
    document = {
        "format": EXPORT_FORMAT,
        "run_id": scorer.run.manifest.get("run_id"),
        "weights_sha256": _weights(scorer.run),
        "lora_merged": scorer.merged_lora,
        **details,
        "files": {
            "float32": {
                "file": target.name,
                "sha256": file_sha256(target),
                "bytes": target.stat().st_size,
                "exported_utc": _now(),
            }
        },
    }
    _write_document(directory, document)
    return document


def _quantize(
    run: RunDir, directory: Path, document: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """Quantise the verified float32 file to int8 and record it."""
    source = _verified(directory, document, "float32")
    target = directory / FILES["int8"]
    started = time.perf_counter()
    quantized_ops = quantize_onnx(source.path, target, settings)
    log.info("quantised %s to int8 in %.1f s", target, time.perf_counter() - started)
    files = dict(document["files"])
    files["int8"] = {
        "file": target.name,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "source_sha256": source.sha256,
        "settings": settings,
        "quantized_matmuls": quantized_ops,
        "onnxruntime": _version("onnxruntime"),
        "exported_utc": _now(),
    }
    updated = {**document, "files": files}
    _write_document(directory, updated)
    return updated


def _write_document(directory: Path, document: dict[str, Any]) -> None:
    atomic_write_text(
        directory / DOCUMENT, json.dumps(document, indent=2, allow_nan=False, default=str) + "\n"
    )


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the cache folder (advisory, released when the process dies)."""
    import fcntl

    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / LOCK).open("a")
    except OSError as exc:
        raise ModelError(
            f"cannot write the ONNX export cache {directory}: {exc}",
            hint="make the run directory writable, or serve with --backend torch",
        ) from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- export and quantisation ---------------------------------------------------------------------


def _graph_module(model: Any) -> Any:
    """``model`` wrapped to return (logits, mean of the last hidden states over real tokens)."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=True,
                **extra,
            )
            last = out.hidden_states[-1]
            mask = attention_mask.unsqueeze(-1).to(last.dtype)
            pooled = (last * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return out.logits.float(), pooled.float()

    return Graph(model)


def example_batch(scorer: RunModel) -> dict[str, Any]:
    """Two inputs of different lengths (pairs for a pair run), padded as the run model pads."""
    texts = ["an example input", "a second, somewhat longer example input for the export"]
    pairs = ["a second text", "and another"] if scorer.text_pairs else None
    encoded = scorer.encode(texts, pairs)
    batch = collate(encoded, np.arange(len(encoded)), scorer.pad_id)
    batch.pop("labels")
    return batch


def export_onnx(scorer: RunModel, target: Path) -> dict[str, Any]:
    """Export the run model's float module to ``target`` (atomically); returns what was used.

    The module is exported in eval mode and left in eval mode (the exporter restores the mode it
    found, and a module left in training mode would serve with dropout on).
    """
    import torch

    if scorer.adapter and not scorer.merged_lora:
        raise ModelError(
            "an unmerged LoRA model cannot be exported to ONNX",
            hint="load the run with RunModel.from_dir(run, merge_lora=True)",
        )
    module = _graph_module(scorer.model).eval()
    batch = example_batch(scorer)
    batch_dim, sequence_dim = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {name: {0: batch_dim, 1: sequence_dim} for name in batch}
    staged = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with _quiet():
            program = torch.onnx.export(
                module,
                (),
                kwargs=dict(batch),
                dynamo=True,
                external_data=False,
                dynamic_shapes=dynamic,
                output_names=list(OUTPUTS),
                verbose=False,
            )
            assert program is not None
            program.save(str(staged), external_data=False)
        os.replace(staged, target)
    except ModelError:
        raise
    except Exception as exc:  # the exporter raises many types; the model is what to name
        raise ModelError(
            f"{scorer.config.model.name} could not be exported to ONNX: {exc}",
            hint="serve with --backend torch",
        ) from None
    finally:
        staged.unlink(missing_ok=True)
        scorer.model.eval()
    return {
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "opset": _opset(target),
        "inputs": list(batch),
        "outputs": list(OUTPUTS),
    }


def int8_settings(*, per_channel: bool = True) -> dict[str, Any]:
    """The dynamic quantisation settings for this machine (recorded with the int8 file)."""
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": per_channel,
        "reduce_range": _needs_reduce_range(),
    }


def quantize_onnx(source: Path, target: Path, settings: dict[str, Any]) -> int:
    """Dynamic int8 quantisation of ``source``'s MatMul weights into ``target`` (atomically);
    returns how many MatMuls became integer ones."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staged = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with _quiet():
            quantize_dynamic(
                str(source),
                str(staged),
                weight_type=QuantType.QInt8,
                per_channel=bool(settings["per_channel"]),
                reduce_range=bool(settings["reduce_range"]),
            )
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return count_quantized_matmuls(target)


def count_quantized_matmuls(path: Path) -> int:
    """Integer MatMul nodes in the graph at ``path`` (0 for a float graph)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sum(node.op_type in QUANTIZED_OPS for node in graph.node)


def _needs_reduce_range() -> bool:
    """7-bit weights on x86 without VNNI (u8 x s8 multiply-adds can saturate there)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False  # not Linux: ONNX Runtime's default
    return "vnni" not in flags


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter and quantiser print progress and advice to stdout and the root logger."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


# --- the session ---------------------------------------------------------------------------------


def default_threads(workers: int = 1) -> int:
    """Intra-op threads per process: the cores this process may use, shared by the workers."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def open_session(content: bytes, *, threads: int) -> Any:
    """An ONNX Runtime CPU session over the verified bytes, graph optimisation on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ONNX Runtime's warnings are not the user's
    # No spinning: idle pool threads busy-wait for the next operator by default, which on a
    # server whose cores also mask, log and answer HTTP takes the cores from that work. Measured
    # on 2 cores with one busy: 2 threads spinning 7.2 ms a record (9.2 ms of CPU), not
    # spinning 4.6 ms (6.4 ms of CPU); quiet, the two are within 4 %.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types (InvalidGraph, Fail...)
        raise OnnxExportError(
            f"ONNX Runtime cannot load the exported graph: {exc}",
            hint="delete the run's exports/onnx folder (the next start exports it again)",
        ) from None


class OnnxRunModel:
    """A run's classifier on an ONNX Runtime session, scoring as :meth:`RunModel.forward`.

    Build it with :meth:`load`. ``scorer`` supplies the encoding (tokenizer, truncation,
    padding) so that a text becomes the same token ids on either engine.
    """

    def __init__(self, scorer: RunModel, file: OnnxFile, session: Any, threads: int) -> None:
        self.scorer = scorer
        self.file = file
        self.session = session
        self.threads = threads
        self.precision: Precision = file.precision
        self.input_names: tuple[str, ...] = tuple(i.name for i in session.get_inputs())
        self.output_names: tuple[str, ...] = tuple(o.name for o in session.get_outputs())
        expected = tuple(example_batch(scorer))
        if set(self.input_names) != set(expected) or self.output_names != OUTPUTS:
            raise OnnxExportError(
                f"the ONNX graph {file.path} takes {list(self.input_names)} and gives "
                f"{list(self.output_names)}; this run's model takes {list(expected)} and must "
                f"give {list(OUTPUTS)}",
                hint=f"delete {file.path.parent} (the next start exports it again)",
            )

    @classmethod
    def load(
        cls,
        scorer: RunModel,
        precision: Precision = "float32",
        *,
        threads: int | None = None,
        per_channel: bool = True,
    ) -> OnnxRunModel:
        """The run's cached graph at ``precision`` (exported on first use) in a session with
        ``threads`` intra-op threads (default: every usable core)."""
        if scorer.task != "classification":
            raise ModelError(f"{scorer.run.path} is a {scorer.task} run; ONNX serves classifiers")
        file = cached_onnx(scorer, precision, per_channel=per_channel)
        count = threads or default_threads()
        return cls(scorer, file, open_session(file.content, threads=count), count)

    @property
    def quantized_matmuls(self) -> int:
        return int(self.file.record.get("quantized_matmuls", 0))

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` and the run's records say about the graph (no paths)."""
        document = self.file.document
        return {
            "format": "onnx",
            "precision": self.precision,
            "sha256": self.file.sha256,
            "opset": document.get("opset"),
            "exporter": document.get("exporter"),
            "inputs": list(self.input_names),
            "quantization": self.file.record.get("settings"),
            "quantized_matmuls": self.quantized_matmuls,
            "onnxruntime": _version("onnxruntime"),
            "intra_op_threads": self.threads,
        }

    def forward(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, *, embed: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One padded forward pass over ``texts``: probabilities (n, K) float64 and, with
        ``embed``, the mean of the last hidden states over real tokens (float32, (n, hidden)),
        as :meth:`RunModel.forward` gives them."""
        scorer = self.scorer
        if len(texts) == 0:
            pooled = np.zeros((0, scorer.embedding_dim), dtype=np.float32) if embed else None
            return np.zeros((0, len(scorer.label_names))), pooled
        encoded = scorer.encode(texts, pairs)
        batch = collate(encoded, np.arange(len(encoded)), scorer.pad_id)
        feeds = {name: batch[name].numpy() for name in self.input_names}
        wanted = list(OUTPUTS) if embed else [OUTPUTS[0]]
        outputs = self.session.run(wanted, feeds)
        probabilities = softmax(np.asarray(outputs[0], dtype=np.float32))
        pooled = np.asarray(outputs[1], dtype=np.float32) if embed else None
        return probabilities.astype(np.float64), pooled

    def __repr__(self) -> str:
        return (
            f"<OnnxRunModel {self.scorer.run.path.name}: {self.precision}, "
            f"{self.threads} threads, sha256 {self.file.sha256[:12]}>"
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in the logits' dtype (float32, as torch computes the served one)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# --- helpers -------------------------------------------------------------------------------------


def _weights(run: RunDir) -> str | None:
    value = (run.manifest.get("model") or {}).get("weights_sha256")
    return None if value is None else str(value)


def _sha256(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
