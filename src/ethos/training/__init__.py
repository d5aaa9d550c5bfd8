"""Training: the one loop (Accelerate), batching, baselines, and the `train` entry point.

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.training.loop import LoopResult, train_loop
    from ethos.training.run import train

_EXPORTS = {
    "LoopResult": "ethos.training.loop",
    "train_loop": "ethos.training.loop",
    "train": "ethos.training.run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["LoopResult", "train", "train_loop"]
