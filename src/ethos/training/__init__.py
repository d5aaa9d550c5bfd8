"""Training: the one loop (Accelerate), batching, baselines, and the `train` entry point."""

from ethos.training.loop import LoopResult, predict_proba, train_loop
from ethos.training.run import train

__all__ = ["LoopResult", "predict_proba", "train", "train_loop"]
