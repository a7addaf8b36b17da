"""The general trainer: every option of the author's follow-ups, in plain matrix form
with one sample per row.

Hidden activations (sigmoid, tanh, relu), two output layers with their losses (sigmoid
with the half squared error, softmax with the cross-entropy), mini-batch SGD with seeded
reshuffling, momentum (plain or Nesterov), an L2 penalty, an inverse-time learning-rate
schedule and early stopping on validation rows. A training can stop and go on later
from its :class:`~digits_nn.core.training.TrainerState` (:func:`resume`), bit for bit.
The classic configuration has a faster kernel of its own (:mod:`digits_nn.core.kernel`);
both train it to the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from digits_nn.core.activations import DERIVATIVES
from digits_nn.core.forward import forward, hidden_and_logits, output_values, predict
from digits_nn.core.losses import LOSSES, classic_cost, penalty
from digits_nn.core.network import Model, Network
from digits_nn.core.optimizers import Momentum, optimiser
from digits_nn.core.training import (
    UNWATCHED,
    TrainerState,
    TrainingResult,
    TrainOptions,
    Watch,
    check_final_weights,
    diverged,
)


@dataclass
class Gradients:
    """Mean gradients of the batch cost, one entry per layer, shaped like the network."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


@dataclass(frozen=True)
class Rows:
    """Inputs, one sample per row, and their one-hot targets."""

    X: np.ndarray
    Y: np.ndarray


def cost(network: Network, rows: Rows, l2: float, n: int) -> float:
    """The minimised cost: the mean loss over ``rows`` plus the L2 penalty over ``n``
    training rows."""
    loss = LOSSES[network.output](rows.Y, hidden_and_logits(network, rows.X)[1])
    return loss + penalty(network.weights, l2, n)


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


def measure(network: Network, rows: Rows, l2: float, validation: Rows | None) -> Point:
    """One point of the curves for the current weights."""
    _, logits = hidden_and_logits(network, rows.X)
    loss = LOSSES[network.output]
    train_cost = loss(rows.Y, logits) + penalty(network.weights, l2, len(rows.X))
    classic = classic_cost(rows.Y, output_values(network, logits))
    if validation is None:
        return train_cost, classic, None
    return train_cost, classic, loss(validation.Y, hidden_and_logits(network, validation.X)[1])


def fresh(network: Network, options: TrainOptions) -> TrainerState:
    """The state a training of ``network`` starts from: nothing done yet."""
    # The shuffles: seeded, on a stream of their own (the init draws from RandomState(seed)).
    shuffles = np.random.default_rng([options.seed, 1]).bit_generator.state
    empty = np.empty(0)
    return TrainerState(network, 0, shuffles, None, empty, empty)


def train(
    network: Network,
    rows: Rows,
    options: TrainOptions,
    validation: Rows | None = None,
    watch: Watch = UNWATCHED,
) -> TrainingResult:
    """Train ``network`` in place. One iteration is one pass over ``rows``.

    Records the costs of the weights each iteration starts from. With ``validation``
    rows it records their loss too, and with ``options.patience`` it stops once that
    loss has not improved for ``patience`` iterations and restores the best weights;
    the weights after the last pass are candidates too.
    """
    return resume(fresh(network, options), rows, options, validation, watch)


def resume(
    state: TrainerState,
    rows: Rows,
    options: TrainOptions,
    validation: Rows | None = None,
    watch: Watch = UNWATCHED,
) -> TrainingResult:
    """Go on training from ``state`` to ``options.iterations``. The state is used up: its
    network and velocities are trained in place.

    Gives bit for bit what one training of ``options.iterations`` from the start gives,
    when ``state`` is where that training stood after ``state.iteration`` iterations:
    iteration ``t`` depends only on the weights, the velocities and the shuffles'
    generator it starts from, and on ``t`` (the schedule). The result carries the state
    to go on from again, except with early stopping, whose result is the best weights
    seen rather than where the training stands (a state of it is refused).
    """
    network, n, iterations = state.network, len(rows.X), options.iterations
    stopping = options.patience is not None and validation is not None
    if state.iteration > iterations or (stopping and state.iteration > 0):
        raise ValueError(
            f"cannot go on from iteration {state.iteration} to {iterations}"
            f"{' with early stopping' if stopping else ''}"
        )
    rng = np.random.Generator(np.random.PCG64())  # its state is the state's, set next
    rng.bit_generator.state = state.shuffles
    params = network.weights + network.biases
    step = optimiser(options, params, state.velocities)
    points: list[Point] = list(zip(*_curves(state)))
    best = (math.inf, 0, network.copy() if stopping else network)  # lowest validation loss
    with np.errstate(over="ignore"):
        for t in range(state.iteration, iterations):
            points.append(_finite(measure(network, rows, options.l2, validation), points, options))
            validation_cost = points[-1][2]
            if validation_cost is not None and validation_cost < best[0]:
                best = (validation_cost, t, network.copy() if stopping else network)
            elif stopping and t - best[1] >= options.patience:  # type: ignore[operator]
                break
            rate = options.rate(t)
            for batch in batches(n, options.batch_size, rng):
                X, Y = rows.X[batch], rows.Y[batch]
                grads = backward(network, forward(network, X), Y, options.l2, n)
                step.step(params, grads.weights + grads.biases, rate)
            if watch.due(t + 1, iterations):
                watch.checkpoint(t + 1, network)  # type: ignore[misc]
            if watch.progress is not None:
                watch.progress(t + 1, points[-1][0])
        else:
            if stopping:  # the weights after the last pass, never measured in the loop
                last = _finite(measure(network, rows, options.l2, validation), points, options)
                points.append(last)
                if last[2] < best[0]:  # type: ignore[operator]
                    best = (last[2], iterations, network)  # type: ignore[assignment]
    best_iteration = None
    if stopping:
        network.assign(best[2])
        best_iteration = best[1] + 1
        points = points[:best_iteration]
    costs, classic, validation_costs = (np.array(curve) for curve in zip(*points))
    check_final_weights(network, costs, classic, options.alpha)
    if validation is None:
        validation_costs = None
    after = None
    if not stopping:
        velocities = step.velocities if isinstance(step, Momentum) else None
        shuffles = rng.bit_generator.state
        after = TrainerState(
            network, iterations, shuffles, velocities, costs, classic, validation_costs
        )
    return TrainingResult(
        network,
        costs,
        classic,
        validation_costs,
        best_iteration,
        None if validation is None else accuracy(network, validation),
        after,
    )


def _curves(state: TrainerState) -> tuple[np.ndarray, np.ndarray, Any]:
    """The state's curves as the trainer keeps them: one point per iteration done,
    each value as that training computed it."""
    validation = state.validation_cost_curve
    if validation is None:
        validation = [None] * len(state.cost_curve)
    return state.cost_curve, state.classic_cost_curve, validation


def accuracy(model: Model, rows: Rows) -> float:
    """The share of ``rows`` whose label the network (or ensemble) predicts."""
    return float(np.mean(predict(model, rows.X) == rows.Y.argmax(axis=1)))


def _finite(point: Point, earlier: list[Point], options: TrainOptions) -> Point:
    """``point``, or :class:`TrainingDiverged` with the curves up to it if its cost is not
    finite (the cost is finite for finite weights, so only diverged weights get here)."""
    if math.isfinite(point[0]):
        return point
    costs = np.array([p[0] for p in earlier])
    classic = np.array([p[1] for p in earlier])
    raise diverged(point[0], costs, classic, options.alpha)
