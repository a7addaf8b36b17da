"""Beyond the classic run: the training options of the author's follow-ups.

Hidden activations (sigmoid, tanh, relu), two output layers with their losses (sigmoid
with the half squared error, softmax with the cross-entropy), three initialisations,
mini-batch SGD with seeded reshuffling, momentum (plain or Nesterov), an L2 penalty,
an inverse-time learning-rate schedule and early stopping on validation rows.

This is the general path, in plain matrix form with one sample per row. The classic
configuration trains on the optimised kernel of :mod:`digits_nn.network` instead, and
the tests check that both give the same weights for it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from digits_nn.config import TrainConfig
from digits_nn.errors import TrainingDiverged
from digits_nn.inference import (
    forward,
    hidden_and_logits,
    log_softmax,
    output_activation,
    predict,  # noqa: F401 - re-exported: the general path's predictions
    sigmoid,
)
from digits_nn.network import Network, init_uniform
from digits_nn.train import is_checkpoint

# The derivative of each hidden activation written in terms of its output h = f(z), so
# the backward pass needs only the stored activations.
DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda h: h * (1.0 - h),
    "tanh": lambda h: 1.0 - h * h,
    "relu": lambda h: (h > 0.0).astype(h.dtype),
}


@dataclass
class Gradients:
    """Mean gradients of the batch cost, one entry per layer, shaped like the network."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


# ---- initialisation ------------------------------------------------------------------


def init_network(
    layer_sizes: list[int],
    scheme: str,
    seed: int,
    dtype: str = "float64",
    activation: str = "sigmoid",
    output: str = "sigmoid",
) -> Network:
    """``uniform`` is the classic U[0, 1) draw; ``xavier`` and ``he`` are zero-mean normal
    weights scaled to the fan-in (and fan-out), with zero biases."""
    if scheme == "uniform":
        network = init_uniform(layer_sizes, seed, dtype)
        network.activation, network.output = activation, output
        return network
    rng = np.random.RandomState(seed)
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(layer_sizes):
        variance = 2.0 / (n_in + n_out) if scheme == "xavier" else 2.0 / n_in
        weights.append((rng.standard_normal((n_out, n_in)) * math.sqrt(variance)).astype(dtype))
        biases.append(np.zeros(n_out, dtype=dtype))
    return Network(weights, biases, activation, output)


# ---- forward, cost, backward ---------------------------------------------------------


def loss(Y: np.ndarray, logits: np.ndarray, output: str) -> float:
    """Mean over samples of the loss the output layer is trained on, from its logits:
    the cross-entropy through log-sum-exp, finite for finite logits in any float type."""
    if output == "softmax":
        return float(-np.sum(Y * log_softmax(logits)) / len(Y))
    return float(0.5 * np.sum((Y - sigmoid(logits)) ** 2) / len(Y))


def penalty(network: Network, l2: float, n: int) -> float:
    """``lambda / (2 n) * sum ||W||^2`` over the weights (not the biases)."""
    return l2 / (2 * n) * sum(float(np.sum(W * W)) for W in network.weights)


def cost(network: Network, X: np.ndarray, Y: np.ndarray, l2: float, n: int) -> float:
    """The minimised cost: the mean loss over the rows of X plus the L2 penalty."""
    return loss(Y, hidden_and_logits(network, X)[1], network.output) + penalty(network, l2, n)


def backward(network: Network, hs: list[np.ndarray], Y: np.ndarray, l2: float, n: int) -> Gradients:
    """Gradients of the batch's mean loss plus the L2 penalty over ``n`` training rows.

    softmax with the cross-entropy, and sigmoid with the half squared error, have the
    output deltas ``h - y`` and ``(h - y) h (1 - h)``.
    """
    m = len(Y)
    f_prime = DERIVATIVES[network.activation]
    out = hs[-1]
    delta = out - Y if network.output == "softmax" else (out - Y) * out * (1.0 - out)
    grad_w: list[np.ndarray] = [np.empty(0)] * len(network.weights)
    grad_b: list[np.ndarray] = [np.empty(0)] * len(network.weights)
    for layer in range(len(network.weights) - 1, -1, -1):
        W = network.weights[layer]
        grad_w[layer] = delta.T @ hs[layer] / m + (l2 / n) * W
        grad_b[layer] = delta.sum(axis=0) / m
        if layer > 0:
            delta = (delta @ W) * f_prime(hs[layer])
    return Gradients(grad_w, grad_b)


# ---- the training loop ---------------------------------------------------------------


@dataclass
class History:
    cost_curve: np.ndarray  # training cost (loss + penalty) at the start of each iteration
    classic_cost_curve: np.ndarray  # mean ||y - h_out||, the classic figure
    validation_cost_curve: np.ndarray | None  # loss on the validation rows, if any
    # Early stopping only: the weights returned are the ones this (1-based) iteration
    # started from, ``iterations + 1`` meaning the weights after the last pass. The
    # curves then end at that point, so their last values describe the weights returned.
    best_iteration: int | None = None


def batches(m: int, batch_size: int | None, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices of each update of one iteration: all rows, or a fresh shuffle cut
    into mini-batches (the last one may be smaller)."""
    if batch_size is None or batch_size >= m:
        yield np.arange(m)
        return
    order = rng.permutation(m)
    for start in range(0, m, batch_size):
        yield order[start : start + batch_size]


# The training cost, the classic figure and the validation loss (if any) of one set of
# weights: one point of each curve.
Point = tuple[float, float, float | None]


def measure(
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    l2: float,
    validation: tuple[np.ndarray, np.ndarray] | None,
) -> Point:
    """One point of the curves for the current weights (the cost from the logits, so
    it is finite for finite weights in float32 too)."""
    _, logits = hidden_and_logits(network, X)
    out = output_activation(logits, network.output)
    train_cost = loss(Y, logits, network.output) + penalty(network, l2, len(X))
    classic = float(np.linalg.norm(Y - out, axis=1).mean())
    if validation is None:
        return train_cost, classic, None
    X_val, Y_val = validation
    return train_cost, classic, loss(Y_val, hidden_and_logits(network, X_val)[1], network.output)


def train(
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    options: TrainConfig,
    seed: int,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    on_checkpoint: Callable[[int, Network], None] | None = None,
    checkpoint_every: int = 0,
    progress: bool = False,
) -> History:
    """Train ``network`` in place. One iteration is one pass over the rows of ``X``.

    Records the costs of the weights each iteration starts from. With ``validation``
    rows it records their loss too, and with ``options.patience`` it stops once that
    loss has not improved for ``patience`` iterations and restores the best weights;
    the weights after the last pass are candidates too.
    ``on_checkpoint(iteration, network)`` is called every ``checkpoint_every`` iterations.
    """
    n, alpha, n_iter = len(X), options.alpha, options.iterations
    # The shuffles: seeded, on a stream of their own (the init draws from RandomState(seed)).
    rng = np.random.default_rng([seed, 1])
    velocity_w = [np.zeros_like(W) for W in network.weights]
    velocity_b = [np.zeros_like(b) for b in network.biases]
    mu = options.momentum if options.optimizer == "momentum" else 0.0
    stopping = options.patience is not None and validation is not None
    points: list[Point] = []
    best = (math.inf, 0, _copy(network))  # lowest validation loss, its point, its weights
    bar = tqdm(total=options.iterations, desc="train", unit="it", disable=not progress)
    with bar:
        for t in range(options.iterations):
            points.append(_finite(measure(network, X, Y, options.l2, validation), points, alpha))
            validation_cost = points[-1][2]
            if validation_cost is not None:
                if validation_cost < best[0]:
                    best = (validation_cost, t, _copy(network))
                elif stopping and t - best[1] >= options.patience:
                    break
            decayed = options.schedule == "inverse_time"
            rate = alpha / (1.0 + options.decay * t) if decayed else alpha
            for rows in batches(n, options.batch_size, rng):
                grads = backward(network, forward(network, X[rows]), Y[rows], options.l2, n)
                _update(network, grads, velocity_w, velocity_b, rate, mu, options.nesterov)
            if on_checkpoint is not None and is_checkpoint(t + 1, checkpoint_every, n_iter):
                on_checkpoint(t + 1, network)
            bar.set_postfix(cost=f"{points[-1][0]:.4f}", refresh=False)
            bar.update()
        else:
            if stopping:  # the weights after the last pass, never measured in the loop
                points.append(
                    _finite(measure(network, X, Y, options.l2, validation), points, alpha)
                )
                if points[-1][2] < best[0]:
                    best = (points[-1][2], n_iter, network)
    best_iteration = None
    if stopping:
        _restore(network, best[2])
        best_iteration = best[1] + 1
        points = points[:best_iteration]
    costs, classic, validation_costs = (np.array(curve) for curve in zip(*points))
    return History(
        costs, classic, validation_costs if validation is not None else None, best_iteration
    )


def _finite(point: Point, earlier: list[Point], alpha: float) -> Point:
    """``point``, or :class:`TrainingDiverged` with the curves up to it if its cost is not
    finite (the cost is finite for finite weights, so only diverged weights get here)."""
    if math.isfinite(point[0]):
        return point
    raise TrainingDiverged(
        f"training diverged: the cost became {point[0]} at iteration {len(earlier) + 1}"
        f" with train.alpha={alpha}. Allowed: a smaller train.alpha.",
        np.array([p[0] for p in earlier]),
        np.array([p[1] for p in earlier]),
    )


def _update(network, grads, velocity_w, velocity_b, rate, mu, nesterov) -> None:
    """Gradient descent, or momentum: ``v = mu v - rate g``, ``W += v``; Nesterov in the
    form that needs the gradient only at the current weights:
    ``W += -mu v_old + (1 + mu) v``."""
    params = zip(
        network.weights + network.biases, grads.weights + grads.biases, velocity_w + velocity_b
    )
    for P, G, V in params:
        if mu == 0.0:
            P -= rate * G
            continue
        previous = V.copy() if nesterov else None
        V *= mu
        V -= rate * G
        if nesterov:
            P += (1.0 + mu) * V - mu * previous
        else:
            P += V


def _copy(network: Network) -> Network:
    return Network(
        [W.copy() for W in network.weights],
        [b.copy() for b in network.biases],
        network.activation,
        network.output,
    )


def _restore(network: Network, saved: Network) -> None:
    for target, source in zip(network.weights + network.biases, saved.weights + saved.biases):
        target[...] = source
