"""Shared iteration budgets: one training to the largest budget stands for every smaller one.

Iteration ``n`` of a training does not depend on how many iterations come after it, so
the network after ``n`` iterations of a 10000-iteration run *is* the network a
standalone ``n``-iteration run ends with, bit for bit, and its cost curve is the first
``n`` points. :func:`train_to_largest` trains once and keeps, at each smaller budget, a
copy of the weights and everything a standalone run would report; each budget is then
recorded as its own run exactly as a standalone one would be.

Early stopping (``train.patience``) is one exception: a standalone run validates and
restores its best weights at its own end, which the longer run does not do at ``n``.
An ensemble (``model.members > 1``) is the other: its members train one after another,
so no moment of the training holds the whole model at ``n``. Such configurations are
not shared (:func:`can_share`); each budget trains apart.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from digits_nn.config import Config
from digits_nn.core import trainer
from digits_nn.core.network import Network
from digits_nn.core.training import TrainingResult, Watch, check_final_weights, is_checkpoint
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline.fit import accuracy_on_test, fit, validation_set
from digits_nn.pipeline.prepared import PreparedData

log = logging.getLogger(__name__)


def can_share(cfg: Config) -> bool:
    """Whether budget ``n`` of this configuration is the prefix of a longer training (a
    peer has no iterations to share, and an ensemble's members train apart)."""
    return cfg.train.patience is None and cfg.peer is None and cfg.model.members == 1


@dataclass
class SharedTraining:
    """One training to the largest budget, read at every budget."""

    largest: int
    results: dict[int, TrainingResult]  # budget -> what a standalone run of it returns
    accuracy: dict[int, float]  # test accuracy at every checkpoint of any budget
    every: int  # tracking.accuracy_every
    # budget -> seconds the training took to reach it (a standalone run's training time);
    # the largest budget's, or the point of a divergence, under ``largest``
    seconds: dict[int, float] = field(default_factory=dict)
    diverged: TrainingDiverged | None = None  # the longer training's own divergence
    # budget -> the divergence a standalone run of it ends with, where its last update
    # left non-finite weights (the longer training goes on, to fail at its next cost)
    failures: dict[int, TrainingDiverged] = field(default_factory=dict)

    def result(self, budget: int) -> TrainingResult:
        """The standalone result of ``budget``; raises as that run would if it diverged."""
        if budget in self.failures:
            raise self.failures[budget]
        if budget not in self.results:
            assert self.diverged is not None
            raise self.diverged
        return self.results[budget]

    def training_seconds(self, budget: int) -> float:
        """How long the training took to reach ``budget`` (or to end, if it did first)."""
        return self.seconds.get(budget, self.seconds[self.largest])

    def accuracy_curve(self, budget: int) -> dict[int, float]:
        """The test-accuracy points a standalone run of ``budget`` records."""
        return {
            i: value
            for i, value in self.accuracy.items()
            if i <= budget and is_checkpoint(i, self.every, budget)
        }


def watch_every(budgets: list[int], accuracy_every: int) -> int:
    """How often a shared training must show its network: every budget and every accuracy
    checkpoint (0: none) is a multiple of this. Showing it copies the weights out of the
    training's workspace, which at every iteration would cost more than the checks."""
    return math.gcd(*budgets, accuracy_every)


def train_to_largest(
    cfg: Config, data: PreparedData, budgets: list[int], track: bool
) -> SharedTraining:
    """Train ``cfg`` (whose ``train.iterations`` is the largest budget) once, keeping the
    network at every smaller budget. ``track``: also measure the test-accuracy curve."""
    every = cfg.tracking.accuracy_every
    largest = cfg.train.iterations
    smaller = sorted(b for b in budgets if b < largest)
    snapshots: dict[int, Network] = {}
    accuracy: dict[int, float] = {}

    def at_each_iteration(iteration: int, network: Network) -> None:
        if track and any(is_checkpoint(iteration, every, b) for b in [*smaller, largest]):
            accuracy[iteration] = accuracy_on_test(network, data.split)
        if iteration in smaller:
            snapshots[iteration] = network.copy()
            shared.seconds[iteration] = time.perf_counter() - started

    shared = SharedTraining(largest, {}, accuracy, every)
    started = time.perf_counter()
    try:
        watch = Watch(
            every=watch_every([*smaller, largest], every if track else 0),
            checkpoint=at_each_iteration,
        )
        full = fit(cfg, data, watch)
    except TrainingDiverged as error:
        full, shared.diverged = None, error
        cost, classic, validation = error.partial_cost, error.partial_classic_cost, None
    else:
        shared.results[largest] = full
        cost, classic = full.cost_curve, full.classic_cost_curve
        validation = full.validation_cost_curve
    shared.seconds[largest] = time.perf_counter() - started
    rows = validation_set(cfg, data)
    for budget, network in snapshots.items():
        try:  # as a standalone run of this budget checks the weights it ends with
            check_final_weights(network, cost[:budget], classic[:budget], cfg.train.alpha)
        except TrainingDiverged as error:
            shared.failures[budget] = error
            continue
        shared.results[budget] = TrainingResult(
            network,
            cost[:budget].copy(),
            classic[:budget].copy(),
            None if validation is None else validation[:budget].copy(),
            None if full is None or full.best_iteration is None else budget,
            None if rows is None else trainer.accuracy(network, rows),
        )
    return shared
