"""The training loop: full-batch gradient descent with a cost curve and a divergence check."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from digits_nn.errors import TrainingDiverged
from digits_nn.network import Network, Workspace, classic_cost_of, half_squared_error_of

# How often the progress bar's cost read-out is refreshed; every iteration would cost
# more than the iteration itself on this small network.
_PROGRESS_EVERY = 50


@dataclass
class TrainingResult:
    network: Network
    cost_curve: np.ndarray  # the minimised cost at iteration 1..N, before that update
    classic_cost_curve: np.ndarray  # mean ||y - h_out|| at the same points
    validation_cost_curve: np.ndarray | None = None  # with validation rows only
    best_iteration: int | None = None  # early stopping: the weights kept are from here
    validation_accuracy: float | None = None  # on the validation rows, if any

    @property
    def final_cost(self) -> float:
        return float(self.cost_curve[-1])


def gradient_descent(
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    alpha: float,
    iterations: int,
    progress: bool = False,
    on_checkpoint: Callable[[int, Network], None] | None = None,
    checkpoint_every: int = 0,
) -> TrainingResult:
    """Train ``network`` in place on all rows of ``X`` for ``iterations`` updates.

    Iteration ``i`` records the cost of the weights it starts from, then updates them,
    as the classic run did. A non-finite cost raises :class:`TrainingDiverged`
    carrying the curve recorded so far. ``on_checkpoint(iteration, network)`` is called
    every ``checkpoint_every`` iterations and after the last (for the accuracy curve).
    """
    cost_curve = np.empty(iterations)
    classic_curve = np.empty(iterations)
    workspace = Workspace(network, X, Y)
    bar = tqdm(total=iterations, desc="train", unit="it", disable=not progress, leave=False)
    # exp(-z) overflowing to inf is the sigmoid's correct limit 0, not a fault.
    with bar, np.errstate(over="ignore"):
        try:
            for i in range(iterations):
                workspace.feed_forward()
                norms = workspace.output_error_norms()
                cost_curve[i] = half_squared_error_of(norms)
                classic_curve[i] = classic_cost_of(norms)
                if not math.isfinite(cost_curve[i]):
                    raise TrainingDiverged(
                        f"training diverged: the cost became {cost_curve[i]} at iteration"
                        f" {i + 1} with train.alpha={alpha}. Allowed: a smaller train.alpha.",
                        cost_curve[:i].copy(),
                        classic_curve[:i].copy(),
                    )
                workspace.descend(alpha)
                if on_checkpoint is not None and is_checkpoint(i + 1, checkpoint_every, iterations):
                    workspace.write_to(network)
                    on_checkpoint(i + 1, network)
                if (i + 1) % _PROGRESS_EVERY == 0 or i + 1 == iterations:
                    bar.set_postfix(cost=f"{cost_curve[i]:.4f}", refresh=False)
                    bar.update((i + 1) - bar.n)
        finally:
            # Also after a divergence, as the network was updated in place before.
            workspace.write_to(network)
    return TrainingResult(network, cost_curve, classic_curve)


def is_checkpoint(iteration: int, every: int, iterations: int) -> bool:
    return every > 0 and (iteration % every == 0 or iteration == iterations)
