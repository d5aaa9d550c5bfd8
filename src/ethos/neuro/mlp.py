"""A small PyTorch multilayer perceptron wrapped as a scikit-learn classifier.

The network is the signal-processing stage that maps band-power features to class
probabilities: two hidden layers with ReLU and dropout, trained full-batch with Adam on the
cross-entropy loss. Full batch because motor-imagery sessions have tens to hundreds of trials,
so one step sees them all and training is deterministic given the seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ethos.neuro.errors import NeuroError


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """Feature-vector classifier: ``fit`` builds and trains the net, ``predict_proba`` runs it."""

    def __init__(
        self,
        hidden_units: int = 32,
        n_steps: int = 200,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-3,
        dropout: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.hidden_units = hidden_units
        self.n_steps = n_steps
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.seed = seed

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:
        """Train from scratch on features X (n, d) and labels y."""
        x = np.asarray(X, dtype=np.float32)
        if x.ndim != 2 or not np.isfinite(x).all():
            raise NeuroError("TorchMLPClassifier.fit: features must be a finite 2-D array")
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise NeuroError("TorchMLPClassifier.fit: need at least two classes in y")
        targets = torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.network_ = nn.Sequential(
            nn.Linear(x.shape[1], self.hidden_units),
            nn.ReLU(),
            nn.Dropout(self.dropout),
            nn.Linear(self.hidden_units, self.hidden_units),
            nn.ReLU(),
            nn.Linear(self.hidden_units, len(self.classes_)),
        )
        for layer in self.network_:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, generator=generator, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        optimiser = torch.optim.Adam(
            self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        inputs = torch.as_tensor(x)
        loss_fn = nn.CrossEntropyLoss()
        self.network_.train()
        # A network this small runs fastest on one thread; more only adds contention.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(self.n_steps):
                optimiser.zero_grad()
                loss = loss_fn(self.network_(inputs), targets)
                loss.backward()
                optimiser.step()
        finally:
            torch.set_num_threads(threads)
        self.network_.eval()
        self.n_features_in_ = x.shape[1]
        return self

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "network_")
        with torch.no_grad():
            logits = self.network_(torch.as_tensor(np.asarray(X, dtype=np.float32)))
            return np.asarray(torch.softmax(logits, dim=1).numpy(), dtype=np.float64)

    def predict(self, X: Any) -> NDArray[Any]:
        """Most probable class."""
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])
