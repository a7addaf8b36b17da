"""The fully connected sigmoid network of algorithm.md, in matrix form over a batch.

Conventions follow the maths: layer ``l`` has ``weights[l]`` of shape ``(n[l+1], n[l])``
(row ``i`` holds the weights into node ``i`` of the next layer) and ``biases[l]`` of
shape ``(n[l+1],)``. The public functions take a batch as one sample per row. Every
layer, the output included, applies the logistic sigmoid.

Training runs on a :class:`Workspace`, allocated once per run, that lays the batch
out as the maths writes it, one sample per *column*, so that a layer is
``Z = [W | b] @ [H; 1]``:

- the bias is the last column of the layer's parameter matrix and multiplies a row
  of ones kept under every activation, so the forward product adds it and the
  backward product ``delta @ [H; 1]^T`` yields ``dJ/dW`` and ``dJ/db`` at once (a
  broadcast add and a column sum each cost as much as a small matrix product here);
- every buffer is reused, so an iteration allocates nothing;
- with one sample per column, ``[W | b] @ [H; 1]`` runs faster in OpenBLAS than
  ``H @ W.T`` (long rows, short columns).

``forward`` uses the same code, so the cost it gives for a network is bit-for-bit
the cost the training loop records for it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass
class Network:
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    # The classic network is sigmoid throughout; digits_nn.modern trains the others.
    activation: str = "sigmoid"  # of the hidden layers
    output: str = "sigmoid"  # sigmoid (half squared error) or softmax (cross-entropy)

    @property
    def layer_sizes(self) -> list[int]:
        return [self.weights[0].shape[1], *(w.shape[0] for w in self.weights)]


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


# ---- the maths, elementwise and in place ------------------------------------------------


def sigmoid_in_place(z: np.ndarray) -> np.ndarray:
    """``f(z) = 1 / (1 + exp(-z))``, overwriting ``z``.

    numpy's vectorised ``exp`` is about three times faster than ``scipy.special.expit``
    on these arrays, and ``divide(1, x)`` twice as fast as ``reciprocal``. ``exp(-z)``
    overflows to ``inf`` for ``z < -709`` (float64), which gives the right limit
    ``f(z) = 0``; callers silence that one warning.
    """
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.divide(1.0, z, out=z)


def sigmoid_prime(h: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``f'(z) = h (1 - h)`` from the stored activation ``h = f(z)``: no second exp."""
    np.subtract(1.0, h, out=out)
    out *= h
    return out


def squared_norms(error: np.ndarray, squares: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``||y - h||^2`` of every sample, for an error laid out one sample per column.

    The rows are added one after another (a reduction over the leading axis), so the
    result does not depend on how the summation is blocked, whoever calls it.
    """
    np.multiply(error, error, out=squares)
    return np.add.reduce(squares, axis=0, out=out)


def half_squared_error_of(norms: np.ndarray) -> float:
    """The minimised cost from the per-sample ``||y - h||^2``."""
    return float(0.5 * norms.sum() / len(norms))


def classic_cost_of(norms: np.ndarray) -> float:
    """The classic figure from the per-sample ``||y - h||^2``; overwrites ``norms``."""
    return float(np.sqrt(norms, out=norms).mean())


# ---- the workspace of one training run ---------------------------------------------------


class Workspace:
    """Parameters and buffers of one training run, one sample per column.

    ``params[l]`` is ``[W | b]``, shape ``(n[l+1], n[l] + 1)``. ``activations[l]`` is
    ``[H_l; 1]``, shape ``(n[l] + 1, m)``: the last row stays 1. ``activations[0]`` is
    the batch itself; ``batch_rows`` holds it again one sample per row, because
    ``delta @ [X; 1]^T`` is faster on a row-major copy than on a transposed view (the
    largest product of the iteration, and the batch never changes). ``deltas[l]`` and
    ``fprimes[l]`` belong to layer ``l + 1``.
    """

    def __init__(self, network: Network, X: np.ndarray, Y: np.ndarray | None = None) -> None:
        dtype = network.weights[0].dtype
        m = X.shape[0]
        sizes = network.layer_sizes
        self.params = [
            np.hstack([W, b[:, None]]).astype(dtype, copy=False)
            for W, b in zip(network.weights, network.biases)
        ]
        self.activations = [np.ones((n + 1, m), dtype) for n in sizes]
        self.activations[0][:-1] = X.T
        self.batch_rows = np.ascontiguousarray(self.activations[0].T)
        self.steps = [np.empty_like(p) for p in self.params]
        self.deltas = [np.empty((n, m), dtype) for n in sizes[1:]]
        self.fprimes = [np.empty((n, m), dtype) for n in sizes[1:]]
        self.targets = None if Y is None else np.ascontiguousarray(Y.T, dtype=dtype)
        self.error = np.empty((sizes[-1], m), dtype)
        self.squares = np.empty((sizes[-1], m), dtype)
        self.norms = np.empty(m, dtype)

    @property
    def output(self) -> np.ndarray:
        return self.activations[-1][:-1]

    def feed_forward(self) -> None:
        """``H_{l+1} = f([W | b] @ [H_l; 1])`` for every layer, into the stored buffers."""
        for params, h_in, h_out in zip(self.params, self.activations, self.activations[1:]):
            z = h_out[:-1]
            np.matmul(params, h_in, out=z)
            sigmoid_in_place(z)

    def output_error_norms(self) -> np.ndarray:
        """``h_out - y`` into ``error``; returns ``||y - h_out||^2`` per sample."""
        np.subtract(self.output, self.targets, out=self.error)
        return squared_norms(self.error, self.squares, self.norms)

    def descend(self, alpha: float) -> None:
        """Backpropagate ``error`` and take one gradient-descent step, in place.

        The output delta is scaled by ``alpha / m`` up front: backpropagation is linear
        in it, so each product ``delta @ [H; 1]^T`` is then the step itself, the mean
        gradient times alpha, for the weights and the bias together.
        """
        last = len(self.params) - 1
        delta = self.deltas[last]
        np.multiply(self.error, sigmoid_prime(self.output, self.fprimes[last]), out=delta)
        delta *= alpha / self.error.shape[1]
        for layer in range(last, -1, -1):
            h_in = self.activations[layer]
            h_in_rows = self.batch_rows if layer == 0 else h_in.T
            np.matmul(delta, h_in_rows, out=self.steps[layer])
            if layer > 0:
                # W^T delta with the weights from before this step, as backprop requires.
                below = self.deltas[layer - 1]
                np.matmul(self.params[layer][:, :-1].T, delta, out=below)
                below *= sigmoid_prime(h_in[:-1], self.fprimes[layer - 1])
                delta = below
            self.params[layer] -= self.steps[layer]

    def write_to(self, network: Network) -> None:
        """Copy the trained parameters into the network's own arrays."""
        for params, W, b in zip(self.params, network.weights, network.biases):
            W[...] = params[:, :-1]
            b[...] = params[:, -1]


# ---- the public functions, one sample per row ---------------------------------------------


def forward(network: Network, X: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer for the batch ``X``: ``[X, H1, ..., H_out]``."""
    workspace = Workspace(network, X)
    with np.errstate(over="ignore"):
        workspace.feed_forward()
    return [X, *(h[:-1].T for h in workspace.activations[1:])]


def predict(network: Network, X: np.ndarray) -> np.ndarray:
    """Digit labels: the index of the largest output of each row."""
    return np.argmax(forward(network, X)[-1], axis=1)


def _norms(Y: np.ndarray, output: np.ndarray) -> np.ndarray:
    # One sample per column, as in the workspace, so that both sum in the same order.
    error = np.ascontiguousarray((output - Y).T)
    return squared_norms(error, np.empty_like(error), np.empty(error.shape[1], error.dtype))


def half_squared_error(Y: np.ndarray, output: np.ndarray) -> float:
    """The minimised cost: mean over samples of ``1/2 ||y - h_out||^2``."""
    return half_squared_error_of(_norms(Y, output))


def classic_cost(Y: np.ndarray, output: np.ndarray) -> float:
    """The figure the classic run plotted: mean over samples of ``||y - h_out||``."""
    return classic_cost_of(_norms(Y, output))
