"""The update rules of the general trainer, as small objects that step the parameters.

Each takes the parameters (weights then biases, updated in place) and their mean
gradients at the current weights, and the learning rate of the iteration.
"""

from __future__ import annotations

import numpy as np

from digits_nn.core.training import TrainOptions


class Descent:
    """(Stochastic) gradient descent: ``P -= rate * G``."""

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], rate: float) -> None:
        for P, G in zip(params, grads):
            P -= rate * G


class Momentum:
    """``v = mu v - rate g``, ``P += v``; or Nesterov's variant in the form that needs
    the gradient only at the current weights: ``P += -mu v_old + (1 + mu) v``."""

    def __init__(self, velocities: list[np.ndarray], mu: float, nesterov: bool) -> None:
        self.velocities = velocities
        self.mu, self.nesterov = mu, nesterov

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], rate: float) -> None:
        mu = self.mu
        for P, G, V in zip(params, grads, self.velocities):
            previous = V.copy() if self.nesterov else None
            V *= mu
            V -= rate * G
            if self.nesterov:
                P += (1.0 + mu) * V - mu * previous
            else:
                P += V


def optimiser(
    options: TrainOptions, params: list[np.ndarray], velocities: list[np.ndarray] | None = None
) -> Descent | Momentum:
    """The rule ``options`` asks for; momentum 0 is plain descent. Momentum goes on with
    ``velocities`` (updated in place) where a training goes on, otherwise starts at zero."""
    mu = options.momentum if options.optimizer == "momentum" else 0.0
    if mu == 0.0:
        return Descent()
    if velocities is None:
        velocities = [np.zeros_like(P) for P in params]
    return Momentum(velocities, mu, options.nesterov)
