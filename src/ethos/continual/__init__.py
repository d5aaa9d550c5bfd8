"""The governed loop after deployment: a child retrained from its parent on labelled feedback.

``ethos retrain PARENT --feedback FILE|DB`` (:func:`retrain`): the feedback (a file in the
parent's schema, or `ethos serve`'s store with kept inputs), a replay sample of the parent's
training rows, the parent's weights as the start, and the same governed pipeline as every run,
with the child linked to its parent in the manifest and the ledger and compared with it by
`ethos diff`. Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.continual.child_data import ChildRows, child_data_config, child_rows
    from ethos.continual.feedback import Feedback, load_feedback
    from ethos.continual.retrain import retrain

_EXPORTS = {
    "ChildRows": "ethos.continual.child_data",
    "child_data_config": "ethos.continual.child_data",
    "child_rows": "ethos.continual.child_data",
    "Feedback": "ethos.continual.feedback",
    "load_feedback": "ethos.continual.feedback",
    "retrain": "ethos.continual.retrain",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "ChildRows",
    "Feedback",
    "child_data_config",
    "child_rows",
    "load_feedback",
    "retrain",
]
