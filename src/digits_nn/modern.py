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
from scipy.special import expit, softmax
from tqdm.auto import tqdm

from digits_nn.config import TrainConfig
from digits_nn.errors import TrainingDiverged
from digits_nn.network import Network, init_uniform
from digits_nn.network import predict as classic_predict
from digits_nn.train import is_checkpoint

# Each activation with its derivative written in terms of its output h = f(z), so the
# backward pass needs only the stored activations.
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (expit, lambda h: h * (1.0 - h)),
    "tanh": (np.tanh, lambda h: 1.0 - h * h),
    "relu": (lambda z: np.maximum(z, 0.0), lambda h: (h > 0.0).astype(h.dtype)),
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


def forward(network: Network, X: np.ndarray) -> list[np.ndarray]:
    """Activations ``[X, H1, ..., H_out]``; the output layer is sigmoid or softmax."""
    f, _ = ACTIVATIONS[network.activation]
    hs = [X]
    last = len(network.weights) - 1
    for layer, (W, b) in enumerate(zip(network.weights, network.biases)):
        z = hs[-1] @ W.T + b
        if layer < last:
            hs.append(f(z))
        else:
            hs.append(softmax(z, axis=1) if network.output == "softmax" else expit(z))
    return hs


def predict(network: Network, X: np.ndarray) -> np.ndarray:
    """Digit labels of any network: the index of the largest output of each row.

    An all-sigmoid network goes through the classic kernel, so its predictions are
    bit for bit the ones the classic code gives.
    """
    if network.activation == "sigmoid" and network.output == "sigmoid":
        return classic_predict(network, X)
    return np.argmax(forward(network, X)[-1], axis=1)


def data_cost(Y: np.ndarray, out: np.ndarray, output: str) -> float:
    """Mean over samples of the loss the output layer is trained on."""
    if output == "softmax":
        # log of the softmax output, floored so a confident wrong answer costs ~1e3,
        # not infinity.
        return float(-np.sum(Y * np.log(np.maximum(out, 1e-300))) / len(Y))
    return float(0.5 * np.sum((Y - out) ** 2) / len(Y))


def penalty(network: Network, l2: float, n: int) -> float:
    """``lambda / (2 n) * sum ||W||^2`` over the weights (not the biases)."""
    return l2 / (2 * n) * sum(float(np.sum(W * W)) for W in network.weights)


def cost(network: Network, X: np.ndarray, Y: np.ndarray, l2: float, n: int) -> float:
    """The minimised cost: the mean loss over the rows of X plus the L2 penalty."""
    return data_cost(Y, forward(network, X)[-1], network.output) + penalty(network, l2, n)


def backward(network: Network, hs: list[np.ndarray], Y: np.ndarray, l2: float, n: int) -> Gradients:
    """Gradients of the batch's mean loss plus the L2 penalty over ``n`` training rows.

    softmax with the cross-entropy, and sigmoid with the half squared error, have the
    output deltas ``h - y`` and ``(h - y) h (1 - h)``.
    """
    m = len(Y)
    _, f_prime = ACTIVATIONS[network.activation]
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
    best_iteration: int  # 1-based; the weights returned are the ones of this iteration


def batches(m: int, batch_size: int | None, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices of each update of one iteration: all rows, or a fresh shuffle cut
    into mini-batches (the last one may be smaller)."""
    if batch_size is None or batch_size >= m:
        yield np.arange(m)
        return
    order = rng.permutation(m)
    for start in range(0, m, batch_size):
        yield order[start : start + batch_size]


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
    loss has not improved for ``patience`` iterations and restores the best weights.
    ``on_checkpoint(iteration, network)`` is called every ``checkpoint_every`` iterations.
    """
    n, alpha, n_iter = len(X), options.alpha, options.iterations
    # The shuffles: seeded, on a stream of their own (the init draws from RandomState(seed)).
    rng = np.random.default_rng([seed, 1])
    velocity_w = [np.zeros_like(W) for W in network.weights]
    velocity_b = [np.zeros_like(b) for b in network.biases]
    mu = options.momentum if options.optimizer == "momentum" else 0.0
    costs, classic, validation_costs = [], [], []
    best = (math.inf, 0, _copy(network))
    bar = tqdm(total=options.iterations, desc="train", unit="it", disable=not progress)
    with bar:
        for t in range(options.iterations):
            out = forward(network, X)[-1]
            costs.append(data_cost(Y, out, network.output) + penalty(network, options.l2, n))
            classic.append(float(np.linalg.norm(Y - out, axis=1).mean()))
            if not math.isfinite(costs[-1]):
                raise TrainingDiverged(
                    f"training diverged: the cost became {costs[-1]} at iteration {t + 1}"
                    f" with train.alpha={alpha}. Allowed: a smaller train.alpha.",
                    np.array(costs[:-1]),
                    np.array(classic[:-1]),
                )
            if validation is not None:
                X_val, Y_val = validation
                validation_costs.append(
                    data_cost(Y_val, forward(network, X_val)[-1], network.output)
                )
                if validation_costs[-1] < best[0]:
                    best = (validation_costs[-1], t, _copy(network))
                elif options.patience is not None and t - best[1] >= options.patience:
                    break
            decayed = options.schedule == "inverse_time"
            rate = alpha / (1.0 + options.decay * t) if decayed else alpha
            for rows in batches(n, options.batch_size, rng):
                grads = backward(network, forward(network, X[rows]), Y[rows], options.l2, n)
                _update(network, grads, velocity_w, velocity_b, rate, mu, options.nesterov)
            if on_checkpoint is not None and is_checkpoint(t + 1, checkpoint_every, n_iter):
                on_checkpoint(t + 1, network)
            bar.set_postfix(cost=f"{costs[-1]:.4f}", refresh=False)
            bar.update()
    best_iteration = len(costs)
    if options.patience is not None and validation is not None:
        _restore(network, best[2])
        best_iteration = best[1] + 1
    return History(
        np.array(costs),
        np.array(classic),
        np.array(validation_costs) if validation is not None else None,
        best_iteration,
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
