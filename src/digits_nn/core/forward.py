"""The one forward pass: what predictions, evaluation, the general trainer and the
served model all compute, one sample per row.

The classic kernel (:mod:`digits_nn.core.kernel`) runs the same maths on its own
buffers, one sample per column, for speed; the tests check that both agree.
"""

from __future__ import annotations

import numpy as np

from digits_nn.core.activations import HIDDEN, OUTPUTS
from digits_nn.core.network import Ensemble, Model, Network, networks


def hidden_and_logits(network: Network, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """``[X, H1, ..., H_{L-1}]`` and the output layer's logits ``Z_L``, one sample per row."""
    f = HIDDEN[network.activation]
    hs = [X]
    with np.errstate(over="ignore"):
        for W, b in zip(network.weights[:-1], network.biases[:-1]):
            hs.append(f(hs[-1] @ W.T + b))
    return hs, hs[-1] @ network.weights[-1].T + network.biases[-1]


def output_values(network: Network, logits: np.ndarray) -> np.ndarray:
    """The output layer's values: sigmoids or softmax probabilities of the logits."""
    with np.errstate(over="ignore"):
        return OUTPUTS[network.output](logits)


def forward(network: Network, X: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer for the batch ``X``: ``[X, H1, ..., H_out]``."""
    hs, logits = hidden_and_logits(network, X)
    return [*hs, output_values(network, logits)]


def probabilities(model: Model, X: np.ndarray) -> np.ndarray:
    """The output layer's values for the batch ``X``; for an ensemble, the mean over its
    members of each member's values."""
    values = [output_values(net, hidden_and_logits(net, X)[1]) for net in networks(model)]
    return values[0] if len(values) == 1 else np.mean(values, axis=0)


def predict(model: Model, X: np.ndarray) -> np.ndarray:
    """Digit labels: the index of the largest output of each row.

    For one network that is its largest logit: both output layers are increasing in
    their logits, and logits do not saturate to ties as sigmoid outputs can. An
    ensemble's label is the largest of its members' mean outputs.
    """
    if isinstance(model, Ensemble):
        return np.argmax(probabilities(model, X), axis=1)
    return np.argmax(hidden_and_logits(model, X)[1], axis=1)
