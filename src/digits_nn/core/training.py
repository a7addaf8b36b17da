"""What both trainers share: their options, what they return, how a caller watches
them, the state a training can go on from, and the one divergence check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digits_nn.core.network import Model, Network
from digits_nn.errors import TrainingDiverged


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the config's ``train`` section as the core needs it, plus the seed
    of the mini-batch shuffles. The defaults are the classic run's."""

    alpha: float = 0.25
    iterations: int = 3000
    optimizer: str = "gd"  # gd (full batch), sgd or momentum
    batch_size: int | None = None  # rows per update; None: all rows
    momentum: float = 0.0  # optimizer=momentum only
    nesterov: bool = False  # optimizer=momentum only
    l2: float = 0.0
    schedule: str = "constant"  # or inverse_time: alpha / (1 + decay * t)
    decay: float = 0.0
    patience: int | None = None  # early stopping on the validation cost
    seed: int = 0  # of the shuffles, on a stream of its own

    @property
    def is_classic(self) -> bool:
        """Plain full-batch gradient descent: what the classic kernel trains."""
        return (
            self.optimizer == "gd"
            and self.batch_size is None
            and self.l2 == 0.0
            and self.schedule == "constant"
            and self.patience is None
        )

    def rate(self, iteration: int) -> float:
        """The learning rate of (0-based) ``iteration``."""
        if self.schedule == "inverse_time":
            return self.alpha / (1.0 + self.decay * iteration)
        return self.alpha


@dataclass
class TrainerState:
    """Where a training of the general trainer stands after ``iteration`` iterations:
    everything it needs to go on exactly as if it had never stopped.

    ``shuffles`` is the state of the mini-batch shuffles' generator
    (``Generator.bit_generator.state``: plain ints and strings); ``velocities`` the
    optimiser's, in the order weights then biases (None for plain descent). The curves
    hold one point per iteration done, in the dtype the training computes them in.
    """

    network: Network
    iteration: int
    shuffles: dict
    velocities: list[np.ndarray] | None
    cost_curve: np.ndarray
    classic_cost_curve: np.ndarray
    validation_cost_curve: np.ndarray | None = None


@dataclass
class TrainingResult:
    network: Model  # one network, or an ensemble
    cost_curve: np.ndarray  # the minimised cost at iteration 1..N, before that update
    classic_cost_curve: np.ndarray  # mean ||y - h_out|| at the same points
    validation_cost_curve: np.ndarray | None = None  # with validation rows only
    best_iteration: int | None = None  # early stopping: the weights kept are from here
    validation_accuracy: float | None = None  # on the validation rows, if any
    state: TrainerState | None = None  # the general trainer's, to go on from (no early stopping)

    @property
    def final_cost(self) -> float:
        return float(self.cost_curve[-1])


@dataclass(frozen=True)
class Watch:
    """How a caller follows a training as it goes.

    ``checkpoint(iteration, network)`` sees the network every ``every`` iterations and
    after the last (0: never); ``progress(iteration, cost)`` hears of every iteration.
    Both get 1-based iteration numbers; the network must not be kept, only read or copied.
    """

    every: int = 0
    checkpoint: Callable[[int, Model], None] | None = None
    progress: Callable[[int, float], None] | None = None

    def due(self, iteration: int, iterations: int) -> bool:
        return self.checkpoint is not None and is_checkpoint(iteration, self.every, iterations)


#: A training nobody watches.
UNWATCHED = Watch()


def is_checkpoint(iteration: int, every: int, iterations: int) -> bool:
    """Whether ``iteration`` of ``iterations`` is one of every ``every`` (or the last)."""
    return every > 0 and (iteration % every == 0 or iteration == iterations)


def diverged(cost: float, cost_so_far: np.ndarray, classic_so_far: np.ndarray, alpha: float):
    """The error of a training whose cost became ``cost`` (not finite) after the points
    ``cost_so_far`` and ``classic_so_far``, which it carries."""
    return TrainingDiverged(
        f"training diverged: the cost became {cost} at iteration {len(cost_so_far) + 1}"
        f" with train.alpha={alpha}. Allowed: a smaller train.alpha.",
        np.array(cost_so_far, copy=True),
        np.array(classic_so_far, copy=True),
    )


def check_final_weights(
    network: Network, cost_curve: np.ndarray, classic_curve: np.ndarray, alpha: float
) -> None:
    """Raise :class:`TrainingDiverged` if the last update left a non-finite weight or bias.

    Each iteration checks the cost of the weights it starts from, so the weights of the
    last update are checked only here; the model file's reader refuses such weights.
    """
    if all(np.isfinite(p).all() for p in (*network.weights, *network.biases)):
        return
    raise TrainingDiverged(
        f"training diverged: the update of iteration {len(cost_curve)} left non-finite"
        f" weights with train.alpha={alpha}. Allowed: a smaller train.alpha.",
        np.array(cost_curve, copy=True),
        np.array(classic_curve, copy=True),
    )
