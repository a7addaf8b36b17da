"""The fully connected sigmoid network of algorithm.md, in matrix form over a batch.

Conventions follow the maths: layer ``l`` has ``weights[l]`` of shape ``(n[l+1], n[l])``
(row ``i`` holds the weights into node ``i`` of the next layer) and ``biases[l]`` of
shape ``(n[l+1],)``. A batch is one sample per row, so a layer computes
``Z = H @ W.T + b``. Every layer, the output included, applies the logistic sigmoid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit as sigmoid


@dataclass
class Network:
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @property
    def layer_sizes(self) -> list[int]:
        return [self.weights[0].shape[1], *(w.shape[0] for w in self.weights)]


@dataclass
class Gradients:
    """Mean gradients of the batch cost, one entry per layer, shaped like the network."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


def init_uniform(layer_sizes: list[int], seed: int, dtype: str = "float64") -> Network:
    """The classic initialisation: every weight and bias from U[0, 1).

    Drawn from ``RandomState(seed).random_sample`` in the order W1, b1, W2, b2, ... so
    that a seed gives the same network as the reference measurements.
    """
    rng = np.random.RandomState(seed)
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(layer_sizes):
        weights.append(rng.random_sample((n_out, n_in)).astype(dtype, copy=False))
        biases.append(rng.random_sample(n_out).astype(dtype, copy=False))
    return Network(weights, biases)


def forward(network: Network, X: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer for the batch ``X``: ``[X, H1, ..., H_out]``."""
    activations = [X]
    for W, b in zip(network.weights, network.biases):
        activations.append(sigmoid(activations[-1] @ W.T + b))
    return activations


def predict(network: Network, X: np.ndarray) -> np.ndarray:
    """Digit labels: the index of the largest output of each row."""
    return np.argmax(forward(network, X)[-1], axis=1)


def half_squared_error(Y: np.ndarray, output: np.ndarray) -> float:
    """The minimised cost: mean over samples of ``1/2 ||y - h_out||^2``."""
    return float(0.5 * np.einsum("ij,ij->", Y - output, Y - output) / len(Y))


def classic_cost(Y: np.ndarray, output: np.ndarray) -> float:
    """The figure the classic run plotted: mean over samples of ``||y - h_out||``."""
    return float(np.linalg.norm(Y - output, axis=1).mean())


def backward(network: Network, activations: list[np.ndarray], Y: np.ndarray) -> Gradients:
    """Mean gradients of the half squared error by backpropagation.

    ``f'(z) = h (1 - h)`` is taken from the stored activations, so no sigmoid is
    evaluated twice.
    """
    m = len(Y)
    output = activations[-1]
    delta = (output - Y) * output * (1.0 - output)
    grad_w: list[np.ndarray] = [np.empty(0)] * len(network.weights)
    grad_b: list[np.ndarray] = [np.empty(0)] * len(network.weights)
    for layer in range(len(network.weights) - 1, -1, -1):
        h = activations[layer]
        grad_w[layer] = delta.T @ h / m
        grad_b[layer] = delta.sum(axis=0) / m
        if layer > 0:
            delta = (delta @ network.weights[layer]) * h * (1.0 - h)
    return Gradients(grad_w, grad_b)


def step(network: Network, gradients: Gradients, alpha: float) -> None:
    """One gradient-descent update of every layer, in place."""
    for W, b, dW, db in zip(network.weights, network.biases, gradients.weights, gradients.biases):
        W -= alpha * dW
        b -= alpha * db
