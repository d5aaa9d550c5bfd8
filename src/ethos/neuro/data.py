"""The one data object every neuro stage passes on: epochs of motor imagery with their labels.

It wraps an :class:`mne.Epochs` (which keeps channel names, montage, sampling rate, events and
filter history) and adds what decoding needs: integer labels in a fixed class order, the subject,
and where the data came from. Signals are in volts, as everywhere in MNE.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import mne
import numpy as np
from numpy.typing import NDArray

CLASSES = ("left_hand", "right_hand", "feet", "rest")
"""The motor-imagery classes ethos knows, in the label order of BCI Competition IV 2a."""
CLASS_CODES = {name: code for code, name in enumerate(CLASSES, start=1)}
"""Default event code of each class in a stim channel: left_hand=1, right_hand=2, feet=3, rest=4."""


@dataclass
class MotorImageryData:
    """Band-passed epochs of one subject with class labels.

    ``y`` indexes ``class_names``; ``class_names`` is ordered by event code, so labels are stable
    across subjects and files.
    """

    epochs: mne.BaseEpochs
    subject: str
    source: str

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names ordered by their event code."""
        return tuple(name for name, _ in sorted(self.epochs.event_id.items(), key=lambda i: i[1]))

    @property
    def X(self) -> NDArray[np.float64]:
        """Signals, shape (n_epochs, n_channels, n_times), in volts."""
        return np.asarray(self.epochs.get_data(copy=True), dtype=np.float64)

    @property
    def y(self) -> NDArray[np.int64]:
        """Integer labels indexing :attr:`class_names`."""
        code_to_label = {
            code: self.class_names.index(name) for name, code in self.epochs.event_id.items()
        }
        return np.array([code_to_label[c] for c in self.epochs.events[:, 2]], dtype=np.int64)

    @property
    def sfreq_hz(self) -> float:
        """Sampling rate in Hz."""
        return float(self.epochs.info["sfreq"])

    @property
    def ch_names(self) -> list[str]:
        """Channel names, in the order of the second axis of :attr:`X`."""
        return list(self.epochs.ch_names)

    @property
    def info(self) -> mne.Info:
        """MNE measurement info (montage included), e.g. for topomaps."""
        return self.epochs.info

    def __len__(self) -> int:
        return len(self.epochs)

    def __repr__(self) -> str:
        counts = Counter(self.y.tolist())
        classes = ", ".join(f"{name}:{counts.get(i, 0)}" for i, name in enumerate(self.class_names))
        n_times = len(self.epochs.times)
        return (
            f"<MotorImageryData {self.subject} | {len(self)} epochs x {len(self.ch_names)} ch x "
            f"{n_times} samples @ {self.sfreq_hz:g} Hz | {classes} | {self.source}>"
        )
