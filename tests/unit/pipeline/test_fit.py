"""Training a configured network: the one place that chooses the trainer, checked
against each trainer run by hand, the classic reference figures, and what ``fit``
holds out for validation."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from digits_nn.config import parse
from digits_nn.core import kernel, trainer
from digits_nn.core.forward import hidden_and_logits
from digits_nn.core.losses import LOSSES
from digits_nn.core.network import Ensemble, Network, initialise
from digits_nn.core.trainer import Rows
from digits_nn.core.training import UNWATCHED, TrainOptions, Watch
from digits_nn.data import augment, steps
from digits_nn.data.steps import validation_rows
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline.evaluation import evaluate
from digits_nn.pipeline.fit import (
    ensemble_result,
    fit,
    fit_member,
    initial_network,
    member_seeds,
    train_options,
    training_rows,
    validation_set,
)
from digits_nn.pipeline.prepared import prepare
from digits_nn.pipeline.recording import describe
from helpers import assert_same_parameters, modern_config, parameters


@pytest.fixture(scope="module")
def digits():
    """The classic run's data: seed 0, 40 % test rows."""
    return prepare(parse({}))


def network(sizes, scheme, seed, dtype="float64", activation="sigmoid", output="sigmoid"):
    net = initialise(sizes, scheme, seed, dtype)
    return Network(net.weights, net.biases, activation, output)


# ---- the configured network and options ----------------------------------------------------


def test_the_initial_network_is_the_configured_one_drawn_from_the_seed() -> None:
    """Its layers, initialisation, seed and float type, with the configured hidden
    activation and output layer (the draw itself is the core's)."""
    cfg = parse(
        {
            "seed": 2,
            "model": {"hidden_size": 4, "activation": "relu", "output": "softmax"},
            "train": {"dtype": "float32"},
        }
    )
    net = initial_network(cfg)
    classic = initialise([64, 4, 10], "uniform", 2, "float32")
    assert (net.activation, net.output) == ("relu", "softmax")
    for a, b in zip(parameters(net), parameters(classic), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32


def test_train_options_are_the_configs_train_section_and_its_seed() -> None:
    cfg = parse(
        {
            "seed": 7,
            "train": {
                "alpha": 0.5,
                "iterations": 12,
                "optimizer": "momentum",
                "batch_size": 16,
                "nesterov": True,
                "l2": 0.25,
                "schedule": "inverse_time",
                "decay": 0.1,
                "validation_size": 0.2,
                "patience": 3,
            },
        }
    )
    assert train_options(cfg) == TrainOptions(
        alpha=0.5,
        iterations=12,
        optimizer="momentum",
        batch_size=16,
        momentum=0.9,  # the default that takes effect with optimizer=momentum
        nesterov=True,
        l2=0.25,
        schedule="inverse_time",
        decay=0.1,
        patience=3,
        seed=7,
    )
    assert train_options(parse({})) == TrainOptions(iterations=3000, seed=0)


# ---- which trainer trains -----------------------------------------------------------------


def test_classic_run_reproduces_reference_accuracy_and_costs(digits):
    cfg = parse({})
    split = digits.split
    assert (len(split.y_train), len(split.y_test)) == (1078, 719)

    result = fit(cfg, digits)
    evaluation = evaluate(result.network, split)

    assert result.network.layer_sizes == [64, 30, 10]
    assert len(result.cost_curve) == 3000
    assert round(evaluation.test_accuracy * 719) == 640
    assert evaluation.test_accuracy == pytest.approx(640 / 719, abs=1e-12)
    assert result.final_cost == pytest.approx(0.1165, abs=1e-4)
    assert result.classic_cost_curve[-1] == pytest.approx(0.4235, abs=1e-4)
    assert evaluation.confusion.sum() == 719
    assert np.trace(evaluation.confusion) == 640


# Mutation testing (docs/mutation.md).
def test_the_classic_config_trains_on_the_kernel_bit_for_bit(digits) -> None:
    """The classic configuration takes the optimised kernel, not the general path (whose
    weights agree only to ~1e-15)."""
    cfg = parse({"train": {"iterations": 30}, "tracking": {"accuracy_every": 0}})
    result = fit(cfg, digits)
    net = initialise([64, 30, 10], "uniform", cfg.seed)
    with threadpool_limits(limits=1, user_api="blas"):  # as fit trains: the same sums
        expected = kernel.gradient_descent(
            net, digits.split.X_train, digits.onehot.Y_train, TrainOptions(iterations=30)
        )
    assert_same_parameters(result.network, net)
    np.testing.assert_array_equal(result.cost_curve, expected.cost_curve)


@pytest.mark.parametrize(
    "train",
    [{"l2": 5.0}, {"schedule": "inverse_time", "decay": 0.5}],
    ids=["l2", "inverse-time"],
)
def test_an_option_the_classic_kernel_lacks_is_trained_on_the_general_path(
    digits, train: dict
) -> None:
    """sigmoid, full-batch gd and one of these options: the classic kernel would ignore
    the option, so ``fit`` must take the general path."""
    split, onehot = digits.split, digits.onehot
    cfg = parse(
        {"train": {"alpha": 1.0, "iterations": 5, **train}, "tracking": {"accuracy_every": 0}}
    )
    result = fit(cfg, digits)

    general = initialise([64, 30, 10], "uniform", cfg.seed)
    rows = Rows(split.X_train, onehot.Y_train)
    trainer.train(general, rows, TrainOptions(alpha=1.0, iterations=5, **train))
    for a, b in zip(result.network.weights, general.weights):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)

    classic = initialise([64, 30, 10], "uniform", cfg.seed)
    kernel.gradient_descent(classic, rows.X, rows.Y, TrainOptions(alpha=1.0, iterations=5))
    assert not np.allclose(result.network.weights[0], classic.weights[0], rtol=0, atol=1e-6)
    # The recorded cost is the one minimised: the half squared error plus the penalty.
    net0 = initialise([64, 30, 10], "uniform", cfg.seed)
    hidden = 1 / (1 + np.exp(-(split.X_train @ net0.weights[0].T + net0.biases[0])))
    output = 1 / (1 + np.exp(-(hidden @ net0.weights[1].T + net0.biases[1])))
    n = len(split.X_train)
    loss = 0.5 * np.sum((onehot.Y_train - output) ** 2) / n
    penalty = cfg.train.l2 / (2 * n) * sum(np.sum(W * W) for W in net0.weights)
    assert result.cost_curve[0] == pytest.approx(loss + penalty, rel=1e-12)


# Mutation testing (docs/mutation.md).
@pytest.mark.parametrize(
    ("model", "train"),
    [
        ({"activation": "tanh"}, {}),
        ({"output": "softmax"}, {}),
        ({"init": "xavier", "activation": "relu"}, {"dtype": "float32"}),
        ({"hidden_sizes": [7, 5]}, {"optimizer": "sgd", "batch_size": 50, "dtype": "float32"}),
    ],
    ids=["tanh", "softmax", "relu-float32", "two-layers-float32"],
)
def test_fit_trains_the_configured_network_as_the_general_path_does_by_hand(
    digits, model: dict, train: dict
) -> None:
    """The network fit builds and trains, rebuilt here from the options: its layers, its
    initialisation and seed, its activations and its float type, trained on the training
    rows cast to that type (the classic kernel knows only sigmoid layers)."""
    split, onehot = digits.split, digits.onehot
    cfg = parse(
        {
            "seed": 4,
            "model": model,
            "train": {"alpha": 0.5, "iterations": 3, **train},
            "tracking": {"accuracy_every": 0},
        }
    )
    result = fit(cfg, digits)
    dtype = train.get("dtype", "float64")
    hidden = model.get("hidden_sizes", [30])
    net = network(
        [64, *hidden, 10], model.get("init", "uniform"), 4, dtype,
        model.get("activation", "sigmoid"), model.get("output", "sigmoid"),
    )  # fmt: skip
    options = TrainOptions(
        alpha=0.5,
        iterations=3,
        optimizer=train.get("optimizer", "gd"),
        batch_size=train.get("batch_size"),
        seed=4,
    )
    rows = Rows(split.X_train.astype(dtype), onehot.Y_train.astype(dtype))
    with threadpool_limits(limits=1, user_api="blas"):
        expected = trainer.train(net, rows, options)
    assert (result.network.activation, result.network.output) == (net.activation, net.output)
    for a, b in zip(parameters(result.network), parameters(net)):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(result.cost_curve, expected.cost_curve)


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


# Mutation testing (docs/mutation.md).
@pytest.mark.parametrize(
    "train", [{}, {"optimizer": "sgd", "batch_size": 64}], ids=["kernel", "general"]
)
def test_fit_trains_on_one_blas_thread_says_what_it_trains_and_reports_progress(
    digits, caplog, train: dict
) -> None:
    """One BLAS thread while training (seen from inside, at each checkpoint); the log
    line describes the run; whoever watches hears of every iteration."""
    cfg = parse({"train": {"iterations": 4, **train}, "tracking": {"accuracy_every": 2}})
    seen: list[tuple[int, set[int]]] = []
    heard: list[int] = []
    watch = Watch(
        every=2,
        checkpoint=lambda i, net: seen.append((i, blas_threads())),
        progress=lambda i, cost: heard.append(i),
    )
    with caplog.at_level(logging.INFO, logger="digits_nn.pipeline"):
        fit(cfg, digits, watch)
    assert seen == [(2, {1}), (4, {1})]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("digits_nn")] == [
        f"training {describe(cfg)}"
    ]
    assert heard == [1, 2, 3, 4]


# ---- validation rows and early stopping ------------------------------------------------------


# Mutation testing (docs/mutation.md).
def test_fit_with_validation_rows_trains_on_the_rest_and_reports_their_accuracy(digits) -> None:
    """The general path with validation rows and early stopping, followed by hand: the
    network trained on the rows kept, the curves and best iteration of that training, and
    the accuracy counted on the held-out rows."""
    from sklearn.model_selection import train_test_split

    split, onehot = digits.split, digits.onehot
    train = {"alpha": 2.0, "iterations": 6, "validation_size": 0.3, "patience": 2}
    cfg = parse({"seed": 3, "train": train, "tracking": {"accuracy_every": 0}})
    result = fit(cfg, digits)

    fit_rows, held = train_test_split(
        np.arange(len(split.y_train)), test_size=0.3, random_state=3, stratify=split.y_train
    )
    net = initialise([64, 30, 10], "uniform", 3)
    rows = Rows(split.X_train[fit_rows], onehot.Y_train[fit_rows])
    validation = Rows(split.X_train[held], onehot.Y_train[held])
    options = TrainOptions(alpha=2.0, iterations=6, patience=2, seed=3)
    with threadpool_limits(limits=1, user_api="blas"):
        expected = trainer.train(net, rows, options, validation)
    assert_same_parameters(result.network, net)
    np.testing.assert_array_equal(result.cost_curve, expected.cost_curve)
    np.testing.assert_array_equal(result.classic_cost_curve, expected.classic_cost_curve)
    np.testing.assert_array_equal(result.validation_cost_curve, expected.validation_cost_curve)
    assert result.best_iteration == expected.best_iteration
    hidden = 1 / (1 + np.exp(-(split.X_train[held] @ net.weights[0].T + net.biases[0])))
    output = hidden @ net.weights[1].T + net.biases[1]
    accuracy = np.mean(output.argmax(axis=1) == split.y_train[held])
    assert result.validation_accuracy == pytest.approx(accuracy, abs=1e-12)
    assert 0.0 < accuracy < 1.0  # the oracle can tell a wrong count


# Mutation testing (docs/mutation.md).
def test_fit_without_validation_rows_reports_no_validation_figures(digits) -> None:
    cfg = parse(
        {
            "train": {"optimizer": "sgd", "batch_size": 100, "iterations": 2},
            "tracking": {"accuracy_every": 0},
        }
    )
    result = fit(cfg, digits)
    assert result.validation_cost_curve is None
    assert result.validation_accuracy is None
    assert result.best_iteration is None


def test_early_stopping_restores_the_best_weights_and_records_the_validation_cost() -> None:
    cfg = parse(
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
    data = prepare(cfg)
    split = data.split
    result = fit(cfg, data)
    curve = result.validation_cost_curve
    assert curve is not None and len(curve) == len(result.cost_curve) < 200  # stopped early
    assert result.best_iteration == int(np.argmin(curve)) + 1
    assert len(curve) == result.best_iteration  # the curves end at the weights kept
    # The weights kept are those the best validation cost was measured on.
    fitted, held = validation_rows(split.y_train, 0.2, cfg.seed)
    X_val, Y_val = split.X_train[held], data.onehot.Y_train[held]
    logits = hidden_and_logits(result.network, X_val)[1]
    assert LOSSES["softmax"](Y_val, logits) == pytest.approx(curve.min(), rel=1e-12)
    assert len(fitted) + len(held) == len(split.X_train)  # carved from the train rows only
    assert not set(map(bytes, X_val)) & set(map(bytes, split.X_test))


# best_iteration names the weights early stopping kept; without it no iteration was chosen.
def test_no_best_iteration_without_early_stopping(digits) -> None:
    assert fit(modern_config(), digits).best_iteration is None
    validated = modern_config(train={"validation_size": 0.2})
    assert fit(validated, digits).best_iteration is None


def test_float32_training_on_the_modern_options_does_not_diverge(digits) -> None:
    """The modern preset's options in float32, for the first iterations: a float32 path
    that loses precision stops at iteration 2 with "the cost became nan"."""
    cfg = modern_config(
        model={"hidden_size": 256},
        train={
            "dtype": "float32",
            "nesterov": True,
            "l2": 3.0,
            "schedule": "inverse_time",
            "decay": 0.05,
            "iterations": 5,
        },
    )
    result = fit(cfg, digits)
    assert len(result.cost_curve) == 5 and np.isfinite(result.cost_curve).all()
    assert result.network.weights[0].dtype == np.float32


# The weights after the last update are checked too: without that, a run whose last update
# overflows exits 0 with a huge final_cost and saves a model file its own reader refuses
# ("W1 holds NaN or infinite values").
def test_a_training_whose_last_update_overflows_fails_instead_of_saving_the_weights(
    digits,
) -> None:
    cfg = parse(
        {
            "model": {"activation": "relu", "output": "softmax", "init": "he"},
            "train": {"alpha": 20, "optimizer": "sgd", "batch_size": 32, "iterations": 5},
        }
    )
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        fit(cfg, digits)
    assert "left non-finite weights" in str(info.value)
    assert np.isfinite(info.value.partial_cost).all()


# ---- augmentation --------------------------------------------------------------------------

AUGMENTED = {"augment": {"copies": 2, "rotation": 10.0, "shift": 1.0, "zoom": 0.1}}


def test_the_rows_trained_on_are_the_originals_then_their_copies_scaled_alike(digits) -> None:
    cfg = modern_config(data=AUGMENTED)
    split, scaled = digits.split, digits.scaled
    X, Y = training_rows(cfg, digits, slice(None), seed=4)
    n = len(split.X_train)
    assert X.shape == (3 * n, 64) and Y.shape == (3 * n, 10)
    np.testing.assert_array_equal(X[:n], split.X_train)  # the originals, untouched
    np.testing.assert_array_equal(Y, np.concatenate([digits.onehot.Y_train] * 3))
    # The copies: the raw pixels transformed, then scaled with the data's own scaling.
    raw = split.X_train * scaled.scale + scaled.mean
    spec = augment.Affine(2, 10.0, 1.0, 0.1)
    copies, _ = augment.augmented(raw, split.y_train, spec, 4)
    np.testing.assert_allclose(X[n:], (copies[n:] - scaled.mean) / scaled.scale, atol=1e-12)
    without = training_rows(modern_config(), digits, slice(None), seed=4)
    np.testing.assert_array_equal(without[0], split.X_train)


def test_augmentation_sees_only_the_training_rows_fitted_on(digits, monkeypatch) -> None:
    """Exactly the rows fitted on: never a validation row, never a test row."""
    seen: list[np.ndarray] = []
    real = augment.augmented

    def spy(X, y, spec, seed):
        seen.append(X.copy())
        return real(X, y, spec, seed)

    monkeypatch.setattr(augment, "augmented", spy)
    cfg = modern_config(data=AUGMENTED, train={"validation_size": 0.2, "iterations": 1})
    fit(cfg, digits)
    split = digits.split
    fitted, _ = validation_rows(split.y_train, 0.2, cfg.seed)
    assert len(seen) == 1
    expected = steps.raw_pixels(split.X_train[fitted], digits.scaled)
    np.testing.assert_allclose(seen[0], expected, atol=1e-12)
    assert len(seen[0]) == len(fitted) < len(split.X_train)


def test_augmented_training_is_seeded(digits) -> None:
    cfg = modern_config(data=AUGMENTED, train={"iterations": 2})
    first, again = fit(cfg, digits), fit(cfg, digits)
    assert_same_parameters(first.network, again.network)
    other = fit(dataclasses.replace(cfg, seed=1), digits)
    assert not np.allclose(first.network.weights[0], other.network.weights[0])


# ---- ensembles -----------------------------------------------------------------------------


def test_member_seeds_start_at_the_seed_and_are_distinct_whole_numbers() -> None:
    seeds = member_seeds(7, 6)
    assert seeds[0] == 7 and len(set(seeds)) == 6
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
    assert member_seeds(7, 6) == seeds and member_seeds(7, 3) == seeds[:3]
    assert member_seeds(8, 6)[1:] != seeds[1:]


def test_an_ensemble_is_its_members_each_trained_as_one_network_from_its_seed(digits) -> None:
    cfg = modern_config(model={"members": 3}, data=AUGMENTED, train={"iterations": 3})
    result = fit(cfg, digits)
    assert isinstance(result.network, Ensemble) and len(result.network.members) == 3
    alone = [fit_member(cfg, digits, seed, UNWATCHED) for seed in member_seeds(cfg.seed, 3)]
    for member, single in zip(result.network.members, alone, strict=True):
        assert_same_parameters(member, single.network)
    # The first member is the one-network run of the same config.
    one = fit(modern_config(data=AUGMENTED, train={"iterations": 3}), digits)
    assert_same_parameters(result.network.members[0], one.network)
    # Its curves are the members' mean.
    np.testing.assert_allclose(result.cost_curve, np.mean([r.cost_curve for r in alone], axis=0))
    np.testing.assert_allclose(
        result.classic_cost_curve, np.mean([r.classic_cost_curve for r in alone], axis=0)
    )
    assert result.validation_cost_curve is None and result.best_iteration is None


def test_an_ensembles_validation_accuracy_is_the_ensembles_own(digits) -> None:
    cfg = modern_config(model={"members": 2}, train={"iterations": 3, "validation_size": 0.2})
    result = fit(cfg, digits)
    _, held = validation_rows(digits.split.y_train, 0.2, cfg.seed)
    labels = predict_labels(result.network, digits.split.X_train[held])
    assert result.validation_accuracy == np.mean(labels == digits.split.y_train[held])
    assert result.validation_cost_curve is not None and len(result.validation_cost_curve) == 3


def predict_labels(model, X):
    from digits_nn.core.forward import predict

    return predict(model, X)


def test_an_ensembles_watch_hears_every_member_and_checkpoints_the_ensemble(digits) -> None:
    cfg = modern_config(model={"members": 3}, train={"iterations": 4})
    heard: list[int] = []
    seen: dict[int, object] = {}
    watch = Watch(2, lambda i, model: seen.setdefault(i, model), lambda i, _: heard.append(i))
    result = fit(cfg, digits, watch)
    assert heard == list(range(1, 13))  # 3 members x 4 iterations, numbered on
    assert sorted(seen) == [2, 4]
    final = seen[4]
    assert isinstance(final, Ensemble) and len(final.members) == 3
    for a, b in zip(final.members, result.network.members, strict=True):
        assert_same_parameters(a, b)
    assert isinstance(seen[2], Ensemble)
    assert not np.array_equal(seen[2].members[0].weights[0], final.members[0].weights[0])


def test_an_ensembles_progress_hears_each_members_costs_numbered_on_and_logs_each_member(
    digits, caplog: pytest.LogCaptureFixture
) -> None:
    """Checkpoints every 2 iterations with no one to see them: none are taken, and the
    progress still hears every member's cost at every iteration."""
    cfg = modern_config(model={"members": 2}, train={"iterations": 3})
    heard: list[tuple[int, float]] = []
    watch = Watch(2, None, lambda i, cost: heard.append((i, cost)))
    with caplog.at_level(logging.INFO, logger="digits_nn.pipeline.fit"):
        fit(cfg, digits, watch)
    seeds = member_seeds(cfg.seed, 2)
    alone = [fit_member(cfg, digits, seed, UNWATCHED).cost_curve for seed in seeds]
    assert heard == [
        (3 * j + i + 1, cost) for j, curve in enumerate(alone) for i, cost in enumerate(curve)
    ]
    assert [m for m in caplog.messages if m.startswith("member")] == [
        f"member 1 of 2 (seed {seeds[0]})",
        f"member 2 of 2 (seed {seeds[1]})",
    ]


def test_one_members_results_as_an_ensemble_are_its_own(digits) -> None:
    cfg = modern_config(train={"iterations": 3, "validation_size": 0.2})
    one = fit_member(cfg, digits, cfg.seed, UNWATCHED)
    alone = ensemble_result([one], validation_set(cfg, digits))
    assert isinstance(alone.network, Ensemble) and alone.network.members == [one.network]
    np.testing.assert_array_equal(alone.cost_curve, one.cost_curve)
    np.testing.assert_array_equal(alone.classic_cost_curve, one.classic_cost_curve)
    np.testing.assert_array_equal(alone.validation_cost_curve, one.validation_cost_curve)
    assert alone.validation_accuracy == one.validation_accuracy is not None
