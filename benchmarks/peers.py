"""The implementations the training kernel is measured against, and the data they share.

- :func:`naive_iteration`: the straightforward vectorised numpy of the tutorial (one
  sample per row, ``scipy.special.expit``, fresh arrays every step), as the project
  had it before it was optimised.
- :func:`per_sample_iteration`: the looped form of algorithm.md, per sample and per
  node, written here so that the comparison does not depend on the test suite.
- :func:`sklearn_peer`: scikit-learn's MLPClassifier set up to run the same updates
  (logistic hidden layer, plain full-batch SGD, no momentum, no L2, no shuffling).
- :func:`enlarged_digits`: the training rows enlarged by 1-pixel shifts.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from digits_nn.core.network import Network


def naive_iteration(network: Network, X: np.ndarray, Y: np.ndarray, alpha: float) -> float:
    """One full-batch step in plain vectorised numpy; returns the cost before it."""
    activations = [X]
    for W, b in zip(network.weights, network.biases):
        activations.append(expit(activations[-1] @ W.T + b))
    output = activations[-1]
    cost = 0.5 * np.einsum("ij,ij->", Y - output, Y - output) / len(Y)
    np.linalg.norm(Y - output, axis=1).mean()
    m = len(Y)
    delta = (output - Y) * output * (1.0 - output)
    for layer in range(len(network.weights) - 1, -1, -1):
        h = activations[layer]
        grad_w = delta.T @ h / m
        grad_b = delta.sum(axis=0) / m
        if layer > 0:
            delta = (delta @ network.weights[layer]) * h * (1.0 - h)
        network.weights[layer] -= alpha * grad_w
        network.biases[layer] -= alpha * grad_b
    return float(cost)


def naive_products(network: Network, X: np.ndarray) -> list:
    """The five matrix products of one naive iteration (64-30-10), on stand-in deltas,
    as the issue defines "its matrix products alone"."""
    W1, W2 = network.weights
    m = len(X)
    H1 = np.full((m, W1.shape[0]), 0.5, X.dtype)
    D2 = np.full((m, W2.shape[0]), 0.1, X.dtype)
    D1 = np.full((m, W1.shape[0]), 0.1, X.dtype)
    return [
        lambda: X @ W1.T,
        lambda: H1 @ W2.T,
        lambda: D2.T @ H1,
        lambda: D2 @ W2,
        lambda: D1.T @ X,
    ]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def per_sample_iteration(
    weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray, Y: np.ndarray, alpha: float
) -> None:
    """One full-batch step as the tutorial first writes it: loops over samples and nodes."""
    sum_dW = [np.zeros_like(W) for W in weights]
    sum_db = [np.zeros_like(b) for b in biases]
    for x, y in zip(X, Y):
        h = [x]
        for W, b in zip(weights, biases):
            h.append(np.array([_sigmoid(float(W[i] @ h[-1]) + b[i]) for i in range(len(b))]))
        out = h[-1]
        delta = np.array([-(y[i] - out[i]) * out[i] * (1.0 - out[i]) for i in range(len(out))])
        for layer in range(len(weights) - 1, -1, -1):
            W = weights[layer]
            for i in range(W.shape[0]):
                sum_dW[layer][i] += delta[i] * h[layer]
                sum_db[layer][i] += delta[i]
            if layer > 0:
                below = h[layer]
                delta = np.array(
                    [
                        float(W[:, j] @ delta) * below[j] * (1.0 - below[j])
                        for j in range(W.shape[1])
                    ]
                )
    m = len(X)
    for layer in range(len(weights)):
        weights[layer] -= alpha / m * sum_dW[layer]
        biases[layer] -= alpha / m * sum_db[layer]


def per_sample_vector_iteration(
    weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray, Y: np.ndarray, alpha: float
) -> None:
    """One full-batch step looping over samples only, each one in vector form: the
    middle ground between the node loops above and the batch matrix form."""
    sum_dW = [np.zeros_like(W) for W in weights]
    sum_db = [np.zeros_like(b) for b in biases]
    for x, y in zip(X, Y):
        h = [x]
        for W, b in zip(weights, biases):
            h.append(1.0 / (1.0 + np.exp(-(W @ h[-1] + b))))
        delta = -(y - h[-1]) * h[-1] * (1.0 - h[-1])
        for layer in range(len(weights) - 1, -1, -1):
            sum_dW[layer] += np.outer(delta, h[layer])
            sum_db[layer] += delta
            if layer > 0:
                delta = (weights[layer].T @ delta) * h[layer] * (1.0 - h[layer])
    m = len(X)
    for layer in range(len(weights)):
        weights[layer] -= alpha / m * sum_dW[layer]
        biases[layer] -= alpha / m * sum_db[layer]


def sklearn_peer(hidden: int, alpha: float, iterations: int, rows: int, seed: int = 0):
    """MLPClassifier doing full-batch gradient descent like ours, ``iterations`` epochs.

    Its output layer is softmax with cross-entropy (scikit-learn has no other for
    classes), so the arithmetic per step is the same size but not identical.
    """
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(hidden,),
        activation="logistic",
        solver="sgd",
        learning_rate_init=alpha,
        batch_size=rows,  # full batch
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        max_iter=iterations,
        tol=0.0,
        n_iter_no_change=10**9,
        shuffle=False,
        early_stopping=False,
        random_state=seed,
    )


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """8x8 images moved by (dy, dx) pixels, the uncovered border filled with the
    image's minimum (the standardised value of a blank pixel)."""
    grid = images.reshape(-1, 8, 8)
    out = np.empty_like(grid)
    out[...] = grid.min(axis=(1, 2), keepdims=True)
    ys, yd = (slice(0, 8 - dy), slice(dy, 8)) if dy >= 0 else (slice(-dy, 8), slice(0, 8 + dy))
    xs, xd = (slice(0, 8 - dx), slice(dx, 8)) if dx >= 0 else (slice(-dx, 8), slice(0, 8 + dx))
    out[:, yd, xd] = grid[:, ys, xs]
    return out.reshape(len(images), 64)


ONE_PIXEL = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]


def enlarged_digits(X: np.ndarray, Y: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows, ×5 (the four 1-pixel shifts added) or ×25 (those applied twice)."""
    rounds = {1: 0, 5: 1, 25: 2}[factor]
    for _ in range(rounds):
        X = np.concatenate([shifted(X, dy, dx) for dy, dx in ONE_PIXEL])
        Y = np.concatenate([Y] * len(ONE_PIXEL))
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)
