"""The costs: the classic figure against the minimised one, and the cross-entropy from
logits in float32."""

from __future__ import annotations

import numpy as np
import pytest

from digits_nn.core.activations import OUTPUTS
from digits_nn.core.forward import forward
from digits_nn.core.losses import LOSSES, classic_cost, half_squared_error
from digits_nn.core.network import Network, initialise
from digits_nn.core.trainer import Rows, cost


def test_classic_cost_is_mean_plain_norm_not_half_squared():
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = np.array([[0.7, 0.4], [0.0, 1.0]])
    # Row 1: error (0.3, -0.4), norm 0.5, half squared 0.125; row 2: zero error.
    assert classic_cost(Y, out) == pytest.approx(0.25, abs=1e-15)
    assert half_squared_error(Y, out) == pytest.approx(0.0625, abs=1e-15)


def test_every_output_layer_has_its_loss() -> None:
    assert set(LOSSES) == set(OUTPUTS)


def test_float32_cross_entropy_is_finite_where_the_softmax_underflows() -> None:
    """A logit gap of 200 underflows the softmax to 0 in float32 (and float64's floor
    1e-300 is 0 there); the cost must still be the finite, float64-agreeing value."""
    rng = np.random.default_rng(0)
    net64 = initialise([4, 3, 5], "xavier", 0, "float64")
    net64 = Network(net64.weights, net64.biases, "tanh", "softmax")
    net64.weights[-1] *= 100.0  # tanh outputs ~±1, so logits spread by ~hundreds
    X = rng.standard_normal((8, 4))
    Y = np.eye(5)[rng.integers(0, 5, 8)]
    net32 = Network(
        [W.astype(np.float32) for W in net64.weights],
        [b.astype(np.float32) for b in net64.biases],
        "tanh",
        "softmax",
    )
    out32 = forward(net32, X.astype(np.float32))[-1]
    assert (out32 == 0).any()  # the case that read nan: a probability underflowed
    cost32 = cost(net32, Rows(X.astype(np.float32), Y.astype(np.float32)), 0.0, 8)
    cost64 = cost(net64, Rows(X, Y), 0.0, 8)
    assert np.isfinite(cost32)
    assert cost32 == pytest.approx(cost64, rel=1e-4)
