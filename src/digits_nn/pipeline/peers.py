"""The scikit-learn peers our network is measured against, on exactly its rows.

Each peer (``peer=<name>``, one of :data:`digits_nn.config.PEERS`) is a scikit-learn
estimator and the pixels it is given. A peer takes the run's split, the same training
and test rows as our network, and never sees a test row while it is fitted: either the
run's own scaled pixels (the same scaling as ours, fitted on the rows
``data.scaler_rows`` names), or the raw pixels divided by 16, a fixed map that nothing is
fitted for, where that suits the estimator better (an RBF kernel and nearest neighbours
measure distances between whole images, which per-pixel standardisation distorts by
blowing up the nearly blank border pixels). Every hyperparameter is scikit-learn's
default but the SVC's ``C=10`` and the logistic regression's iteration limit: none is
chosen on test rows. With validation rows
(``train.validation_size``), a peer is fitted on the rows our network is fitted on and
scored on the same validation rows.

    PEERS_BY_NAME["svc"].estimator(seed)            # the unfitted estimator
    fit_peer("svc", data, seed, validation_size)    # fitted on a run's rows
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digits_nn.data.digits import PIXEL_MAX
from digits_nn.data.steps import Scaled, raw_pixels, validation_rows
from digits_nn.pipeline.prepared import PreparedData

#: What a peer is given: the run's standardised pixels, or the raw pixels / 16.
INPUTS = ("standardised", "pixels/16")


@dataclass(frozen=True)
class Peer:
    """A scikit-learn estimator, how to make it, and the pixels it takes."""

    name: str
    label: str  # the estimator as scikit-learn writes it, for the dashboard
    inputs: str  # one of INPUTS
    make: Callable[[int], Any]  # seed -> the unfitted estimator
    params: dict[str, Any] = field(default_factory=dict)  # what the run logs as params

    def estimator(self, seed: int) -> Any:
        return self.make(seed)

    def features(self, X_scaled: np.ndarray, scaled: Scaled) -> np.ndarray:
        """The pixels this peer takes, from the run's scaled rows."""
        if self.inputs == "standardised":
            return X_scaled
        return raw_pixels(X_scaled, scaled) / PIXEL_MAX


def _svc(seed: int) -> Any:
    from sklearn.svm import SVC

    return SVC(C=10.0, kernel="rbf", gamma="scale")


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(random_state=seed)


def _logistic(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000)


def _knn(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier()


PEERS_BY_NAME: dict[str, Peer] = {
    peer.name: peer
    for peer in [
        Peer("svc", "SVC(C=10, kernel='rbf', gamma='scale')", "pixels/16", _svc, {"C": 10.0}),
        Peer("mlp", "MLPClassifier() (adam, relu, 100 hidden)", "standardised", _mlp),
        Peer("logistic", "LogisticRegression(max_iter=5000)", "standardised", _logistic),
        Peer("knn", "KNeighborsClassifier() (5 neighbours)", "pixels/16", _knn),
    ]
}


def params(name: str) -> dict[str, Any]:
    """What a peer's run logs about the peer: its estimator, its inputs and its own
    hyperparameters."""
    peer = PEERS_BY_NAME[name]
    own = {f"peer.{key}": value for key, value in peer.params.items()}
    return {"peer.estimator": peer.label, "peer.inputs": peer.inputs, **own}


def tags(name: str) -> dict[str, str]:
    """The tags that mark a peer's run as a baseline in the dashboard."""
    return {"baseline": "true", "peer": name}


@dataclass(frozen=True)
class FittedPeer:
    """A peer fitted on a run's training rows, and its predictions on the run's rows."""

    peer: Peer
    estimator: Any
    train_predictions: np.ndarray  # on the rows it was fitted on
    test_predictions: np.ndarray
    validation_accuracy: float | None


def fit_peer(name: str, data: PreparedData, seed: int, validation_size: float) -> FittedPeer:
    """Fit peer ``name`` on the run's training rows (without the validation rows our
    network holds out of them, if any) and predict the run's rows."""
    from threadpoolctl import threadpool_limits

    peer = PEERS_BY_NAME[name]
    split = data.split
    X_train = peer.features(split.X_train, data.scaled)
    X_test = peer.features(split.X_test, data.scaled)
    fitted, held = np.arange(len(split.y_train)), None
    if validation_size > 0.0:
        fitted, held = validation_rows(split.y_train, validation_size, seed)
    # One BLAS thread, as our training has: a sweep runs one job per core.
    with threadpool_limits(limits=1, user_api="blas"):
        estimator = peer.estimator(seed).fit(X_train[fitted], split.y_train[fitted])
        train_predictions = estimator.predict(X_train[fitted])
        test_predictions = estimator.predict(X_test)
        validation = None
        if held is not None:
            predicted = estimator.predict(X_train[held])
            validation = float(np.mean(predicted == split.y_train[held]))
    return FittedPeer(peer, estimator, train_predictions, test_predictions, validation)
