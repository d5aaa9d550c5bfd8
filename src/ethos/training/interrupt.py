"""Ctrl-C during training: stop at a consistent point, leave a checkpoint, say how to resume.

A KeyboardInterrupt raised wherever Python happens to be can land between ``optimizer.step()``
and ``scheduler.step()``, or between two tensors of a checkpoint being written, and a run stopped
there cannot be continued to the weights an uninterrupted run reaches. So while the loop runs
with a checkpoint folder, the first SIGINT only raises a flag: the loop finishes the optimizer
step it is in, writes a checkpoint of exactly that point, and raises :class:`Interrupted`. A
second SIGINT raises KeyboardInterrupt at once, for a user who cannot wait; the newest complete
checkpoint is still whole (checkpoints are written to a temporary folder and renamed).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any


class Interrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C; ``run_dir`` resumes from ``checkpoint`` (None: start).

    A KeyboardInterrupt, so code that does not know this class still stops as it expects.
    """

    def __init__(self, checkpoint: Path | None, run_dir: Path | None = None) -> None:
        super().__init__(f"training interrupted; checkpoint: {checkpoint}")
        self.checkpoint = checkpoint
        self.run_dir = run_dir


class StopRequest:
    """Defers the first SIGINT to the loop's next consistent point (see the module docstring).

    Installed only in the main thread and only over Python's default handler, so a host
    application's own SIGINT handling is left alone; inactive, it changes nothing.
    """

    def __init__(self, *, active: bool, quiet: bool) -> None:
        self.active = active
        self.quiet = quiet
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopRequest:
        if (
            self.active
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if not self.quiet:
            print(
                "\nstopping after this step to write a checkpoint (Ctrl-C again to stop now)",
                file=sys.stderr,
                flush=True,
            )
