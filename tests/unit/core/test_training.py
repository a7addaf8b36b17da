"""What both trainers share: their options, when a checkpoint falls, and the one
divergence error."""

from __future__ import annotations

import numpy as np
import pytest

from digits_nn.core import kernel, trainer
from digits_nn.core.forward import forward
from digits_nn.core.losses import classic_cost, half_squared_error
from digits_nn.core.network import Network, initialise
from digits_nn.core.trainer import Rows
from digits_nn.core.training import TrainOptions, Watch, diverged, is_checkpoint
from digits_nn.errors import TrainingDiverged


def test_the_defaults_are_the_classic_run_and_only_it_is_classic() -> None:
    classic = TrainOptions()
    assert (classic.alpha, classic.iterations, classic.optimizer) == (0.25, 3000, "gd")
    assert classic.is_classic
    for option in (
        {"optimizer": "sgd"},
        {"optimizer": "momentum"},
        {"batch_size": 32},
        {"l2": 0.1},
        {"schedule": "inverse_time", "decay": 0.5},
        {"patience": 3},
    ):
        assert not TrainOptions(**option).is_classic, option


def test_the_rate_is_alpha_or_its_inverse_time_decay() -> None:
    assert [TrainOptions(alpha=0.5).rate(t) for t in (0, 9)] == [0.5, 0.5]
    decayed = TrainOptions(alpha=0.5, schedule="inverse_time", decay=0.25)
    assert [decayed.rate(t) for t in (0, 4, 12)] == [0.5, 0.25, 0.125]


# Mutation testing (docs/mutation.md).
def test_checkpoints_fall_every_so_many_iterations_and_at_the_last_never_with_zero() -> None:
    assert [i for i in range(1, 11) if is_checkpoint(i, 4, 10)] == [4, 8, 10]
    assert [i for i in range(1, 11) if is_checkpoint(i, 1, 10)] == list(range(1, 11))
    assert not any(is_checkpoint(i, 0, 10) for i in range(1, 11))  # 0: never, no division
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    seen: list[int] = []
    options = TrainOptions(alpha=0.5, iterations=5)
    watch = Watch(checkpoint=lambda i, _: seen.append(i))
    kernel.gradient_descent(initialise([3, 2, 2], "uniform", 0), X, Y, options, watch)
    trainer.train(initialise([3, 2, 2], "uniform", 0), Rows(X, Y), options, watch=watch)
    assert seen == []  # every defaults to 0: never


# Mutation testing (docs/mutation.md).
def test_a_diverged_run_says_where_and_what_to_change_on_both_paths() -> None:
    """The whole message, and the curves recorded up to the failing iteration, from the
    kernel and from the general trainer alike."""
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    options = TrainOptions(alpha=float("inf"), iterations=5)  # the config refuses it
    runs = {
        "kernel": lambda net: kernel.gradient_descent(net, X, Y, options),
        "general": lambda net: trainer.train(net, Rows(X, Y), options),
    }

    def net_before() -> Network:
        return initialise([3, 2, 2], "uniform", 0)

    for run in runs.values():
        net = net_before()
        first = half_squared_error(Y, forward(net, X)[-1])
        with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
            run(net)
        assert str(info.value) == (
            "training diverged: the cost became nan at iteration 2 with train.alpha=inf."
            " Allowed: a smaller train.alpha."
        )
        assert info.value.partial_cost.tolist() == pytest.approx([first], rel=1e-12)
        classic = classic_cost(Y, forward(net_before(), X)[-1])
        assert info.value.partial_classic_cost.tolist() == pytest.approx([classic], rel=1e-12)


# The weights after the last update are checked too: without that, a run whose last
# update overflows exits 0, and its model file is refused by its own reader.
def test_weights_the_last_update_made_non_finite_fail_the_training_on_both_paths() -> None:
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    options = TrainOptions(alpha=float("inf"), iterations=1)  # one update, then the end
    runs = {
        "kernel": lambda net: kernel.gradient_descent(net, X, Y, options),
        "general": lambda net: trainer.train(net, Rows(X, Y), options),
    }
    first = half_squared_error(Y, forward(initialise([3, 2, 2], "uniform", 0), X)[-1])
    for name, run in runs.items():
        with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
            run(initialise([3, 2, 2], "uniform", 0))
        assert str(info.value) == (
            "training diverged: the update of iteration 1 left non-finite weights with"
            " train.alpha=inf. Allowed: a smaller train.alpha."
        ), name
        assert info.value.partial_cost.tolist() == pytest.approx([first], rel=1e-12), name
        assert len(info.value.partial_classic_cost) == 1, name


def test_a_divergence_error_keeps_its_own_copy_of_the_curves_it_carries() -> None:
    """The kernel hands over views of the curve buffers it fills: the error's curves stay
    as they were when it was raised, whatever is written into those buffers after."""
    cost, classic = np.array([3.0, 2.0, np.nan]), np.array([4.0, 3.0, np.nan])
    error = diverged(float(cost[2]), cost[:2], classic[:2], 0.5)
    cost[:], classic[:] = 0.0, 0.0
    assert error.partial_cost.tolist() == [3.0, 2.0]
    assert error.partial_classic_cost.tolist() == [4.0, 3.0]
