"""Each update rule does what it says, checked against training written out here by the
textbook rules, with gradients taken by central differences of a cost written out here
too. Every test here fails with the option it guards broken."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest

from digits_nn.config import parse
from digits_nn.core import trainer
from digits_nn.core.network import Network, initialise
from digits_nn.core.optimizers import Descent
from digits_nn.core.trainer import Rows
from digits_nn.core.training import TrainOptions
from digits_nn.pipeline.fit import train_options
from helpers import central_differences

# ---- an independent cost and its gradient ------------------------------------------------


def by_hand_cost(params: list[np.ndarray], shapes, X, Y, l2: float, n: int) -> float:
    """tanh hidden layers, a softmax output and the cross-entropy, plus the L2 penalty
    ``l2 / (2 n) * sum ||W||^2``: written out here, sharing no code with the package."""
    h = X
    layers = len(shapes)
    for layer, (W, b) in enumerate(unflatten(params, shapes)):
        z = h @ W.T + b
        if layer < layers - 1:
            h = np.tanh(z)
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
    loss = -np.sum(Y * np.log(h)) / len(Y)
    weights = params[0::2]
    return loss + l2 / (2 * n) * sum(np.sum(W * W) for W in weights)


def unflatten(params, shapes):
    return [(params[2 * i], params[2 * i + 1]) for i in range(len(shapes))]


def by_hand_gradient(params, shapes, X, Y, l2, n) -> list[np.ndarray]:
    return central_differences(lambda: by_hand_cost(params, shapes, X, Y, l2, n), params)


def by_hand_training(net, X, Y, options: TrainOptions) -> list[np.ndarray]:
    """Training by the textbook rules, one iteration ``t = 0, 1, ...`` at a time, one
    update per batch (the mean loss over the batch, the penalty over all ``n`` rows):

    rate   ``r_t = alpha / (1 + decay t)`` (inverse time) or ``alpha``
    plain  ``theta -= r_t g(theta)``
    momentum  ``v = mu v - r_t g(theta)``, ``theta += v``
    Nesterov  ``v = mu v - r_t g(theta + mu v)``, ``theta += v`` (Sutskever et al. 2013).

    Nesterov's weights are returned at the look-ahead point ``theta + mu v``: that is the
    point the package keeps, as it takes the gradient only at the weights it holds.
    """
    shapes = [W.shape for W in net.weights]
    theta = [p.copy() for pair in zip(net.weights, net.biases) for p in pair]
    velocity = [np.zeros_like(p) for p in theta]
    mu = options.momentum if options.optimizer == "momentum" else 0.0
    # The batches are the package's own seeded shuffles (test_trainer.py checks the seeding).
    shuffles = np.random.default_rng([options.seed, 1])
    for t in range(options.iterations):
        decayed = options.schedule == "inverse_time"
        rate = options.alpha / (1 + options.decay * t) if decayed else options.alpha
        for rows in trainer.batches(len(X), options.batch_size, shuffles):
            at = [p + mu * v for p, v in zip(theta, velocity)] if options.nesterov else theta
            grads = by_hand_gradient(at, shapes, X[rows], Y[rows], options.l2, len(X))
            velocity = [mu * v - rate * g for v, g in zip(velocity, grads)]
            theta = [p + v for p, v in zip(theta, velocity)]
    if options.nesterov and mu:
        return [p + mu * v for p, v in zip(theta, velocity)]
    return theta


def small_problem(m: int = 9, sizes=(4, 5, 3)):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    net = initialise(list(sizes), "xavier", 2, "float64")
    net = Network(net.weights, net.biases, "tanh", "softmax")
    for b in net.biases:  # off zero, so the biases' updates count too
        b += rng.normal(scale=0.3, size=b.shape)
    return net, X, Y


def options_of(train: dict, seed: int = 0) -> TrainOptions:
    """The config's options as the core takes them; ``seed`` seeds the shuffles."""
    return train_options(parse({"seed": seed, "train": train}))


UPDATE_RULES = {
    "gd": {},
    "gd-inverse-time": {"schedule": "inverse_time", "decay": 0.7},
    "gd-l2": {"l2": 4.0},
    "momentum": {"optimizer": "momentum", "momentum": 0.8},
    "nesterov": {"optimizer": "momentum", "momentum": 0.8, "nesterov": True},
    "nesterov-inverse-time-l2": {
        "optimizer": "momentum",
        "momentum": 0.6,
        "nesterov": True,
        "schedule": "inverse_time",
        "decay": 0.5,
        "l2": 2.0,
    },
}


@pytest.mark.parametrize("train", UPDATE_RULES.values(), ids=UPDATE_RULES.keys())
def test_full_batch_updates_follow_the_textbook_rules_computed_by_hand(train: dict) -> None:
    net, X, Y = small_problem()
    options = options_of({"alpha": 0.9, "iterations": 4, **train})
    expected = by_hand_training(net, X, Y, options)
    trainer.train(net, Rows(X, Y), options)
    got = [p for pair in zip(net.weights, net.biases) for p in pair]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


def test_the_by_hand_rules_tell_the_optimisers_apart() -> None:
    """The oracle itself is sharp: each option moves the weights by more than the
    tolerance the test above allows."""
    net, X, Y = small_problem()
    finals = {
        name: by_hand_training(net, X, Y, options_of({"alpha": 0.9, "iterations": 4, **t}))
        for name, t in UPDATE_RULES.items()
    }
    for a, b in itertools.combinations(finals.values(), 2):
        assert max(np.max(np.abs(p - q)) for p, q in zip(a, b)) > 1e-4


MINI_BATCH_RULES = {
    "sgd": {"optimizer": "sgd", "batch_size": 16},
    "momentum": {"optimizer": "momentum", "batch_size": 16},
    "nesterov": {"optimizer": "momentum", "batch_size": 16, "nesterov": True},
    "inverse-time": {"optimizer": "momentum", "schedule": "inverse_time", "decay": 0.1},
    "l2": {"optimizer": "sgd", "batch_size": 16, "l2": 1.0},
}


@pytest.mark.parametrize("train", MINI_BATCH_RULES.values(), ids=MINI_BATCH_RULES.keys())
def test_every_optimiser_follows_its_rule_on_mini_batches_and_lowers_the_cost(train) -> None:
    net, X, Y = small_problem(m=40)
    start = copy.deepcopy(net)
    short = options_of({"alpha": 0.1, "iterations": 2, **train}, seed=5)
    expected = by_hand_training(net, X, Y, short)
    trainer.train(net, Rows(X, Y), short)
    got = [p for pair in zip(net.weights, net.biases) for p in pair]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    long = options_of({"alpha": 0.1, "iterations": 60, **train}, seed=5)
    result = trainer.train(start, Rows(X, Y), long)
    assert result.cost_curve[-1] < 0.8 * result.cost_curve[0]


# Mutation testing (docs/mutation.md).
def test_a_plain_step_keeps_no_velocity_between_steps() -> None:
    """Without momentum each step is ``P -= rate * g`` on its own: a bias a first step
    sent to -inf (rate * g overflowed) stays -inf under a zero gradient, where a
    velocity carried over would make it nan (0 * inf)."""
    weights, biases = [np.array([[1.0]])], [np.array([0.0])]
    steps = [
        [np.array([[0.5]]), np.array([1e308])],
        [np.array([[0.0]]), np.array([0.0])],
    ]
    rule = Descent()
    with np.errstate(over="ignore"):
        for grads in steps:
            rule.step(weights + biases, grads, 10.0)
    assert weights[0].tolist() == [[1.0 - 10.0 * 0.5]]
    assert biases[0].tolist() == [-np.inf]


def test_momentum_zero_is_plain_descent_and_momentum_keeps_a_velocity() -> None:
    """The rule each option gets: gd and sgd step plainly, momentum carries a velocity
    (plain or Nesterov's) of the parameters' shapes."""
    from digits_nn.core.optimizers import Momentum, optimiser

    params = [np.zeros((2, 3)), np.zeros(2)]
    for train in ({}, {"optimizer": "sgd"}, {"optimizer": "momentum", "momentum": 0.0}):
        assert isinstance(optimiser(options_of(train), params), Descent), train
    nesterov = optimiser(options_of({"optimizer": "momentum", "nesterov": True}), params)
    assert isinstance(nesterov, Momentum) and nesterov.nesterov and nesterov.mu == 0.9
    assert [v.shape for v in nesterov.velocities] == [(2, 3), (2,)]
