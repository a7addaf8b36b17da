"""The data a run works on: the data stages' results, from their files or in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_nn.config import Config
from digits_nn.data import steps
from digits_nn.data.steps import OneHot, Scaled, Split


@dataclass(frozen=True)
class PreparedData:
    """What ``load -> scale -> split -> onehot`` leave for training and evaluation."""

    scaled: Scaled  # every row, and the fitted scaling that travels with the model
    split: Split
    onehot: OneHot

    @property
    def test_pixels(self) -> np.ndarray:
        """The test rows as the 0..16 pixels they were, to draw them."""
        return steps.raw_pixels(self.split.X_test, self.scaled)


def prepare(cfg: Config) -> PreparedData:
    """load -> scale -> split -> onehot, chained in memory, as the DVC stages chain them
    through their files."""
    scaled = steps.standardise(steps.load_digits(), cfg.data.scaling)
    split = steps.split(scaled.X, scaled.y, cfg.data.test_size, cfg.seed)
    return PreparedData(scaled, split, steps.one_hot_split(split))
