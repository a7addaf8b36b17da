"""The general trainer: backpropagation against central differences, its cost and
curves against their formulas, mini-batches, early stopping, and its agreement with the
classic kernel."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits_nn.config import parse
from digits_nn.core import kernel, trainer
from digits_nn.core.forward import forward, hidden_and_logits
from digits_nn.core.losses import LOSSES, half_squared_error, penalty
from digits_nn.core.network import Network, initialise
from digits_nn.core.trainer import Rows
from digits_nn.core.training import TrainOptions, Watch
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline.fit import train_options
from digits_nn.pipeline.prepared import prepare
from helpers import central_differences, digits_rows, parameters, random_network


def network(sizes, scheme, seed, dtype="float64", activation="sigmoid", output="sigmoid"):
    """A freshly initialised network with the given layers."""
    net = initialise(sizes, scheme, seed, dtype)
    return Network(net.weights, net.biases, activation, output)


# ---- backpropagation against central differences ------------------------------------------


def flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


def gradient_relative_error(net, X, Y):
    analytic = trainer.backward(net, forward(net, X), Y, 0.0, len(X))
    ana = flat([*analytic.weights, *analytic.biases])
    num = flat(
        central_differences(lambda: half_squared_error(Y, forward(net, X)[-1]), parameters(net))
    )
    denom = np.linalg.norm(ana) + np.linalg.norm(num)
    assert denom > 0, "a zero gradient would make the check vacuous"
    return np.linalg.norm(ana - num) / denom


def random_gradient_error(layer_sizes, m, seed):
    """Backprop against central differences on a random network, inputs and targets."""
    rng = np.random.default_rng(seed)
    net = random_network(layer_sizes, rng)
    X = rng.normal(size=(m, layer_sizes[0]))
    Y = rng.random(size=(m, layer_sizes[-1]))
    return gradient_relative_error(net, X, Y)


@pytest.mark.parametrize(
    ("layer_sizes", "m", "seed"),
    [([3, 4, 2], 5, 0), ([64, 30, 10], 4, 1), ([5, 7, 6, 3], 6, 2), ([2, 3, 3, 3, 2], 3, 3)],
    ids=["3-4-2", "64-30-10", "5-7-6-3", "2-3-3-3-2"],
)
def test_backprop_matches_central_differences(layer_sizes, m, seed):
    assert random_gradient_error(layer_sizes, m, seed) <= 1e-6


def test_backprop_matches_central_differences_with_classic_init():
    rng = np.random.default_rng(10)
    net = initialise([5, 7, 6, 3], "uniform", seed=4)
    X = rng.uniform(-1, 1, size=(5, 5))
    Y = rng.random(size=(5, 3))
    assert gradient_relative_error(net, X, Y) <= 1e-6


architectures = st.lists(st.integers(min_value=1, max_value=8), min_size=2, max_size=4)


@settings(max_examples=25, deadline=None)
@given(sizes=architectures, m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_backprop_matches_central_differences_on_random_small_nets(sizes, m, seed):
    assert random_gradient_error(sizes, m, seed) <= 1e-6


def test_backward_returns_gradients_shaped_like_the_network():
    rng = np.random.default_rng(5)
    net = random_network([5, 7, 6, 3], rng)
    X = rng.normal(size=(4, 5))
    grads = trainer.backward(net, forward(net, X), rng.random(size=(4, 3)), 0.0, len(X))
    assert [g.shape for g in grads.weights] == [w.shape for w in net.weights]
    assert [g.shape for g in grads.biases] == [b.shape for b in net.biases]


def test_backward_gradients_are_means_not_sums_over_the_batch():
    rng = np.random.default_rng(6)
    net = random_network([3, 4, 2], rng)
    X = rng.normal(size=(1, 3))
    Y = rng.random(size=(1, 2))
    single = trainer.backward(net, forward(net, X), Y, 0.0, len(X))
    X3, Y3 = np.repeat(X, 3, axis=0), np.repeat(Y, 3, axis=0)
    tripled = trainer.backward(net, forward(net, X3), Y3, 0.0, len(X3))
    for a, b in zip(
        [*single.weights, *single.biases], [*tripled.weights, *tripled.biases], strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


def small_problem(seed: int = 0, m: int = 12, sizes=(5, 7, 6, 4)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    return X, Y, list(sizes)


COMBINATIONS = list(
    itertools.product(["sigmoid", "softmax"], ["sigmoid", "tanh", "relu"], [0, 2.0])
)


@pytest.mark.parametrize(("output", "activation", "l2"), COMBINATIONS)
def test_backprop_matches_central_differences_for_every_loss_activation_and_l2(
    output: str, activation: str, l2: float
) -> None:
    X, Y, sizes = small_problem()
    net = network(sizes, "xavier", 3, "float64", activation, output)
    # Nudge the biases off zero so that no relu sits exactly on its kink.
    for b in net.biases:
        b += 0.05
    n = 40  # the L2 term is scaled by the size of the whole training set, not the batch
    grads = trainer.backward(net, forward(net, X), Y, l2, n)
    numeric = central_differences(lambda: trainer.cost(net, Rows(X, Y), l2, n), parameters(net))
    for g, num in zip([*grads.weights, *grads.biases], numeric, strict=True):
        scale = np.maximum(np.abs(num) + np.abs(g), 1e-8)
        assert np.max(np.abs(num - g) / scale) < 1e-5


# ---- the classic configuration, side by side with the kernel ------------------------------


def test_general_path_matches_the_classic_kernel_on_the_classic_config() -> None:
    """Both trainers train the classic configuration to the same weights and costs,
    within rounding."""
    cfg = parse({"train": {"iterations": 50}})
    data = prepare(cfg)
    start = initialise([64, 30, 10], "uniform", 0)
    fast_net, general_net = copy.deepcopy(start), copy.deepcopy(start)
    options = train_options(cfg)
    X, Y = data.split.X_train, data.onehot.Y_train
    fast = kernel.gradient_descent(fast_net, X, Y, options)
    slow = trainer.train(general_net, Rows(X, Y), options)
    for a, b in zip(parameters(fast_net), parameters(general_net)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.cost_curve, slow.cost_curve, rtol=1e-12)


# ---- mini-batches ------------------------------------------------------------------------


def options(**train) -> TrainOptions:
    return train_options(parse({"train": {"iterations": 20, **train}}))


def test_one_iteration_is_one_pass_of_ceil_rows_over_batch_size_updates(monkeypatch) -> None:
    X, Y, sizes = small_problem(m=50)
    updates = []
    real = trainer.backward
    monkeypatch.setattr(trainer, "backward", lambda *a: (updates.append(1), real(*a))[1])
    net = network(sizes, "he", 0, activation="relu", output="softmax")
    result = trainer.train(net, Rows(X, Y), options(optimizer="sgd", batch_size=16, iterations=3))
    assert len(result.cost_curve) == 3  # one point per iteration...
    assert len(updates) == 3 * 4  # ...and ceil(50 / 16) = 4 updates in each


def test_minibatch_shuffling_is_seeded() -> None:
    X, Y, sizes = small_problem(m=60)
    runs = []
    for seed in (0, 0, 1):
        net = network(sizes, "he", 0, activation="relu", output="softmax")
        sgd = options(optimizer="sgd", batch_size=8, alpha=0.1)
        trainer.train(net, Rows(X, Y), dataclasses.replace(sgd, seed=seed))
        runs.append(net.weights[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


# Mutation testing (docs/mutation.md).
def test_batches_are_all_rows_in_order_or_slices_of_a_fresh_seeded_shuffle() -> None:
    for batch_size in (None, 10, 12):  # all rows, in order, without touching the stream
        rng = np.random.default_rng(1)
        assert [b.tolist() for b in trainer.batches(10, batch_size, rng)] == [list(range(10))]
        assert rng.random() == np.random.default_rng(1).random()
    rng, oracle = np.random.default_rng(2), np.random.default_rng(2)
    for _ in range(2):  # a fresh shuffle each pass, cut into 4, 4 and the last 2 rows
        order = oracle.permutation(10).tolist()
        got = [b.tolist() for b in trainer.batches(10, 4, rng)]
        assert got == [order[0:4], order[4:8], order[8:10]]


# ---- the cost and the curves -------------------------------------------------------------


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


# Mutation testing (docs/mutation.md).
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_the_cost_and_a_point_of_the_curves_follow_their_formulas(output: str) -> None:
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((7, 4)), np.eye(3)[rng.integers(0, 3, 7)]
    X_val, Y_val = rng.standard_normal((5, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    net = network([4, 6, 3], "xavier", 3, "float64", "tanh", output)
    for b in net.biases:
        b += rng.normal(size=b.shape)

    def mean_loss(X, Y):
        _, out = by_hand_outputs(net, X)
        if output == "softmax":
            return -np.sum(Y * np.log(out)) / len(Y)
        return 0.5 * np.sum((Y - out) ** 2) / len(Y)

    l2, n = 3.0, 40
    expected_penalty = l2 / (2 * n) * sum(np.sum(W**2) for W in net.weights)
    rows = Rows(X, Y)
    assert penalty(net.weights, l2, n) == pytest.approx(expected_penalty, rel=1e-12)
    assert trainer.cost(net, rows, l2, n) == pytest.approx(
        mean_loss(X, Y) + expected_penalty, rel=1e-12
    )
    assert trainer.cost(net, rows, 0.0, n) == pytest.approx(mean_loss(X, Y), rel=1e-12)
    train_cost, classic, validation = trainer.measure(net, rows, l2, Rows(X_val, Y_val))
    assert train_cost == pytest.approx(
        mean_loss(X, Y) + l2 / (2 * 7) * sum(np.sum(W**2) for W in net.weights), rel=1e-12
    )
    _, out = by_hand_outputs(net, X)
    assert classic == pytest.approx(np.mean(np.sqrt(np.sum((Y - out) ** 2, axis=1))), rel=1e-12)
    assert validation == pytest.approx(mean_loss(X_val, Y_val), rel=1e-12)
    assert trainer.measure(net, rows, l2, None)[2] is None


# Mutation testing (docs/mutation.md).
def test_an_infinite_penalty_is_divergence_even_with_finite_outputs() -> None:
    """The cost checked is the one minimised: a weight so large that the L2 penalty
    overflows diverges, though the outputs (and the classic figure) stay finite."""
    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    net = network([3, 2, 2], "xavier", 0, "float64", "tanh", "softmax")
    net.weights[0][0, 0] = 1e200
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        trainer.train(net, Rows(X, Y), options(l2=1.0, iterations=3))
    assert str(info.value).startswith("training diverged: the cost became inf at iteration 1 ")


# Mutation testing (docs/mutation.md).
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_the_general_path_is_silent_on_inputs_that_saturate_the_hidden_layer(activation) -> None:
    """Huge inputs saturate a sigmoid or tanh hidden layer to its limits, as on the kernel:
    no warning. The backward pass stops at the first hidden layer; the inputs have no
    activation, so no derivative of them is taken (1e200 squared would overflow)."""
    X = np.full((4, 3), 1e200)
    X[1] *= -1
    Y = np.eye(2)[[0, 1, 0, 1]]
    net = network([3, 2, 2], "xavier", 0, "float64", activation, "softmax")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = trainer.train(net, Rows(X, Y), TrainOptions(alpha=0.5, iterations=3))
    assert np.all(np.isfinite(result.cost_curve))


# ---- early stopping ----------------------------------------------------------------------


def early_stopping_run(patience, iterations, validation=True, alpha=1e-300, nan_rows=False):
    """trainer.train on a small problem, by default with a rate too small to move any
    weight (its validation loss never improves after the start): the iterations it ran,
    its result, the network, and the weights each iteration started from."""
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((12, 4)), np.eye(3)[rng.integers(0, 3, 12)]
    held = Rows(rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)])
    if nan_rows:
        held.X[0, 0] = np.nan  # a validation loss that is never finite
    options = TrainOptions(alpha=alpha, iterations=iterations, patience=patience)
    net = initialise([4, 5, 3], "uniform", 0)
    starts = [[p.copy() for p in parameters(net)]]
    ran: list[int] = []

    def checkpoint(i, net):
        ran.append(i)
        starts.append([p.copy() for p in parameters(net)])

    watch = Watch(every=1, checkpoint=checkpoint)
    result = trainer.train(net, Rows(X, Y), options, held if validation else None, watch)
    return ran, result, net, starts


# Mutation testing (docs/mutation.md).
@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_stops_after_patience_iterations_without_improvement(patience) -> None:
    """An equal validation loss is no improvement: the run stops after ``patience``
    iterations past the first, and keeps the first weights."""
    ran, result, _, _ = early_stopping_run(patience, 10)
    assert ran == list(range(1, patience + 1))
    assert result.best_iteration == 1
    assert len(result.cost_curve) == len(result.validation_cost_curve) == 1


def test_without_patience_or_validation_rows_the_run_goes_to_the_end() -> None:
    ran, result, _, _ = early_stopping_run(None, 4)
    assert ran == [1, 2, 3, 4] and result.best_iteration is None
    assert len(result.validation_cost_curve) == 4
    ran, result, _, _ = early_stopping_run(2, 4, validation=False)
    assert ran == [1, 2, 3, 4] and result.best_iteration is None
    assert result.validation_cost_curve is None


def test_early_stopping_keeps_the_weights_after_the_last_pass_when_they_are_best() -> None:
    """A run that improves to its end: the weights after the last pass (measured once
    more) are kept, ``best_iteration`` is ``iterations + 1`` and the curves have a point
    for them."""
    ran, result, net, _ = early_stopping_run(5, 3, alpha=0.05)
    assert ran == [1, 2, 3]
    assert result.best_iteration == 4
    assert len(result.cost_curve) == 4 and np.all(np.diff(result.validation_cost_curve) < 0)
    _, _, final, _ = early_stopping_run(None, 3, alpha=0.05)  # the same run, never stopping
    for a, b in zip(parameters(net), parameters(final)):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(9)
    rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
    X_val, Y_val = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    logits = hidden_and_logits(net, X_val)[1]
    assert result.validation_cost_curve[-1] == LOSSES["sigmoid"](Y_val, logits)


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
    ran, result, net, _ = early_stopping_run(patience, iterations, alpha=4.0)
    if stop is None:  # ran to the end: the weights after the last pass compete too
        assert ran == list(range(1, iterations + 1))
    else:
        assert ran == list(range(1, stop + 1))
    assert 1 <= best < iterations - 1  # the oracle's run improves, then gets worse
    assert result.best_iteration == best + 1
    np.testing.assert_array_equal(result.validation_cost_curve, curve[: best + 1])
    for a, b in zip(parameters(net), starts[best]):
        np.testing.assert_array_equal(a, b)


def test_a_tie_at_the_end_keeps_the_earlier_weights() -> None:
    ran, result, _, _ = early_stopping_run(5, 3)  # the loss never moves; patience outlasts the run
    assert ran == [1, 2, 3]
    assert result.best_iteration == 1


def test_a_validation_loss_never_finite_stops_after_patience_keeping_the_first_weights() -> None:
    with np.errstate(invalid="ignore"):
        ran, result, net, starts = early_stopping_run(2, 10, alpha=0.5, nan_rows=True)
    assert ran == [1, 2]
    assert result.best_iteration == 1
    for a, b in zip(parameters(net), starts[0]):
        np.testing.assert_array_equal(a, b)


def test_a_run_diverging_on_its_last_pass_under_early_stopping_says_so() -> None:
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        early_stopping_run(2, 1, alpha=float("inf"))
    assert str(info.value) == (
        "training diverged: the cost became nan at iteration 2 with train.alpha=inf."
        " Allowed: a smaller train.alpha."
    )
    assert len(info.value.partial_cost) == len(info.value.partial_classic_cost) == 1


# Early stopping describes the weights it keeps.


def small_validated_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    X, X_val = rng.standard_normal((60, 5)), rng.standard_normal((30, 5))
    W = rng.standard_normal((5, 4))
    Y, Y_val = (np.eye(4)[np.argmax(A @ W, axis=1)] for A in (X, X_val))
    return X, Y, Rows(X_val, Y_val)


def train_small(patience: int | None, iterations: int, alpha: float = 0.05):
    X, Y, validation = small_validated_problem()
    net = network([5, 8, 4], "xavier", 0, activation="tanh", output="softmax")
    raw = {"optimizer": "sgd", "batch_size": 16, "alpha": alpha, "iterations": iterations}
    raw |= {"validation_size": 0.2, "patience": patience}
    result = trainer.train(net, Rows(X, Y), train_options(parse({"train": raw})), validation)
    return net, result, (X, Y, validation)


def test_early_stopping_validates_the_weights_after_the_last_pass() -> None:
    """With a patience that never runs out, the weights kept are the final ones when
    they validate best, not those of the pass before (the loop never measured them)."""
    stopped, result, (_, _, held) = train_small(patience=1000, iterations=20)
    plain, _, _ = train_small(patience=None, iterations=20)
    curve = result.validation_cost_curve
    assert curve is not None and np.all(np.diff(curve) < 0)  # still improving at the end
    assert result.best_iteration == 21  # the weights after pass 20
    for kept, final in zip(parameters(stopped), parameters(plain)):
        np.testing.assert_array_equal(kept, final)
    logits = hidden_and_logits(stopped, held.X)[1]
    assert curve[-1] == LOSSES["softmax"](held.Y, logits)


def test_early_stopping_reports_the_costs_of_the_weights_it_keeps() -> None:
    """The curves end at the restored weights: final cost and validation loss are
    theirs, not those of the iteration where training stopped."""
    net, result, (X, Y, held) = train_small(patience=3, iterations=400, alpha=0.5)
    curve = result.validation_cost_curve
    assert result.best_iteration is not None and result.best_iteration <= 400  # stopped
    assert len(result.cost_curve) == len(curve) == result.best_iteration
    assert curve[-1] == curve.min()
    assert result.cost_curve[-1] == pytest.approx(
        trainer.cost(net, Rows(X, Y), 0.0, len(X)), rel=1e-12
    )
    assert curve[-1] == pytest.approx(
        LOSSES["softmax"](held.Y, hidden_and_logits(net, held.X)[1]), rel=1e-12
    )


# ---- going on from a state --------------------------------------------------------------

# Every optimiser and schedule, with and without validation rows, in both float types.
RESUMABLE = {
    "gd": {},
    "sgd": {"optimizer": "sgd", "batch_size": 50},
    "momentum": {"optimizer": "momentum", "batch_size": 64, "momentum": 0.9},
    "nesterov, inverse time": {
        "optimizer": "momentum",
        "batch_size": 33,
        "momentum": 0.5,
        "nesterov": True,
        "schedule": "inverse_time",
        "decay": 0.1,
    },
    "gd, inverse time, L2": {"schedule": "inverse_time", "decay": 0.3, "l2": 0.7},
    "float32 sgd": {"optimizer": "sgd", "batch_size": 40, "dtype": "float32"},
}


def bits(arrays) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


def assert_same_training(a, b) -> None:
    """Two results are the same training, bit for bit: weights, curves, what it reports."""
    assert bits(parameters(a.network)) == bits(parameters(b.network))
    for name in ("cost_curve", "classic_cost_curve", "validation_cost_curve"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
    assert a.validation_accuracy == b.validation_accuracy
    assert bits(a.state.velocities or []) == bits(b.state.velocities or [])
    assert a.state.shuffles == b.state.shuffles and a.state.iteration == b.state.iteration


@pytest.mark.parametrize("validated", [False, True], ids=["train rows", "validation rows"])
@pytest.mark.parametrize("options", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_going_on_from_a_state_is_bit_identical_to_training_straight_through(
    options: dict, validated: bool
) -> None:
    dtype = options.get("dtype", "float64")
    X, Y = (a.astype(dtype) for a in digits_rows(300))
    rows, validation = Rows(X[:240], Y[:240]), Rows(X[240:], Y[240:]) if validated else None
    if not validated:
        rows = Rows(X, Y)
    base = {k: v for k, v in options.items() if k != "dtype"}

    def opts(iterations: int) -> TrainOptions:
        return TrainOptions(alpha=0.3, iterations=iterations, seed=4, **base)

    def start():
        return network([64, 12, 10], "xavier", 3, dtype, "tanh", "softmax")

    straight = trainer.train(start(), rows, opts(17), validation)
    first = trainer.train(start(), rows, opts(6), validation)
    # A copy, as a state that went to a file and back: nothing shared with the first run.
    state = copy.deepcopy(first.state)
    checkpoints: list[int] = []
    watch = Watch(every=5, checkpoint=lambda i, _net: checkpoints.append(i))
    second = trainer.resume(state, rows, opts(11), validation)
    assert second.state.iteration == 11
    third = trainer.resume(copy.deepcopy(second.state), rows, opts(17), validation, watch)
    assert_same_training(straight, third)
    assert checkpoints == [15, 17]  # counted from the start of the whole training
    assert_same_training(first, trainer.train(start(), rows, opts(6), validation))


def test_a_state_is_where_the_training_stands_and_the_first_run_is_unchanged() -> None:
    X, Y = digits_rows(120)
    options = TrainOptions(alpha=0.5, iterations=5, optimizer="momentum", momentum=0.9)
    result = trainer.train(network([64, 8, 10], "uniform", 0), Rows(X, Y), options)
    state = result.state
    assert state.iteration == 5 and state.network is result.network
    assert len(state.velocities) == 4 and any(np.any(v) for v in state.velocities)
    assert np.array_equal(state.cost_curve, result.cost_curve)
    plain = trainer.train(network([64, 8, 10], "uniform", 0), Rows(X, Y), TrainOptions())
    assert plain.state.velocities is None  # plain descent keeps none


def test_going_on_to_where_a_state_stands_trains_nothing() -> None:
    X, Y = digits_rows(120)
    options = TrainOptions(alpha=0.5, iterations=4, optimizer="sgd", batch_size=50)
    first = trainer.train(network([64, 8, 10], "xavier", 1), Rows(X, Y), options)
    before = copy.deepcopy(first.state)
    again = trainer.resume(first.state, Rows(X, Y), options)
    assert_same_training(first, again)
    assert bits(parameters(again.network)) == bits(parameters(before.network))
    assert again.state.shuffles == before.shuffles


def test_early_stopping_keeps_no_state_and_refuses_to_go_on_from_one() -> None:
    X, Y = digits_rows(200)
    rows, validation = Rows(X[:150], Y[:150]), Rows(X[150:], Y[150:])
    stopping = TrainOptions(alpha=0.5, iterations=8, optimizer="sgd", batch_size=50, patience=2)
    stopped = trainer.train(network([64, 8, 10], "xavier", 0), rows, stopping, validation)
    assert stopped.state is None
    plain = dataclasses.replace(stopping, patience=None, iterations=3)
    state = trainer.train(network([64, 8, 10], "xavier", 0), rows, plain, validation).state
    with pytest.raises(ValueError, match="early stopping"):
        trainer.resume(state, rows, stopping, validation)
    with pytest.raises(ValueError, match="from iteration 3 to 2"):
        trainer.resume(state, rows, dataclasses.replace(plain, iterations=2), validation)
