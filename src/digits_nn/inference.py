"""A trained network's forward pass and predictions, in numpy alone.

The served MLflow model loads this module, so it imports nothing but numpy and the
network's own numpy kernel: no training code, no config schema, no scipy or tqdm. The
training path (:mod:`digits_nn.modern`) uses the same functions, so the served model
computes exactly what was trained and evaluated.

The output layer's cost is computed from its pre-activations (the logits), never from
the probabilities: a softmax probability underflows to 0 long before its logarithm is
out of range, and in float32 that happens after a few updates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digits_nn.network import Network, sigmoid_in_place
from digits_nn.network import predict as classic_predict

ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUTS = ("sigmoid", "softmax")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` into a new array; ``exp`` overflowing is the right limit 0."""
    with np.errstate(over="ignore"):
        return sigmoid_in_place(np.array(z, copy=True))


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


HIDDEN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": relu,
}


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``log softmax(z)`` row by row, shifted by the row's maximum (log-sum-exp), so it
    is finite for every finite ``z`` in any float type."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def output_activation(logits: np.ndarray, output: str) -> np.ndarray:
    """The output layer's values: softmax probabilities or sigmoids of the logits."""
    return np.exp(log_softmax(logits)) if output == "softmax" else sigmoid(logits)


def hidden_and_logits(network: Network, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """``[X, H1, ..., H_{L-1}]`` and the output layer's logits ``Z_L``, one sample per row."""
    f = HIDDEN[network.activation]
    hs = [X]
    for W, b in zip(network.weights[:-1], network.biases[:-1]):
        hs.append(f(hs[-1] @ W.T + b))
    return hs, hs[-1] @ network.weights[-1].T + network.biases[-1]


def forward(network: Network, X: np.ndarray) -> list[np.ndarray]:
    """Activations ``[X, H1, ..., H_out]``; the output layer is sigmoid or softmax."""
    hs, logits = hidden_and_logits(network, X)
    return [*hs, output_activation(logits, network.output)]


def predict(network: Network, X: np.ndarray) -> np.ndarray:
    """Digit labels of any network: the index of the largest output of each row.

    An all-sigmoid network goes through the classic kernel, so its predictions are bit
    for bit the ones the classic code gives. Any other ranks its logits: both output
    layers are increasing in them, and logits do not saturate to ties as outputs can.
    """
    if network.activation == "sigmoid" and network.output == "sigmoid":
        return classic_predict(network, X)
    return np.argmax(hidden_and_logits(network, X)[1], axis=1)
