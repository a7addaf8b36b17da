"""Shared budgets: a smaller budget is the prefix of the longer training, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from digits_nn.config import parse
from digits_nn.core.training import Watch
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline.fit import accuracy_on_test, fit
from digits_nn.pipeline.prepared import prepare
from digits_nn.sweeps import budgets
from helpers import assert_same_parameters

SHARED_CONFIGS = {
    "classic kernel": {},
    "momentum, mini-batches": {"optimizer": "momentum", "batch_size": 64, "nesterov": True},
    "softmax, L2, validation rows": {"l2": 0.5, "validation_size": 0.2},
    "augmented rows": {"augment": {"copies": 1, "shift": 1.0}},
}


@pytest.mark.parametrize("options", SHARED_CONFIGS.values(), ids=SHARED_CONFIGS.keys())
def test_a_shared_budget_is_bit_identical_to_training_that_budget_alone(options: dict) -> None:
    options = dict(options)
    model = {"output": "softmax", "activation": "relu", "init": "he"} if "l2" in options else {}
    data_section = {"augment": options.pop("augment")} if "augment" in options else {}
    raw = {"train": {"iterations": 40, "alpha": 0.3, **options}, "model": model}
    raw["data"] = data_section
    raw["tracking"] = {"accuracy_every": 7}
    cfg = parse(raw)
    data = prepare(cfg)
    shared = budgets.train_to_largest(cfg, data, [40, 25, 13], track=True)
    for budget in (13, 25, 40):
        alone_cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, iterations=budget)
        )
        curve: dict[int, float] = {}

        def record(i, net, curve=curve):
            curve[i] = accuracy_on_test(net, data.split)

        alone = fit(alone_cfg, data, Watch(cfg.tracking.accuracy_every, record))
        got = shared.result(budget)
        assert_same_parameters(alone.network, got.network)
        assert np.array_equal(alone.cost_curve, got.cost_curve)
        assert np.array_equal(alone.classic_cost_curve, got.classic_cost_curve)
        if alone.validation_cost_curve is None:
            assert got.validation_cost_curve is None
        else:
            assert np.array_equal(alone.validation_cost_curve, got.validation_cost_curve)
        assert alone.validation_accuracy == got.validation_accuracy
        assert alone.best_iteration == got.best_iteration
        assert shared.accuracy_curve(budget) == curve


def test_early_stopping_and_ensemble_budgets_are_not_shared() -> None:
    cfg = parse({"train": {"validation_size": 0.2, "patience": 5, "optimizer": "sgd"}})
    assert not budgets.can_share(cfg)
    assert not budgets.can_share(parse({"model": {"members": 2}}))
    assert budgets.can_share(parse({"tracking": {"accuracy_every": 7}}))


def outcome(train) -> tuple[str, list[float]]:
    """What a training ends with: ``ok`` or its divergence error, and its cost curve."""
    try:
        with np.errstate(all="ignore"):
            result = train()
    except TrainingDiverged as error:
        return str(error), error.partial_cost.tolist()
    return "ok", result.cost_curve.tolist()


# A budget whose last update makes the weights non-finite fails, as its standalone run
# does, though the longer training goes on past it.
def test_a_diverging_shared_training_fails_exactly_the_budgets_a_standalone_run_fails() -> None:
    raw = {
        "model": {"activation": "relu", "output": "softmax", "init": "he"},
        "train": {"alpha": 20, "optimizer": "sgd", "batch_size": 32, "iterations": 6},
        "tracking": {"accuracy_every": 0},
    }
    cfg = parse(raw)
    data = prepare(cfg)
    with np.errstate(all="ignore"):
        shared = budgets.train_to_largest(cfg, data, [6, 5, 4, 1], track=False)
    seen = {}
    for budget in (1, 4, 5, 6):
        alone = parse({**raw, "train": {**raw["train"], "iterations": budget}})
        seen[budget] = outcome(lambda alone=alone: fit(alone, data))
        assert outcome(lambda budget=budget: shared.result(budget)) == seen[budget], budget
    assert [seen[b][0][:30] for b in (1, 4, 5, 6)] == [
        "ok",
        "ok",
        "training diverged: the update ",  # of iteration 5 left non-finite weights
        "training diverged: the cost be",  # came nan at iteration 6
    ]


def test_a_peer_shares_no_budget() -> None:
    """A peer trains no iterations: reading its budgets off the network's training would
    record the network under the peer's name."""
    assert not budgets.can_share(parse({"peer": "svc"}))


@pytest.mark.parametrize(
    ("sizes", "accuracy_every", "every"),
    [
        ([500, 1000, 3000, 10000], 100, 100),
        ([500, 1000, 3000, 10000], 0, 500),
        ([20, 30], 7, 1),
        ([40], 0, 40),
        ([6, 4], 2, 2),
    ],
)
def test_a_shared_training_shows_its_network_at_the_gcd_of_budgets_and_checkpoints(
    sizes: list[int], accuracy_every: int, every: int
) -> None:
    assert budgets.watch_every(sizes, accuracy_every) == every


def test_a_shared_training_copies_its_network_only_where_a_budget_or_checkpoint_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = parse({"train": {"iterations": 40}, "tracking": {"accuracy_every": 10}})
    data = prepare(cfg)
    seen: list[int] = []
    real_fit = budgets.fit

    def watched_fit(cfg, data, watch):
        def checkpoint(iteration, network):
            seen.append(iteration)
            watch.checkpoint(iteration, network)

        return real_fit(cfg, data, Watch(watch.every, checkpoint, watch.progress))

    monkeypatch.setattr(budgets, "fit", watched_fit)
    budgets.train_to_largest(cfg, data, [40, 20, 30], track=True)
    assert seen == [10, 20, 30, 40]


def test_a_budgets_training_time_is_the_time_to_reach_it_or_to_the_trainings_end() -> None:
    shared = budgets.SharedTraining(12, {}, {}, 0, seconds={4: 1.5, 12: 6.0})
    assert shared.training_seconds(4) == 1.5
    assert shared.training_seconds(12) == 6.0
    # A budget the training diverged before reaching: it took the whole training.
    assert shared.training_seconds(8) == 6.0
