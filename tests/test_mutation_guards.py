"""Behaviours that `make mutate` found no test guarding (docs/mutation.md).

Each test here kills mutants that survived the rest of the fast suite.
"""

from __future__ import annotations

import warnings

import numpy as np

from digits_nn import network
from digits_nn.train import gradient_descent


def test_forward_is_silent_when_the_sigmoid_saturates() -> None:
    """exp(-z) overflowing to inf gives the sigmoid's right limit 0: not worth a warning."""
    net = network.init_uniform([3, 2, 2], seed=0)
    X = np.full((4, 3), -1e4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = network.forward(net, X)
    assert np.all(out[1] == 0.0)


def test_float32_cost_of_forward_is_bit_for_bit_the_recorded_cost() -> None:
    """As network.py promises: the cost ``forward`` gives is the one training records,
    in float32 too (the per-sample norms keep the network's dtype)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8)).astype(np.float32)
    Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 50)]
    net = network.init_uniform([8, 6, 4], seed=1, dtype="float32")
    before = network.half_squared_error(Y, network.forward(net, X)[-1])
    classic = network.classic_cost(Y, network.forward(net, X)[-1])
    result = gradient_descent(net, X, Y, alpha=0.5, iterations=1)
    assert result.cost_curve[0] == before
    assert result.classic_cost_curve[0] == classic
