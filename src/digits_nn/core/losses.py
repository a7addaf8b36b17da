"""The costs: one table of the losses an output layer is trained on, the classic
figure, and the L2 penalty.

Losses are computed from the output layer's pre-activations (the logits), never from
its probabilities: a softmax probability underflows to 0 long before its logarithm is
out of range, and in float32 that happens after a few updates.

The squared errors are summed over a sample's outputs one output after another, with the
samples laid out one per column (:func:`squared_norms`): the classic kernel's layout.
Every squared-error figure goes through it, so both trainers sum in the same order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digits_nn.core.activations import log_softmax, sigmoid


def squared_norms(error: np.ndarray, squares: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``||y - h||^2`` of every sample, for an error laid out one sample per column.

    The rows are added one after another (a reduction over the leading axis), so the
    result does not depend on how the summation is blocked, whoever calls it.
    """
    np.multiply(error, error, out=squares)
    return np.add.reduce(squares, axis=0, out=out)


def half_squared_error_of(norms: np.ndarray) -> float:
    """The minimised cost of a sigmoid output from the per-sample ``||y - h||^2``."""
    return float(0.5 * norms.sum() / len(norms))


def classic_cost_of(norms: np.ndarray) -> float:
    """The classic figure from the per-sample ``||y - h||^2``; overwrites ``norms``."""
    return float(np.sqrt(norms, out=norms).mean())


def error_norms(Y: np.ndarray, output: np.ndarray) -> np.ndarray:
    """``||y - h||^2`` per sample for targets and outputs given one sample per row."""
    error = np.ascontiguousarray((output - Y).T)
    return squared_norms(error, np.empty_like(error), np.empty(error.shape[1], error.dtype))


def half_squared_error(Y: np.ndarray, output: np.ndarray) -> float:
    """Mean over samples of ``1/2 ||y - h_out||^2``."""
    return half_squared_error_of(error_norms(Y, output))


def classic_cost(Y: np.ndarray, output: np.ndarray) -> float:
    """The figure the classic run plotted: mean over samples of ``||y - h_out||``."""
    return classic_cost_of(error_norms(Y, output))


def cross_entropy(Y: np.ndarray, logits: np.ndarray) -> float:
    """Mean cross-entropy of softmax outputs, through log-sum-exp: finite for finite
    logits in any float type."""
    return float(-np.sum(Y * log_softmax(logits)) / len(Y))


def sigmoid_squared_error(Y: np.ndarray, logits: np.ndarray) -> float:
    return half_squared_error(Y, sigmoid(logits))


#: The loss each output layer is trained on, from its logits.
LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "sigmoid": sigmoid_squared_error,
    "softmax": cross_entropy,
}


def penalty(weights: list[np.ndarray], l2: float, n: int) -> float:
    """``lambda / (2 n) * sum ||W||^2`` over the weights (not the biases)."""
    return l2 / (2 * n) * sum(float(np.sum(W * W)) for W in weights)
