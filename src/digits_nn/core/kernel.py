"""The classic kernel: full-batch gradient descent on an all-sigmoid network, fast.

It trains what algorithm.md describes, on a :class:`Workspace` allocated once per run
that lays the batch out as the maths writes it, one sample per *column*, so that a
layer is ``Z = [W | b] @ [H; 1]``:

- the bias is the last column of the layer's parameter matrix and multiplies a row
  of ones kept under every activation, so the forward product adds it and the
  backward product ``delta @ [H; 1]^T`` yields ``dJ/dW`` and ``dJ/db`` at once (a
  broadcast add and a column sum each cost as much as a small matrix product here);
- every buffer is reused, so an iteration allocates nothing;
- with one sample per column, ``[W | b] @ [H; 1]`` runs faster in OpenBLAS than
  ``H @ W.T`` (long rows, short columns).

The general trainer (:mod:`digits_nn.core.trainer`) trains the same configuration to
the same weights within rounding; the tests hold the two side by side.
"""

from __future__ import annotations

import math

import numpy as np

from digits_nn.core.activations import sigmoid, sigmoid_derivative
from digits_nn.core.losses import classic_cost_of, half_squared_error_of, squared_norms
from digits_nn.core.network import Network
from digits_nn.core.training import (
    UNWATCHED,
    TrainingResult,
    TrainOptions,
    Watch,
    check_final_weights,
    diverged,
)


class Workspace:
    """Parameters and buffers of one training run, one sample per column.

    ``params[l]`` is ``[W | b]``, shape ``(n[l+1], n[l] + 1)``. ``activations[l]`` is
    ``[H_l; 1]``, shape ``(n[l] + 1, m)``: the last row stays 1. ``activations[0]`` is
    the batch itself; ``batch_rows`` holds it again one sample per row, because
    ``delta @ [X; 1]^T`` is faster on a row-major copy than on a transposed view (the
    largest product of the iteration, and the batch never changes). ``deltas[l]`` and
    ``fprimes[l]`` belong to layer ``l + 1``.
    """

    def __init__(self, network: Network, X: np.ndarray, Y: np.ndarray) -> None:
        dtype = network.dtype
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
        self.targets = np.ascontiguousarray(Y.T, dtype=dtype)
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
            sigmoid(z, out=z)

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
        np.multiply(self.error, sigmoid_derivative(self.output, self.fprimes[last]), out=delta)
        delta *= alpha / self.error.shape[1]
        for layer in range(last, -1, -1):
            h_in = self.activations[layer]
            h_in_rows = self.batch_rows if layer == 0 else h_in.T
            np.matmul(delta, h_in_rows, out=self.steps[layer])
            if layer > 0:
                # W^T delta with the weights from before this step, as backprop requires.
                below = self.deltas[layer - 1]
                np.matmul(self.params[layer][:, :-1].T, delta, out=below)
                below *= sigmoid_derivative(h_in[:-1], self.fprimes[layer - 1])
                delta = below
            self.params[layer] -= self.steps[layer]

    def write_to(self, network: Network) -> None:
        """Copy the trained parameters into the network's own arrays."""
        for params, W, b in zip(self.params, network.weights, network.biases):
            W[...] = params[:, :-1]
            b[...] = params[:, -1]


def gradient_descent(
    network: Network, X: np.ndarray, Y: np.ndarray, options: TrainOptions, watch: Watch = UNWATCHED
) -> TrainingResult:
    """Train ``network`` in place on all rows of ``X`` for ``options.iterations`` updates
    of step ``options.alpha`` (the other options are the classic run's).

    Iteration ``i`` records the cost of the weights it starts from, then updates them,
    as the classic run did. A non-finite cost, or non-finite weights after the last
    update, raise :class:`TrainingDiverged` carrying the curve recorded so far.
    """
    alpha, iterations = options.alpha, options.iterations
    cost_curve = np.empty(iterations)
    classic_curve = np.empty(iterations)
    workspace = Workspace(network, X, Y)
    # exp(-z) overflowing to inf is the sigmoid's correct limit 0, not a fault.
    with np.errstate(over="ignore"):
        try:
            for i in range(iterations):
                workspace.feed_forward()
                norms = workspace.output_error_norms()
                cost_curve[i] = half_squared_error_of(norms)
                classic_curve[i] = classic_cost_of(norms)
                if not math.isfinite(cost_curve[i]):
                    raise diverged(cost_curve[i], cost_curve[:i], classic_curve[:i], alpha)
                workspace.descend(alpha)
                if watch.due(i + 1, iterations):
                    workspace.write_to(network)
                    watch.checkpoint(i + 1, network)  # type: ignore[misc]
                if watch.progress is not None:
                    watch.progress(i + 1, cost_curve[i])
        finally:
            # Also after a divergence, as the network was updated in place before.
            workspace.write_to(network)
    check_final_weights(network, cost_curve, classic_curve, alpha)
    return TrainingResult(network, cost_curve, classic_curve)
