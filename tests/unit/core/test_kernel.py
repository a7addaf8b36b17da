"""The classic kernel: full-batch gradient descent against a per-sample oracle written
as the tutorial loops it, its cost curves, divergence, and its float types."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest

from digits_nn.config import parse
from digits_nn.core import kernel
from digits_nn.core.forward import forward
from digits_nn.core.losses import classic_cost, half_squared_error
from digits_nn.core.network import initialise
from digits_nn.core.training import UNWATCHED, TrainingResult, TrainOptions, Watch
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline.prepared import prepare
from helpers import digits_rows, parameters


def gradient_descent(net, X, Y, alpha, iterations, watch: Watch = UNWATCHED) -> TrainingResult:
    return kernel.gradient_descent(
        net, X, Y, TrainOptions(alpha=alpha, iterations=iterations), watch
    )


def batch_cost(net, X, Y):
    return half_squared_error(Y, forward(net, X)[-1])


@pytest.fixture(scope="module")
def classic_data():
    return prepare(parse({}))


# ---- the per-sample oracle ---------------------------------------------------------------


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def oracle_step(weights, biases, X, Y, alpha):
    """One update written as in the tutorial's looped version: per sample, per node."""
    n_layers = len(weights)
    sum_dW = [np.zeros_like(W) for W in weights]
    sum_db = [np.zeros_like(b) for b in biases]
    for x, y in zip(X, Y, strict=True):
        # Forward: h[0] = x, z[l+1]_i = W[l]_i . h[l] + b[l]_i, h = f(z).
        h = [np.array(x, dtype=np.float64)]
        for W, b in zip(weights, biases, strict=True):
            nxt = np.empty(W.shape[0])
            for i in range(W.shape[0]):
                nxt[i] = _sig(float(np.dot(W[i], h[-1])) + b[i])
            h.append(nxt)
        # Output delta: -(y - h) * f'(z), f'(z) = f(z)(1 - f(z)).
        out = h[-1]
        delta = np.empty(len(out))
        for i in range(len(out)):
            delta[i] = -(y[i] - out[i]) * out[i] * (1.0 - out[i])
        for layer in range(n_layers - 1, -1, -1):
            W = weights[layer]
            for i in range(W.shape[0]):
                sum_dW[layer][i] += delta[i] * h[layer]
                sum_db[layer][i] += delta[i]
            if layer > 0:
                prev = h[layer]
                new_delta = np.empty(W.shape[1])
                for j in range(W.shape[1]):
                    new_delta[j] = float(np.dot(W[:, j], delta)) * prev[j] * (1.0 - prev[j])
                delta = new_delta
    m = len(X)
    for layer in range(n_layers):
        weights[layer] -= alpha / m * sum_dW[layer]
        biases[layer] -= alpha / m * sum_db[layer]


def test_oracle_single_step_matches_hand_computed_update():
    # The oracle itself, checked on a 1-1 network by hand: h = f(w x + b),
    # dJ/dw = -(y - h) h (1 - h) x.
    w, b, x, y, alpha = 0.3, -0.2, 2.0, 1.0, 0.5
    h = _sig(w * x + b)
    d = -(y - h) * h * (1 - h)
    weights, biases = [np.array([[w]])], [np.array([b])]
    oracle_step(weights, biases, np.array([[x]]), np.array([[y]]), alpha)
    assert weights[0][0, 0] == pytest.approx(w - alpha * d * x, abs=1e-15)
    assert biases[0][0] == pytest.approx(b - alpha * d, abs=1e-15)


@pytest.mark.parametrize("source", ["digits-64-30-10", "random-5-7-6-3"])
def test_vectorised_training_matches_per_sample_oracle(source):
    if source == "digits-64-30-10":
        X, Y = digits_rows(40)
        net = initialise([64, 30, 10], "uniform", seed=0)
    else:
        rng = np.random.default_rng(7)
        X = rng.normal(size=(25, 5))
        Y = rng.random(size=(25, 3))
        net = initialise([5, 7, 6, 3], "uniform", seed=1)
    reference = copy.deepcopy(net)
    start = copy.deepcopy(net)
    alpha, iterations = 0.25, 50

    result = gradient_descent(net, X, Y, alpha, iterations)
    for _ in range(iterations):
        oracle_step(reference.weights, reference.biases, X, Y, alpha)

    assert result.network is net
    # Training must really have moved the weights, or the comparison proves nothing.
    assert not np.allclose(start.weights[0], net.weights[0], rtol=0, atol=1e-6)
    for got, want in zip(parameters(net), parameters(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_every_layer_including_the_first_is_updated():
    X, Y = digits_rows(40)
    net = initialise([64, 30, 10], "uniform", seed=0)
    before = copy.deepcopy(net)
    gradient_descent(net, X, Y, 0.25, 5)
    for new, old in zip(parameters(net), parameters(before), strict=True):
        assert not np.array_equal(new, old)


# ---- the cost curves ---------------------------------------------------------------------


def test_gradient_descent_records_cost_before_each_update_and_decreases(classic_data):
    X, Y = classic_data.split.X_train, classic_data.onehot.Y_train
    net = initialise([64, 30, 10], "uniform", seed=0)
    initial = copy.deepcopy(net)

    result = gradient_descent(net, X, Y, 0.25, 200)

    assert isinstance(result, TrainingResult)
    assert result.cost_curve.shape == (200,)
    assert result.classic_cost_curve.shape == (200,)
    out0 = forward(initial, X)[-1]
    assert result.cost_curve[0] == half_squared_error(Y, out0)
    assert result.classic_cost_curve[0] == classic_cost(Y, out0)
    # The last recorded cost is that of the weights before the last update, not after it.
    after = batch_cost(net, X, Y)
    assert after < result.cost_curve[-1]
    assert result.final_cost == result.cost_curve[-1]
    assert np.all(np.diff(result.cost_curve) < 0)
    assert np.all(np.diff(result.classic_cost_curve) < 0)
    assert result.cost_curve[-1] < 0.75 * result.cost_curve[0]


def test_zero_iterations_returns_empty_curves_and_untouched_network():
    X, Y = digits_rows(10)
    net = initialise([64, 30, 10], "uniform", seed=0)
    before = copy.deepcopy(net)
    result = gradient_descent(net, X, Y, 0.25, 0)
    assert result.cost_curve.shape == (0,)
    for new, old in zip(net.weights, before.weights, strict=True):
        np.testing.assert_array_equal(new, old)


# Mutation testing (docs/mutation.md).
def test_float32_cost_of_forward_is_bit_for_bit_the_recorded_cost() -> None:
    """The cost ``forward`` gives is the one training records, in float32 too (the
    per-sample norms keep the network's dtype)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8)).astype(np.float32)
    Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 50)]
    net = initialise([8, 6, 4], "uniform", seed=1, dtype="float32")
    before = half_squared_error(Y, forward(net, X)[-1])
    classic = classic_cost(Y, forward(net, X)[-1])
    result = gradient_descent(net, X, Y, alpha=0.5, iterations=1)
    assert result.cost_curve[0] == before
    assert result.classic_cost_curve[0] == classic


# ---- divergence --------------------------------------------------------------------------


def _diverge(net, X, Y, alpha, iterations=20):
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        gradient_descent(net, X, Y, alpha, iterations)
    return info.value


def _check_diverged(error, alpha, failing_iteration):
    message = str(error)
    assert f"train.alpha={alpha}" in message
    assert f"iteration {failing_iteration}" in message
    assert len(error.partial_cost) == failing_iteration - 1
    assert len(error.partial_classic_cost) == failing_iteration - 1
    assert np.all(np.isfinite(error.partial_cost))
    assert np.all(np.isfinite(error.partial_classic_cost))


def test_infinite_alpha_raises_training_diverged_at_the_second_iteration():
    X, Y = digits_rows(40)
    net = initialise([64, 30, 10], "uniform", seed=0)
    error = _diverge(net, X, Y, alpha=float("inf"))
    # Iteration 1 costs the finite initial weights; its update makes them non-finite.
    _check_diverged(error, float("inf"), failing_iteration=2)
    assert error.partial_cost[0] == batch_cost(initialise([64, 30, 10], "uniform", 0), X, Y)


def test_infinite_input_raises_training_diverged():
    X, Y = digits_rows(40)
    X = X.copy()
    X[3, 10] = np.inf
    error = _diverge(initialise([64, 30, 10], "uniform", seed=0), X, Y, alpha=0.25)
    _check_diverged(error, 0.25, failing_iteration=2)


def test_nan_weight_raises_training_diverged_at_the_first_iteration():
    X, Y = digits_rows(40)
    net = initialise([64, 30, 10], "uniform", seed=0)
    net.weights[1][0, 0] = np.nan
    error = _diverge(net, X, Y, alpha=0.5)
    _check_diverged(error, 0.5, failing_iteration=1)


# ---- float types and saturation ------------------------------------------------------


def test_float32_training_stays_float32():
    X, Y = digits_rows(40)
    net = initialise([64, 30, 10], "uniform", seed=0, dtype="float32")
    gradient_descent(net, X.astype(np.float32), Y.astype(np.float32), 0.25, 5)
    assert all(a.dtype == np.float32 for a in parameters(net))


# Mutation testing (docs/mutation.md).
def test_training_is_silent_when_the_sigmoid_saturates() -> None:
    """exp(-z) overflowing to inf during training is the sigmoid's right limit 0, on the
    kernel as in ``forward``: no warning."""
    X = np.full((4, 3), -1e4)
    Y = np.eye(2)[[0, 1, 0, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = gradient_descent(initialise([3, 2, 2], "uniform", 0), X, Y, 0.5, 2)
    assert np.all(np.isfinite(result.cost_curve))


# Mutation testing (docs/mutation.md).
def test_the_float32_kernel_computes_in_float32_throughout() -> None:
    """train.dtype=float32 is float32 arithmetic: every parameter and buffer of the
    kernel's workspace is float32, and so are the outputs ``forward`` gives."""
    rng = np.random.default_rng(10)
    X = rng.standard_normal((6, 4)).astype(np.float32)
    Y = np.eye(3)[rng.integers(0, 3, 6)]  # float64 targets are taken in as float32
    net = initialise([4, 5, 3], "uniform", 0, "float32")
    workspace = kernel.Workspace(net, X, Y)
    workspace.feed_forward()
    workspace.output_error_norms()
    workspace.descend(0.5)
    buffers = [
        *workspace.params, *workspace.activations, *workspace.steps, *workspace.deltas,
        *workspace.fprimes, workspace.batch_rows, workspace.targets, workspace.error,
        workspace.squares, workspace.norms,
    ]  # fmt: skip
    assert {b.dtype for b in buffers} == {np.dtype(np.float32)}
    assert {h.dtype for h in forward(net, X)[1:]} == {np.dtype(np.float32)}


# ---- what a caller sees ------------------------------------------------------------------


def test_the_kernel_shows_each_checkpoint_the_trained_network_and_reports_every_cost() -> None:
    """The network a checkpoint sees holds the weights after that many updates (written
    back from the workspace), and ``progress`` hears every iteration's cost."""
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    seen: dict[int, list[np.ndarray]] = {}
    costs: list[tuple[int, float]] = []
    watch = Watch(
        every=2,
        checkpoint=lambda i, net: seen.__setitem__(i, [p.copy() for p in parameters(net)]),
        progress=lambda i, cost: costs.append((i, cost)),
    )
    result = gradient_descent(initialise([3, 2, 2], "uniform", 0), X, Y, 0.5, 5, watch)
    assert sorted(seen) == [2, 4, 5]
    for iterations, arrays in seen.items():
        alone = initialise([3, 2, 2], "uniform", 0)
        gradient_descent(alone, X, Y, 0.5, iterations)
        for a, b in zip(arrays, parameters(alone), strict=True):
            np.testing.assert_array_equal(a, b)
    assert costs == list(enumerate(result.cost_curve.tolist(), start=1))
