"""The network's parameters and how they start.

Layer ``l`` has ``weights[l]`` of shape ``(n[l+1], n[l])`` (row ``i`` holds the weights
into node ``i`` of the next layer) and ``biases[l]`` of shape ``(n[l+1],)``, as in
algorithm.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Network:
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str = "sigmoid"  # of the hidden layers (activations.HIDDEN)
    output: str = "sigmoid"  # sigmoid (half squared error) or softmax (cross-entropy)

    @property
    def layer_sizes(self) -> list[int]:
        return [self.weights[0].shape[1], *(w.shape[0] for w in self.weights)]

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    def copy(self) -> Network:
        return Network(
            [W.copy() for W in self.weights],
            [b.copy() for b in self.biases],
            self.activation,
            self.output,
        )

    def assign(self, source: Network) -> None:
        """Overwrite these parameters, in place, with ``source``'s."""
        for target, values in zip(self.weights + self.biases, source.weights + source.biases):
            target[...] = values


@dataclass
class Ensemble:
    """Networks of one shape whose output values are averaged: one model.

    Each member is trained on its own; the ensemble's output for a row is the mean of
    the members' outputs (softmax probabilities, or sigmoids), and its label the largest
    of those means.
    """

    members: list[Network]

    def __post_init__(self) -> None:
        shapes = {(tuple(m.layer_sizes), m.activation, m.output) for m in self.members}
        if len(shapes) != 1:
            raise ValueError(f"an ensemble needs members of one shape and kind, got {shapes}")

    @property
    def layer_sizes(self) -> list[int]:
        return self.members[0].layer_sizes

    @property
    def activation(self) -> str:
        return self.members[0].activation

    @property
    def output(self) -> str:
        return self.members[0].output

    @property
    def dtype(self) -> np.dtype:
        return self.members[0].dtype


#: What a trained model is: one network, or an ensemble of them.
Model = Network | Ensemble


def networks(model: Model) -> list[Network]:
    """The networks of ``model``: its members, or the network itself."""
    return model.members if isinstance(model, Ensemble) else [model]


def initialise(layer_sizes: list[int], scheme: str, seed: int, dtype: str = "float64") -> Network:
    """A sigmoid network of ``layer_sizes`` with freshly drawn parameters.

    ``uniform`` is the classic draw: every weight and bias from
    ``RandomState(seed).random_sample``, in the order W1, b1, W2, b2, ..., so that a seed
    gives the network of the reference measurements. ``xavier`` and ``he`` draw
    zero-mean normal weights with variance ``2 / (fan_in + fan_out)`` and ``2 / fan_in``,
    and zero biases. Set ``activation`` and ``output`` on the result for other layers.
    """
    rng = np.random.RandomState(seed)
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(layer_sizes):
        if scheme == "uniform":
            weights.append(rng.random_sample((n_out, n_in)).astype(dtype, copy=False))
            biases.append(rng.random_sample(n_out).astype(dtype, copy=False))
            continue
        variance = 2.0 / (n_in + n_out) if scheme == "xavier" else 2.0 / n_in
        weights.append((rng.standard_normal((n_out, n_in)) * math.sqrt(variance)).astype(dtype))
        biases.append(np.zeros(n_out, dtype=dtype))
    return Network(weights, biases)
