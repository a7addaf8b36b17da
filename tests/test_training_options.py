"""Each training option does what it says, checked against oracles the test computes itself.

The update rules are followed by hand with the textbook formulas and gradients taken by
central differences of a cost written out here; the routing of options is checked
against the general path; the split and the validation rows against sklearn's own
counts. Every test here was seen to fail with the option it guards broken (issue 15).
"""

from __future__ import annotations

import copy
import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from digits_nn import config, modern, pipeline, runner
from digits_nn.train import gradient_descent

ROOT = Path(__file__).resolve().parents[1]


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


def by_hand_gradient(params, shapes, X, Y, l2, n, eps=1e-6) -> list[np.ndarray]:
    grads = []
    for P in params:
        G = np.zeros_like(P)
        for index in np.ndindex(P.shape):
            saved = P[index]
            P[index] = saved + eps
            up = by_hand_cost(params, shapes, X, Y, l2, n)
            P[index] = saved - eps
            down = by_hand_cost(params, shapes, X, Y, l2, n)
            P[index] = saved
            G[index] = (up - down) / (2 * eps)
        grads.append(G)
    return grads


def by_hand_training(net, X, Y, options: config.TrainConfig, seed: int = 0) -> list[np.ndarray]:
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
    # The batches are the package's own seeded shuffles (test_modern checks the seeding).
    shuffles = np.random.default_rng([seed, 1])
    for t in range(options.iterations):
        decayed = options.schedule == "inverse_time"
        rate = options.alpha / (1 + options.decay * t) if decayed else options.alpha
        for rows in modern.batches(len(X), options.batch_size, shuffles):
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
    net = modern.init_network(list(sizes), "xavier", 2, "float64", "tanh", "softmax")
    for b in net.biases:  # off zero, so the biases' updates count too
        b += rng.normal(scale=0.3, size=b.shape)
    return net, X, Y


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
    options = config.parse({"train": {"alpha": 0.9, "iterations": 4, **train}}).train
    expected = by_hand_training(net, X, Y, options)
    modern.train(net, X, Y, options, seed=0)
    got = [p for pair in zip(net.weights, net.biases) for p in pair]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


def test_the_by_hand_rules_tell_the_optimisers_apart() -> None:
    """The oracle itself is sharp: each option moves the weights by more than the
    tolerance the test above allows."""
    net, X, Y = small_problem()
    finals = {
        name: by_hand_training(
            net, X, Y, config.parse({"train": {"alpha": 0.9, "iterations": 4, **t}}).train
        )
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
    short = config.parse({"train": {"alpha": 0.1, "iterations": 2, **train}}).train
    expected = by_hand_training(net, X, Y, short, seed=5)
    modern.train(net, X, Y, short, seed=5)
    got = [p for pair in zip(net.weights, net.biases) for p in pair]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    long = config.parse({"train": {"alpha": 0.1, "iterations": 60, **train}}).train
    history = modern.train(start, X, Y, long, seed=5)
    assert history.cost_curve[-1] < 0.8 * history.cost_curve[0]


# ---- which path trains -----------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_split():
    _, split, onehot = pipeline.prepare_data(config.parse({}))
    return split, onehot


@pytest.mark.parametrize(
    "train",
    [{"l2": 5.0}, {"schedule": "inverse_time", "decay": 0.5}],
    ids=["l2", "inverse-time"],
)
def test_an_option_the_classic_kernel_lacks_is_trained_on_the_general_path(
    digits_split, train: dict
) -> None:
    """sigmoid, full-batch gd and one of these options: the classic kernel would ignore
    the option, so ``fit`` must take the general path."""
    split, onehot = digits_split
    cfg = config.parse(
        {"train": {"alpha": 1.0, "iterations": 5, **train}, "tracking": {"accuracy_every": 0}}
    )
    result = pipeline.fit(cfg, split, onehot, progress=False)

    general = modern.init_network([64, 30, 10], "uniform", cfg.seed)
    modern.train(general, split.X_train, onehot.Y_train, cfg.train, cfg.seed)
    for a, b in zip(result.network.weights, general.weights):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)

    kernel = modern.init_network([64, 30, 10], "uniform", cfg.seed)
    gradient_descent(kernel, split.X_train, onehot.Y_train, 1.0, 5)
    assert not np.allclose(result.network.weights[0], kernel.weights[0], rtol=0, atol=1e-6)
    # The recorded cost is the one minimised: the half squared error plus the penalty.
    net0 = modern.init_network([64, 30, 10], "uniform", cfg.seed)
    hidden = 1 / (1 + np.exp(-(split.X_train @ net0.weights[0].T + net0.biases[0])))
    output = 1 / (1 + np.exp(-(hidden @ net0.weights[1].T + net0.biases[1])))
    n = len(split.X_train)
    loss = 0.5 * np.sum((onehot.Y_train - output) ** 2) / n
    penalty = cfg.train.l2 / (2 * n) * sum(np.sum(W * W) for W in net0.weights)
    assert result.cost_curve[0] == pytest.approx(loss + penalty, rel=1e-12)


# ---- the data the options see ----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_rows_are_a_stratified_share_of_the_training_rows(digits_split, seed) -> None:
    split, onehot = digits_split
    _, Y_fit, (_, Y_val) = pipeline.carve_validation(split.X_train, onehot.Y_train, 0.2, seed)
    per_class = onehot.Y_train.sum(axis=0)
    # Stratified: each digit's share of the validation rows is its share of the training
    # rows, up to rounding (a plain random 20 % misses by ~4 rows per digit).
    assert np.all(np.abs(Y_val.sum(axis=0) - 0.2 * per_class) <= 1)
    np.testing.assert_array_equal(Y_fit.sum(axis=0) + Y_val.sum(axis=0), per_class)


def run_job(output_dir: Path, *overrides: str) -> None:
    """One job of ``pipelines/run.py`` in this process: Hydra composes the config and
    its own node as ``@hydra.main`` would, and :func:`runner.run` runs it."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.overrides.task = list(overrides)
    HydraConfig.instance().set_config(cfg)
    try:
        with open_dict(cfg):
            del cfg["hydra"]
        runner.run(cfg)
    finally:
        HydraConfig.instance().cfg = None


def test_run_py_splits_the_data_with_the_configured_seed(tmp_path: Path) -> None:
    seed = 7
    run_job(tmp_path, f"seed={seed}", "train.iterations=3", "tracking.enabled=false")
    with open(tmp_path / "reports/predictions.csv") as handle:
        actual = [int(row["actual"]) for row in csv.DictReader(handle)]
    digits = load_digits()
    _, test_rows = train_test_split(np.arange(len(digits.target)), test_size=0.4, random_state=seed)
    assert actual == digits.target[test_rows].tolist()
    _, seed0_rows = train_test_split(np.arange(len(digits.target)), test_size=0.4, random_state=0)
    assert actual != digits.target[seed0_rows].tolist()  # the oracle can tell the seeds apart
