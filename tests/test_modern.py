"""The training options beyond the classic run: gradients, optimisers and early stopping."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest

from digits_nn import config, modern, pipeline
from digits_nn.train import gradient_descent

COMBINATIONS = list(
    itertools.product(["sigmoid", "softmax"], ["sigmoid", "tanh", "relu"], [0, 2.0])
)


def small_problem(seed: int = 0, m: int = 12, sizes=(5, 7, 6, 4)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    return X, Y, list(sizes)


@pytest.mark.parametrize(("output", "activation", "l2"), COMBINATIONS)
def test_backprop_matches_central_differences_for_every_loss_activation_and_l2(
    output: str, activation: str, l2: float
) -> None:
    X, Y, sizes = small_problem()
    net = modern.init_network(sizes, "xavier", 3, "float64", activation, output)
    # Nudge the biases off zero so that no relu sits exactly on its kink.
    for b in net.biases:
        b += 0.05
    n = 40  # the L2 term is scaled by the size of the whole training set, not the batch
    grads = modern.backward(net, modern.forward(net, X), Y, l2, n)
    eps = 1e-6
    for analytic, params in [(grads.weights, net.weights), (grads.biases, net.biases)]:
        for g, P in zip(analytic, params):
            numeric = np.zeros_like(P)
            for index in np.ndindex(P.shape):
                saved = P[index]
                P[index] = saved + eps
                up = modern.cost(net, X, Y, l2, n)
                P[index] = saved - eps
                down = modern.cost(net, X, Y, l2, n)
                P[index] = saved
                numeric[index] = (up - down) / (2 * eps)
            scale = np.maximum(np.abs(numeric) + np.abs(g), 1e-8)
            assert np.max(np.abs(numeric - g) / scale) < 1e-5


def test_general_path_matches_the_classic_kernel_on_the_classic_config() -> None:
    cfg = config.parse({"train": {"iterations": 50}})
    _, split, onehot = pipeline.prepare_data(cfg)
    start = modern.init_network([64, 30, 10], "uniform", 0)
    kernel, general = copy.deepcopy(start), copy.deepcopy(start)
    fast = gradient_descent(kernel, split.X_train, onehot.Y_train, 0.25, 50)
    slow = modern.train(general, split.X_train, onehot.Y_train, cfg.train, seed=0)
    for a, b in zip(kernel.weights + kernel.biases, general.weights + general.biases):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.cost_curve, slow.cost_curve, rtol=1e-12)


@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_scaled_initialisations_have_zero_mean_and_the_promised_variance(scheme: str) -> None:
    net = modern.init_network([400, 300, 10], scheme, seed=1)
    W = net.weights[0]
    expected = 2.0 / (400 + 300) if scheme == "xavier" else 2.0 / 400
    assert abs(W.mean()) < 0.01 * np.sqrt(expected)
    assert W.var() == pytest.approx(expected, rel=0.02)
    assert not net.biases[0].any()


def options(**train) -> config.TrainConfig:
    return config.parse({"train": {"iterations": 20, **train}}).train


def test_one_iteration_is_one_pass_of_ceil_rows_over_batch_size_updates(monkeypatch) -> None:
    X, Y, sizes = small_problem(m=50)
    updates = []
    real = modern._update
    monkeypatch.setattr(modern, "_update", lambda *a: (updates.append(1), real(*a)))
    net = modern.init_network(sizes, "he", 0, activation="relu", output="softmax")
    history = modern.train(net, X, Y, options(optimizer="sgd", batch_size=16, iterations=3), 0)
    assert len(history.cost_curve) == 3  # one point per iteration...
    assert len(updates) == 3 * 4  # ...and ceil(50 / 16) = 4 updates in each


def test_minibatch_shuffling_is_seeded() -> None:
    X, Y, sizes = small_problem(m=60)
    runs = []
    for seed in (0, 0, 1):
        net = modern.init_network(sizes, "he", 0, activation="relu", output="softmax")
        modern.train(net, X, Y, options(optimizer="sgd", batch_size=8, alpha=0.1), seed)
        runs.append(net.weights[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_early_stopping_restores_the_best_weights_and_records_the_validation_cost() -> None:
    cfg = config.parse(
        {
            "model": {"activation": "relu", "output": "softmax", "init": "he", "hidden_size": 64},
            "train": {
                "optimizer": "momentum",
                "batch_size": 32,
                "alpha": 0.2,
                "iterations": 200,
                "validation_size": 0.2,
                "patience": 5,
            },
            "tracking": {"accuracy_every": 0},
        }
    )
    _, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    curve = result.validation_cost_curve
    assert curve is not None and len(curve) == len(result.cost_curve) < 200  # stopped early
    assert result.best_iteration == int(np.argmin(curve)) + 1
    assert len(curve) == result.best_iteration  # the curves end at the weights kept
    # The weights kept are those the best validation cost was measured on.
    X_fit, _, (X_val, Y_val) = pipeline.carve_validation(
        split.X_train, onehot.Y_train, 0.2, cfg.seed
    )
    logits = modern.hidden_and_logits(result.network, X_val)[1]
    assert modern.loss(Y_val, logits, "softmax") == pytest.approx(curve.min(), rel=1e-12)
    assert len(X_fit) + len(X_val) == len(split.X_train)  # carved from the train rows only
    assert not set(map(bytes, X_val)) & set(map(bytes, split.X_test))


def test_softmax_outputs_are_distributions_and_predictions_are_labels() -> None:
    X, _, sizes = small_problem()
    net = modern.init_network(sizes, "he", 0, activation="relu", output="softmax")
    out = modern.forward(net, X)[-1]
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    # Built so that the answer is known: input k passes the relu in unit k alone, and
    # output k gets the largest logit.
    labels = np.array([2, 0, 3, 3, 1, 0])
    built = modern.init_network([4, 4, 4], "he", 0, activation="relu", output="softmax")
    built.weights = [np.eye(4), 3.0 * np.eye(4)]
    np.testing.assert_array_equal(modern.predict(built, np.eye(4)[labels]), labels)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"model": {"activation": "gelu"}}, "model.activation"),
        ({"model": {"output": "linear"}}, "model.output"),
        ({"model": {"init": "lecun"}}, "model.init"),
        ({"train": {"optimizer": "adam"}}, "train.optimizer"),
        ({"train": {"optimizer": "gd", "batch_size": 32}}, "train.batch_size"),
        ({"train": {"optimizer": "sgd", "batch_size": 0}}, "train.batch_size"),
        ({"train": {"momentum": 1.0}}, "train.momentum"),
        ({"train": {"l2": -1}}, "train.l2"),
        ({"train": {"schedule": "cosine"}}, "train.schedule"),
        ({"train": {"decay": -0.1}}, "train.decay"),
        ({"train": {"validation_size": 1.0}}, "train.validation_size"),
        ({"train": {"patience": 5}}, "train.patience"),
        ({"train": {"validation_size": 0.1, "patience": 0}}, "train.patience"),
        ({"tracking": {"accuracy_every": -1}}, "tracking.accuracy_every"),
    ],
)
def test_invalid_options_are_refused_naming_the_key(raw: dict, key: str) -> None:
    with pytest.raises(config.ConfigError, match=key.replace(".", r"\.")):
        config.parse(raw)
