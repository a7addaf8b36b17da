"""Behaviours that `make mutate` found no test guarding (docs/mutation.md).

Each test here kills mutants that survived the rest of the fast suite.
"""

# ruff: noqa: E501 - the refusal messages are checked whole, one a line.

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from digits_nn import config, network, pipeline
from digits_nn.errors import ConfigError
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


def test_the_classic_config_trains_on_the_kernel_bit_for_bit() -> None:
    """The classic configuration takes the optimised kernel, not the general path (whose
    weights agree only to ~1e-15)."""
    cfg = config.parse({"train": {"iterations": 30}, "tracking": {"accuracy_every": 0}})
    _, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    kernel = network.init_uniform([64, 30, 10], cfg.seed)
    with threadpool_limits(limits=1, user_api="blas"):  # as fit trains: the same sums
        expected = gradient_descent(kernel, split.X_train, onehot.Y_train, 0.25, 30)
    for a, b in zip(result.network.weights + result.network.biases, kernel.weights + kernel.biases):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(result.cost_curve, expected.cost_curve)


# The smallest and largest values each key allows: every bound is inclusive or exclusive
# exactly as its message says.
BOUNDARIES = [
    {"seed": 0},
    {"seed": 2**32 - 1},
    {"data": {"test_size": 1e-3}},
    {"data": {"test_size": 0.999}},
    {"model": {"hidden_size": 1}},
    {"model": {"hidden_sizes": [1]}},
    {"train": {"alpha": 1e-300}},
    {"train": {"iterations": 1}},
    {"train": {"optimizer": "sgd", "batch_size": 1}},
    {"train": {"optimizer": "momentum", "momentum": 0.0}},
    {"train": {"optimizer": "momentum", "momentum": 0.999}},
    {"train": {"l2": 0.0}},
    {"train": {"schedule": "inverse_time", "decay": 1e-300}},
    {"train": {"validation_size": 0.0}},
    {"train": {"validation_size": 0.9907, "patience": 1}},
    {"tracking": {"accuracy_every": 0}},
]


@pytest.mark.parametrize("raw", BOUNDARIES, ids=lambda raw: str(raw))
def test_the_bounds_of_every_range_are_accepted(raw: dict) -> None:
    config.parse(raw)


# Each refusal's whole message: the key, the value given, and what is allowed.
MESSAGES = [
    ({"seed": 2**32}, "seed=4294967296 is not allowed: a whole number from 0 to 2**32 - 1."),
    ({"data": {"test_size": 1.0}}, "data.test_size=1.0 is not allowed: a number strictly between 0 and 1."),
    ({"model": {"hidden_size": 0}}, "model.hidden_size=0 is not allowed: a whole number >= 1."),
    ({"model": {"hidden_sizes": []}}, "model.hidden_sizes=[] is not allowed: null, or a non-empty list of whole numbers >= 1."),
    ({"model": {"output": "linear"}}, "model.output='linear' is not allowed: one of sigmoid, softmax."),
    ({"train": {"optimizer": "adam"}}, "train.optimizer='adam' is not allowed: one of gd, sgd, momentum."),
    ({"train": {"schedule": "cosine"}}, "train.schedule='cosine' is not allowed: one of constant, inverse_time."),
    ({"train": {"alpha": 0.0}}, "train.alpha=0.0 is not allowed: a finite number > 0."),
    ({"train": {"iterations": 0}}, "train.iterations=0 is not allowed: a whole number >= 1."),
    ({"train": {"optimizer": "sgd", "batch_size": 0}}, "train.batch_size=0 is not allowed: null (all rows) or a whole number >= 1."),
    ({"train": {"batch_size": 8}}, "train.batch_size=8 is not allowed: null with train.optimizer=gd (full batch); mini-batches need sgd or momentum."),
    ({"train": {"optimizer": "momentum", "momentum": 1.0}}, "train.momentum=1.0 is not allowed: a number in [0, 1)."),
    ({"train": {"l2": -1.0}}, "train.l2=-1.0 is not allowed: a finite number >= 0."),
    ({"train": {"schedule": "inverse_time", "decay": float("inf")}}, "train.decay=inf is not allowed: a finite number > 0 (0 would be no decay)."),
    ({"train": {"validation_size": 1.0}}, "train.validation_size=1.0 is not allowed: a number in [0, 1)."),
    ({"train": {"validation_size": 0.1, "patience": 0}}, "train.patience=0 is not allowed: null (never stop early) or a whole number >= 1."),
    ({"train": {"patience": 3}}, "train.patience=3 is not allowed: null unless train.validation_size > 0 (early stopping needs validation rows)."),
    ({"tracking": {"accuracy_every": -1}}, "tracking.accuracy_every=-1 is not allowed: a whole number >= 0."),
    ({"tracking": {"experiment": ""}}, "tracking.experiment='' is not allowed: a non-empty name."),
    # Unknown keys and wrong types, as OmegaConf reports them, reworded.
    ({"data": {"foo": 1}}, "data.foo: unknown key in 'data'. Allowed keys: test_size."),
    ({"train": {"alpha": "abc"}}, "train.alpha='abc' is not allowed: a number."),
    ({"model": {"hidden_sizes": [1, "a"]}}, "model.hidden_sizes[1]='a' is not allowed: null or a list of whole numbers."),
    ({"seed": 1.5}, "seed=1.5 is not allowed: a whole number."),
    ({"train": 3}, "wrong shape: Merge error: int is not a subclass of TrainConfig. value: 3; every config group must be a mapping of keys."),
    # Every type of the schema has its own wording, and a group set to null the fallback.
    ({"tracking": {"enabled": "maybe"}}, "tracking.enabled='maybe' is not allowed: true or false."),
    ({"model": {"activation": [1]}}, "model.activation=[1] is not allowed: a string."),
    ({"tracking": {"uri": [1]}}, "tracking.uri=[1] is not allowed: null or a string."),
    ({"train": {"batch_size": "abc"}}, "train.batch_size='abc' is not allowed: null or a whole number."),
    ({"train": {"momentum": "abc"}}, "train.momentum='abc' is not allowed: null or a number."),
    ({"train": {"nesterov": "maybe"}}, "train.nesterov='maybe' is not allowed: null, true or false."),
    ({"data": None}, "data=None is not allowed: see conf/ for the expected type."),
    # The validation share: the range of shares that stratify, or none at all.
    ({"train": {"validation_size": 0.005}}, "train.validation_size=0.005 is not allowed: 0, or a share of the 1078 training rows (data.test_size=0.4) leaving at least one row per class (10) both to validate and to fit on: from 0.0093 to 0.9907."),
    ({"data": {"test_size": 1777 / 1797}, "train": {"validation_size": 0.3}}, "train.validation_size=0.3 is not allowed: 0, or a share of the 20 training rows (data.test_size=0.9888703394546466) leaving at least one row per class (10) both to validate and to fit on: from 0.5 to 0.5."),
    ({"data": {"test_size": 1778 / 1797}, "train": {"validation_size": 0.3}}, "train.validation_size=0.3 is not allowed: 0, as the 19 training rows (data.test_size=0.9894268224819143) are too few to hold out one row per class."),
    # A test share out of range is the one error: the validation share is not checked
    # against it (0 would leave all 1797 rows, 1 none, to carve validation rows from).
    ({"data": {"test_size": 0.0}, "train": {"validation_size": 0.001}}, "data.test_size=0.0 is not allowed: a number strictly between 0 and 1."),
    ({"data": {"test_size": 1.0}, "train": {"validation_size": 0.1}}, "data.test_size=1.0 is not allowed: a number strictly between 0 and 1."),
    # Options set where they have no effect, and a decay missing where it acts.
    ({"train": {"momentum": 0.5}}, "train.momentum=0.5 is not allowed: null unless train.optimizer=momentum (with train.optimizer=gd it has no effect)."),
    ({"train": {"optimizer": "sgd", "nesterov": True}}, "train.nesterov=True is not allowed: null unless train.optimizer=momentum (with train.optimizer=sgd it has no effect)."),
    ({"train": {"decay": 0.1}}, "train.decay=0.1 is not allowed: null unless train.schedule=inverse_time (with train.schedule=constant it has no effect)."),
    ({"train": {"schedule": "inverse_time"}}, "train.decay=None is not allowed: a finite number > 0 with train.schedule=inverse_time (the rate is alpha / (1 + decay * t))."),
    # Every error at once, one a line, in the order of the schema.
    ({"model": {"activation": "x", "init": "y"}, "train": {"dtype": "f", "l2": -1}}, "model.activation='x' is not allowed: one of sigmoid, tanh, relu.\nmodel.init='y' is not allowed: one of uniform, xavier, he.\ntrain.dtype='f' is not allowed: one of float64, float32.\ntrain.l2=-1.0 is not allowed: a finite number >= 0."),
    ({"train": {"foo": {"bar": 1}}}, "train.foo: unknown key in 'train'. Allowed keys: alpha, iterations, dtype, optimizer, batch_size, momentum, nesterov, l2, schedule, decay, validation_size, patience."),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "message"), MESSAGES, ids=[m.split("=")[0] for _, m in MESSAGES])
def test_each_refusal_says_exactly_what_is_allowed(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(raw)
    assert str(info.value) == message


def test_an_unknown_top_level_key_lists_the_groups() -> None:
    with pytest.raises(ConfigError) as info:
        config.parse({"foo": 1})
    # The groups may grow; the start of the message may not change.
    assert str(info.value).startswith("foo: unknown key at the top level. Allowed keys: seed, data")


# ---- the progress bar: what a person at a terminal sees -----------------------------------


class RecordingBar:
    """Stands in for tqdm: records how the bar is made and every call made on it."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, **options) -> None:
        self.options, self.n, self.calls = options, 0, []
        RecordingBar.made.append(self)

    def __enter__(self) -> RecordingBar:
        return self

    def __exit__(self, *exc) -> None:
        self.calls.append("closed")

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.calls.append(("postfix", self.n, values, refresh))

    def update(self, k: int = 1) -> None:
        self.n += k
        self.calls.append(("update", k))


@pytest.fixture
def bars(monkeypatch) -> list[RecordingBar]:
    from digits_nn import modern, train

    RecordingBar.made = []
    monkeypatch.setattr(train, "tqdm", RecordingBar)
    monkeypatch.setattr(modern, "tqdm", RecordingBar)
    return RecordingBar.made


@pytest.mark.parametrize("progress", [True, False])
def test_the_kernels_bar_counts_iterations_and_shows_the_cost_every_50(bars, progress) -> None:
    """One bar of 120 iterations, left off the terminal when done; the cost read-out
    (four decimals, the cost of iteration 50, 100, and the last) refreshed every 50."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((12, 5)), np.eye(3)[rng.integers(0, 3, 12)]
    result = gradient_descent(network.init_uniform([5, 4, 3], 0), X, Y, 0.5, 120, progress)
    (bar,) = bars
    assert bar.options == {
        "total": 120, "desc": "train", "unit": "it", "disable": not progress, "leave": False
    }  # fmt: skip
    cost = result.cost_curve
    assert bar.calls == [
        ("postfix", 0, {"cost": f"{cost[49]:.4f}"}, False),
        ("update", 50),
        ("postfix", 50, {"cost": f"{cost[99]:.4f}"}, False),
        ("update", 50),
        ("postfix", 100, {"cost": f"{cost[119]:.4f}"}, False),
        ("update", 20),
        "closed",
    ]


def test_a_diverged_run_says_where_and_what_to_change_on_both_paths() -> None:
    """The whole message, and the curves recorded up to the failing iteration, from the
    kernel and from the general path alike."""
    from digits_nn import modern
    from digits_nn.errors import TrainingDiverged

    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    options = config.TrainConfig(alpha=float("inf"), iterations=5)  # parse refuses it
    runs = {
        "kernel": lambda net: gradient_descent(net, X, Y, float("inf"), 5),
        "general": lambda net: modern.train(net, X, Y, options, seed=0),
    }

    def net_before() -> network.Network:
        return network.init_uniform([3, 2, 2], 0)

    for run in runs.values():
        net = net_before()
        first = network.half_squared_error(Y, network.forward(net, X)[-1])
        with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
            run(net)
        assert str(info.value) == (
            "training diverged: the cost became nan at iteration 2 with train.alpha=inf."
            " Allowed: a smaller train.alpha."
        )
        assert info.value.partial_cost.tolist() == pytest.approx([first], rel=1e-12)
        classic = network.classic_cost(Y, network.forward(net_before(), X)[-1])
        assert info.value.partial_classic_cost.tolist() == pytest.approx([classic], rel=1e-12)


# ---- the training options: pipeline.fit, _fit_general, carve_validation -------------------


@pytest.fixture(scope="module")
def digits():
    _, split, onehot = pipeline.prepare_data(config.parse({}))
    return split, onehot


def blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.parametrize(
    "train", [{}, {"optimizer": "sgd", "batch_size": 64}], ids=["kernel", "general"]
)
def test_fit_trains_on_one_blas_thread_says_what_it_trains_and_shows_its_bar(
    digits, bars, caplog, train: dict
) -> None:
    """One BLAS thread while training (seen from inside, at each checkpoint), none of it
    after; the log line describes the run; the bar is shown when asked for."""
    import logging

    from digits_nn import tracking

    split, onehot = digits
    cfg = config.parse({"train": {"iterations": 4, **train}, "tracking": {"accuracy_every": 2}})
    seen: list[tuple[int, set[int]]] = []
    with caplog.at_level(logging.INFO, logger="digits_nn.pipeline"):
        pipeline.fit(cfg, split, onehot, True, lambda i, net: seen.append((i, blas_threads())))
    assert seen == [(2, {1}), (4, {1})]
    assert [r.getMessage() for r in caplog.records if r.name == "digits_nn.pipeline"] == [
        f"training {tracking.describe(cfg)}"
    ]
    (bar,) = bars
    assert bar.options["disable"] is False


def sklearn_validation_rows(labels: np.ndarray, size: float, seed: int):
    """The held-out rows as scikit-learn's stratified, seeded split draws them."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        np.arange(len(labels)), test_size=size, random_state=seed, stratify=labels
    )


@pytest.mark.parametrize(("size", "seed"), [(0.2, 0), (0.35, 5)])
def test_the_validation_rows_are_sklearns_stratified_seeded_share(digits, size, seed) -> None:
    split, onehot = digits
    fit, held = sklearn_validation_rows(split.y_train, size, seed)
    X_fit, Y_fit, (X_val, Y_val) = pipeline.carve_validation(
        split.X_train, onehot.Y_train, size, seed
    )
    np.testing.assert_array_equal(X_fit, split.X_train[fit])
    np.testing.assert_array_equal(Y_fit, onehot.Y_train[fit])
    np.testing.assert_array_equal(X_val, split.X_train[held])
    np.testing.assert_array_equal(Y_val, onehot.Y_train[held])


def test_fit_with_validation_rows_trains_on_the_rest_and_reports_their_accuracy(digits) -> None:
    """The general path with validation rows and early stopping, followed by hand: the
    network trained on the rows kept, the curves and best iteration of that training, and
    the accuracy counted on the held-out rows."""
    from digits_nn import modern

    split, onehot = digits
    train = {"alpha": 2.0, "iterations": 6, "validation_size": 0.3, "patience": 2}
    cfg = config.parse({"seed": 3, "train": train, "tracking": {"accuracy_every": 0}})
    result = pipeline.fit(cfg, split, onehot, progress=False)

    fit, held = sklearn_validation_rows(split.y_train, 0.3, 3)
    net = modern.init_network([64, 30, 10], "uniform", 3)
    validation = (split.X_train[held], onehot.Y_train[held])
    with threadpool_limits(limits=1, user_api="blas"):
        history = modern.train(
            net, split.X_train[fit], onehot.Y_train[fit], cfg.train, 3, validation
        )
    for a, b in zip(result.network.weights + result.network.biases, net.weights + net.biases):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(result.cost_curve, history.cost_curve)
    np.testing.assert_array_equal(result.classic_cost_curve, history.classic_cost_curve)
    np.testing.assert_array_equal(result.validation_cost_curve, history.validation_cost_curve)
    assert result.best_iteration == history.best_iteration
    hidden = 1 / (1 + np.exp(-(split.X_train[held] @ net.weights[0].T + net.biases[0])))
    output = hidden @ net.weights[1].T + net.biases[1]
    expected = np.mean(output.argmax(axis=1) == split.y_train[held])
    assert result.validation_accuracy == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected < 1.0  # the oracle can tell a wrong count


def test_fit_without_validation_rows_reports_no_validation_figures(digits) -> None:
    split, onehot = digits
    cfg = config.parse(
        {
            "train": {"optimizer": "sgd", "batch_size": 100, "iterations": 2},
            "tracking": {"accuracy_every": 0},
        }
    )
    result = pipeline.fit(cfg, split, onehot, progress=False)
    assert result.validation_cost_curve is None
    assert result.validation_accuracy is None
    assert result.best_iteration is None


@pytest.mark.parametrize("progress", [True, False])
def test_the_general_paths_bar_counts_iterations_and_shows_each_cost(bars, progress) -> None:
    from digits_nn import modern

    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((10, 4)), np.eye(3)[rng.integers(0, 3, 10)]
    net = modern.init_network([4, 3, 3], "xavier", 1, "float64", "tanh", "softmax")
    options = config.parse({"train": {"optimizer": "sgd", "batch_size": 4, "iterations": 3}}).train
    history = modern.train(net, X, Y, options, seed=0, progress=progress)
    (bar,) = bars
    assert bar.options == {"total": 3, "desc": "train", "unit": "it", "disable": not progress}
    expected = []
    for i, cost in enumerate(history.cost_curve):
        expected += [("postfix", i, {"cost": f"{cost:.4f}"}, False), ("update", 1)]
    assert bar.calls == [*expected, "closed"]


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
    from digits_nn import modern

    split, onehot = digits
    cfg = config.parse(
        {
            "seed": 4,
            "model": model,
            "train": {"alpha": 0.5, "iterations": 3, **train},
            "tracking": {"accuracy_every": 0},
        }
    )
    result = pipeline.fit(cfg, split, onehot, progress=False)
    dtype = train.get("dtype", "float64")
    hidden = model.get("hidden_sizes", [30])
    net = modern.init_network(
        [64, *hidden, 10], model.get("init", "uniform"), 4, dtype,
        model.get("activation", "sigmoid"), model.get("output", "sigmoid"),
    )  # fmt: skip
    with threadpool_limits(limits=1, user_api="blas"):
        history = modern.train(
            net, split.X_train.astype(dtype), onehot.Y_train.astype(dtype), cfg.train, 4
        )
    assert (result.network.activation, result.network.output) == (net.activation, net.output)
    for a, b in zip(result.network.weights + result.network.biases, net.weights + net.biases):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(result.cost_curve, history.cost_curve)


def test_checkpoints_fall_every_so_many_iterations_and_at_the_last_never_with_zero() -> None:
    from digits_nn.train import is_checkpoint

    assert [i for i in range(1, 11) if is_checkpoint(i, 4, 10)] == [4, 8, 10]
    assert [i for i in range(1, 11) if is_checkpoint(i, 1, 10)] == list(range(1, 11))
    assert not any(is_checkpoint(i, 0, 10) for i in range(1, 11))  # 0: never, no division
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    seen: list[int] = []
    gradient_descent(
        network.init_uniform([3, 2, 2], 0), X, Y, 0.5, 5, False, lambda i, _: seen.append(i)
    )
    assert seen == []  # checkpoint_every defaults to 0


def test_training_shows_no_bar_unless_asked(bars) -> None:
    from digits_nn import modern

    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    gradient_descent(network.init_uniform([3, 2, 2], 0), X, Y, 0.5, 2)
    options = config.parse({"train": {"iterations": 2}}).train
    seen: list[int] = []
    modern.train(
        network.init_uniform([3, 2, 2], 0), X, Y, options, 0, None, lambda i, _: seen.append(i)
    )
    assert [bar.options["disable"] for bar in bars] == [True, True]
    assert seen == []  # checkpoint_every defaults to 0: never


# ---- the general path's pieces, each against a formula written out here ------------------


def by_hand_outputs(net, X):
    """Logits and outputs of a tanh/sigmoid hidden stack, written out here."""
    h = X
    for W, b in zip(net.weights[:-1], net.biases[:-1]):
        z = h @ W.T + b
        h = np.tanh(z) if net.activation == "tanh" else 1 / (1 + np.exp(-z))
    z = h @ net.weights[-1].T + net.biases[-1]
    if net.output == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return z, e / e.sum(axis=1, keepdims=True)
    return z, 1 / (1 + np.exp(-z))


def test_init_network_defaults_to_the_classic_float64_sigmoid_network() -> None:
    from digits_nn import modern

    for net in (
        modern.init_network([3, 4, 2], "uniform", 1),
        modern.init_network([3, 4, 2], "he", 1),
    ):
        assert (net.activation, net.output) == ("sigmoid", "sigmoid")
        assert {p.dtype for p in net.weights + net.biases} == {np.dtype("float64")}
    assert network.init_uniform([3, 4, 2], 1).weights[0].dtype == np.float64


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scaled_initialisations_are_seeded_normal_draws_scaled_by_hand(dtype: str) -> None:
    """xavier: N(0, 2 / (n_in + n_out)); he: N(0, 2 / n_in); biases zero; drawn from
    RandomState(seed) layer by layer."""
    from digits_nn import modern

    sizes = [5, 4, 3]
    for scheme, variance in (("xavier", lambda i, o: 2 / (i + o)), ("he", lambda i, o: 2 / i)):
        net = modern.init_network(sizes, scheme, 9, dtype, "tanh", "softmax")
        rng = np.random.RandomState(9)
        assert (net.activation, net.output) == ("tanh", "softmax")
        for W, b, (n_in, n_out) in zip(net.weights, net.biases, [(5, 4), (4, 3)]):
            expected = rng.standard_normal((n_out, n_in)) * np.sqrt(variance(n_in, n_out))
            np.testing.assert_array_equal(W, expected.astype(dtype))
            assert W.dtype == b.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(b, np.zeros(n_out))


def test_uniform_initialisation_keeps_the_activations_asked_for() -> None:
    from digits_nn import modern

    net = modern.init_network([3, 4, 2], "uniform", 2, "float32", "relu", "softmax")
    classic = network.init_uniform([3, 4, 2], 2, "float32")
    assert (net.activation, net.output) == ("relu", "softmax")
    for a, b in zip(net.weights + net.biases, classic.weights + classic.biases):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_the_cost_and_a_point_of_the_curves_follow_their_formulas(output: str) -> None:
    from digits_nn import modern

    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((7, 4)), np.eye(3)[rng.integers(0, 3, 7)]
    X_val, Y_val = rng.standard_normal((5, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    net = modern.init_network([4, 6, 3], "xavier", 3, "float64", "tanh", output)
    for b in net.biases:
        b += rng.normal(size=b.shape)

    def mean_loss(X, Y):
        _, out = by_hand_outputs(net, X)
        if output == "softmax":
            return -np.sum(Y * np.log(out)) / len(Y)
        return 0.5 * np.sum((Y - out) ** 2) / len(Y)

    l2, n = 3.0, 40
    penalty = l2 / (2 * n) * sum(np.sum(W**2) for W in net.weights)
    assert modern.penalty(net, l2, n) == pytest.approx(penalty, rel=1e-12)
    assert modern.cost(net, X, Y, l2, n) == pytest.approx(mean_loss(X, Y) + penalty, rel=1e-12)
    assert modern.cost(net, X, Y, 0.0, n) == pytest.approx(mean_loss(X, Y), rel=1e-12)
    train_cost, classic, validation = modern.measure(net, X, Y, l2, (X_val, Y_val))
    assert train_cost == pytest.approx(
        mean_loss(X, Y) + l2 / (2 * 7) * sum(np.sum(W**2) for W in net.weights), rel=1e-12
    )
    _, out = by_hand_outputs(net, X)
    assert classic == pytest.approx(np.mean(np.sqrt(np.sum((Y - out) ** 2, axis=1))), rel=1e-12)
    assert validation == pytest.approx(mean_loss(X_val, Y_val), rel=1e-12)
    assert modern.measure(net, X, Y, l2, None)[2] is None


def test_batches_are_all_rows_in_order_or_slices_of_a_fresh_seeded_shuffle() -> None:
    from digits_nn import modern

    for batch_size in (None, 10, 12):  # all rows, in order, without touching the stream
        rng = np.random.default_rng(1)
        assert [b.tolist() for b in modern.batches(10, batch_size, rng)] == [list(range(10))]
        assert rng.random() == np.random.default_rng(1).random()
    rng, oracle = np.random.default_rng(2), np.random.default_rng(2)
    for _ in range(2):  # a fresh shuffle each pass, cut into 4, 4 and the last 2 rows
        order = oracle.permutation(10).tolist()
        got = [b.tolist() for b in modern.batches(10, 4, rng)]
        assert got == [order[0:4], order[4:8], order[8:10]]


def early_stopping_run(patience, iterations, validation=True, alpha=1e-300, nan_rows=False):
    """modern.train on a small problem, by default with a rate too small to move any
    weight (its validation loss never improves after the start): the iterations it ran,
    its history, the network, and the weights each iteration started from."""
    from digits_nn import modern

    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((12, 4)), np.eye(3)[rng.integers(0, 3, 12)]
    held = (rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)])
    if nan_rows:
        held[0][0, 0] = np.nan  # a validation loss that is never finite
    options = config.TrainConfig(alpha=alpha, iterations=iterations, patience=patience)
    net = network.init_uniform([4, 5, 3], 0)
    starts = [[p.copy() for p in net.weights + net.biases]]
    ran: list[int] = []

    def checkpoint(i, net):
        ran.append(i)
        starts.append([p.copy() for p in net.weights + net.biases])

    history = modern.train(net, X, Y, options, 0, held if validation else None, checkpoint, 1)
    return ran, history, net, starts


@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_stops_after_patience_iterations_without_improvement(patience) -> None:
    """An equal validation loss is no improvement: the run stops after ``patience``
    iterations past the first, and keeps the first weights."""
    ran, history, _, _ = early_stopping_run(patience, 10)
    assert ran == list(range(1, patience + 1))
    assert history.best_iteration == 1
    assert len(history.cost_curve) == len(history.validation_cost_curve) == 1


def test_without_patience_or_validation_rows_the_run_goes_to_the_end() -> None:
    ran, history, _, _ = early_stopping_run(None, 4)
    assert ran == [1, 2, 3, 4] and history.best_iteration is None
    assert len(history.validation_cost_curve) == 4
    ran, history, _, _ = early_stopping_run(2, 4, validation=False)
    assert ran == [1, 2, 3, 4] and history.best_iteration is None
    assert history.validation_cost_curve is None


def test_early_stopping_keeps_the_weights_after_the_last_pass_when_they_are_best() -> None:
    """A run that improves to its end: the weights after the last pass (measured once
    more) are kept, ``best_iteration`` is ``iterations + 1`` and the curves have a point
    for them."""
    from digits_nn import modern

    ran, history, net, _ = early_stopping_run(5, 3, alpha=0.05)
    assert ran == [1, 2, 3]
    assert history.best_iteration == 4
    assert len(history.cost_curve) == 4 and np.all(np.diff(history.validation_cost_curve) < 0)
    _, _, final, _ = early_stopping_run(None, 3, alpha=0.05)  # the same run, never stopping
    for a, b in zip(net.weights + net.biases, final.weights + final.biases):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(9)
    rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
    X_val, Y_val = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    logits = modern.hidden_and_logits(net, X_val)[1]
    assert history.validation_cost_curve[-1] == modern.loss(Y_val, logits, "sigmoid")


def test_training_is_silent_when_the_sigmoid_saturates() -> None:
    """exp(-z) overflowing to inf during training is the sigmoid's right limit 0, on the
    kernel as in ``forward``: no warning."""
    X = np.full((4, 3), -1e4)
    Y = np.eye(2)[[0, 1, 0, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = gradient_descent(network.init_uniform([3, 2, 2], 0), X, Y, 0.5, 2)
    assert np.all(np.isfinite(result.cost_curve))


def test_the_float32_kernel_computes_in_float32_throughout() -> None:
    """train.dtype=float32 is float32 arithmetic: every parameter and buffer of the
    kernel's workspace is float32, and so are the outputs ``forward`` gives."""
    rng = np.random.default_rng(10)
    X = rng.standard_normal((6, 4)).astype(np.float32)
    Y = np.eye(3)[rng.integers(0, 3, 6)]  # float64 targets are taken in as float32
    net = network.init_uniform([4, 5, 3], 0, "float32")
    workspace = network.Workspace(net, X, Y)
    workspace.feed_forward()
    workspace.output_error_norms()
    workspace.descend(0.5)
    buffers = [
        *workspace.params, *workspace.activations, *workspace.steps, *workspace.deltas,
        *workspace.fprimes, workspace.batch_rows, workspace.targets, workspace.error,
        workspace.squares, workspace.norms,
    ]  # fmt: skip
    assert {b.dtype for b in buffers} == {np.dtype(np.float32)}
    assert {h.dtype for h in network.forward(net, X)[1:]} == {np.dtype(np.float32)}


@pytest.mark.parametrize(("patience", "iterations"), [(3, 30), (20, 12)])
def test_early_stopping_follows_the_validation_curve_of_the_full_run(patience, iterations) -> None:
    """A run that improves, then overfits (the lowest validation loss at iteration 8 of
    the full run): the run with patience is the full run's prefix, stopped and restored as
    the rule read off the full run's validation curve says."""
    _, full, _, starts = early_stopping_run(None, iterations, alpha=4.0)
    curve = full.validation_cost_curve
    best, stop = 0, None
    for t in range(1, iterations):
        if curve[t] < curve[best]:
            best = t
        elif t - best >= patience:
            stop = t
            break
    ran, history, net, _ = early_stopping_run(patience, iterations, alpha=4.0)
    if stop is None:  # ran to the end: the weights after the last pass compete too
        assert ran == list(range(1, iterations + 1))
    else:
        assert ran == list(range(1, stop + 1))
    assert 1 <= best < iterations - 1  # the oracle's run improves, then gets worse
    assert history.best_iteration == best + 1
    np.testing.assert_array_equal(history.validation_cost_curve, curve[: best + 1])
    for a, b in zip(net.weights + net.biases, starts[best]):
        np.testing.assert_array_equal(a, b)


def test_a_tie_at_the_end_keeps_the_earlier_weights() -> None:
    ran, history, _, _ = early_stopping_run(5, 3)  # the loss never moves; patience outlasts the run
    assert ran == [1, 2, 3]
    assert history.best_iteration == 1


def test_a_validation_loss_never_finite_stops_after_patience_keeping_the_first_weights() -> None:
    with np.errstate(invalid="ignore"):
        ran, history, net, starts = early_stopping_run(2, 10, alpha=0.5, nan_rows=True)
    assert ran == [1, 2]
    assert history.best_iteration == 1
    for a, b in zip(net.weights + net.biases, starts[0]):
        np.testing.assert_array_equal(a, b)


def test_a_run_diverging_on_its_last_pass_under_early_stopping_says_so() -> None:
    from digits_nn.errors import TrainingDiverged

    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        early_stopping_run(2, 1, alpha=float("inf"))
    assert str(info.value) == (
        "training diverged: the cost became nan at iteration 2 with train.alpha=inf."
        " Allowed: a smaller train.alpha."
    )
    assert len(info.value.partial_cost) == len(info.value.partial_classic_cost) == 1


def test_an_infinite_penalty_is_divergence_even_with_finite_outputs() -> None:
    """The cost checked is the one minimised: a weight so large that the L2 penalty
    overflows diverges, though the outputs (and the classic figure) stay finite."""
    from digits_nn import modern
    from digits_nn.errors import TrainingDiverged

    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    net = modern.init_network([3, 2, 2], "xavier", 0, "float64", "tanh", "softmax")
    net.weights[0][0, 0] = 1e200
    options = config.parse({"train": {"l2": 1.0, "iterations": 3}}).train
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        modern.train(net, X, Y, options, 0)
    assert str(info.value).startswith("training diverged: the cost became inf at iteration 1 ")


def test_a_copy_of_the_weights_is_the_same_network_sharing_no_array() -> None:
    """What early stopping restores and the budget sweeps keep: every array, the hidden
    activation and the output layer, in arrays of its own."""
    from digits_nn import modern

    net = modern.init_network([3, 4, 2], "xavier", 5, "float32", "relu", "softmax")
    copy = modern._copy(net)
    assert (copy.activation, copy.output) == ("relu", "softmax")
    for a, b in zip(copy.weights + copy.biases, net.weights + net.biases):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and not np.shares_memory(a, b)


def test_a_plain_step_keeps_no_velocity_between_steps() -> None:
    """Without momentum each step is ``P -= rate * g`` on its own: a bias a first step
    sent to -inf (rate * g overflowed) stays -inf under a zero gradient, where a
    velocity carried over would make it nan (0 * inf)."""
    from digits_nn import modern

    net = network.Network([np.array([[1.0]])], [np.array([0.0])], "sigmoid", "sigmoid")
    velocity_w, velocity_b = [np.zeros((1, 1))], [np.zeros(1)]
    steps = [
        modern.Gradients([np.array([[0.5]])], [np.array([1e308])]),
        modern.Gradients([np.array([[0.0]])], [np.array([0.0])]),
    ]
    with np.errstate(over="ignore"):
        for grads in steps:
            modern._update(net, grads, velocity_w, velocity_b, 10.0, 0.0, None)
    assert net.weights[0].tolist() == [[1.0 - 10.0 * 0.5]]
    assert net.biases[0].tolist() == [-np.inf]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_the_general_path_is_silent_on_inputs_that_saturate_the_hidden_layer(activation) -> None:
    """Huge inputs saturate a sigmoid or tanh hidden layer to its limits, as on the kernel:
    no warning. The backward pass stops at the first hidden layer; the inputs have no
    activation, so no derivative of them is taken (1e200 squared would overflow)."""
    from digits_nn import modern

    X = np.full((4, 3), 1e200)
    X[1] *= -1
    Y = np.eye(2)[[0, 1, 0, 1]]
    net = modern.init_network([3, 2, 2], "xavier", 0, "float64", activation, "softmax")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = modern.train(net, X, Y, config.TrainConfig(alpha=0.5, iterations=3), seed=0)
    assert np.all(np.isfinite(history.cost_curve))
