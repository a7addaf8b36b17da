"""The data a run works on: the data stages' results, from their files or in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_nn.config import Config
from digits_nn.data import rows, steps
from digits_nn.data.steps import OneHot, Scaled, Split
from digits_nn.errors import ConfigError


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
    digits = steps.load_digits()
    partition = rows.partition(digits.y, cfg.data, cfg.seed)
    check_split(cfg, steps.take(digits.X, digits.y, partition))
    fitted = rows.scaling_rows(digits.y, cfg.data, cfg.seed, cfg.train.validation_size)
    scaled = steps.standardise(digits, fitted, cfg.data.scaling)
    split = steps.take(scaled.X, scaled.y, partition)
    return PreparedData(scaled, split, steps.one_hot_split(split))


def check_split(cfg: Config, split: Split) -> None:
    """Refuse, before any run opens, validation rows that this split cannot give.

    They are drawn per digit, so every digit needs two training rows, one to fit on
    and one to validate. The config checks the counts; only the split (its test share
    and seed) knows which digits a small training share holds.
    """
    if cfg.train.validation_size == 0.0:
        return
    digit, count = steps.scarcest_digit(split.y_train)
    if count >= 2:
        return
    raise ConfigError(
        f"train.validation_size={cfg.train.validation_size!r} is not allowed with this split"
        f" (data.test_size={cfg.data.test_size!r}, seed={cfg.seed}): its {len(split.y_train)}"
        f" training rows hold {count or 'no'} row{'' if count else 's'} of digit {digit}, and"
        " validation rows are drawn per digit, which needs 2 of each (one to fit on, one to"
        " validate). Allowed: 0, or a smaller data.test_size."
    )
