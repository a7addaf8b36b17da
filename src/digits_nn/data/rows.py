"""Which rows play which part: the test rows (a seeded share, or one fold of a repeated
stratified k-fold), the training rows, and the rows the scaler is fitted on.

Pure functions of the labels and a few settings, so that the ``scale`` stage, which
runs before ``split``, knows the rows ``split`` will choose, and so that anything else
(a peer, a benchmark) can use exactly the same rows. Indices refer to the dataset's
rows in their original order.

The settings come as any object with the attributes of :class:`Holdout` (the config's
``data`` section has them); :class:`Holdout` itself is there for callers without a
config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from digits_nn.data.steps import validation_rows


class HoldoutSpec(Protocol):
    """What decides the test rows (the config's ``data`` section is one)."""

    @property
    def test_size(self) -> float: ...
    @property
    def folds(self) -> int | None: ...
    @property
    def fold(self) -> int | None: ...
    @property
    def repeat(self) -> int | None: ...
    @property
    def scaler_rows(self) -> str: ...


@dataclass(frozen=True)
class Holdout:
    """The test rows: ``test_size`` of the rows, or, with ``folds`` = k, fold ``fold``
    (0..k-1) of repeat ``repeat`` (0, 1, ...) of a repeated stratified k-fold; and which
    rows the scaler is fitted on: ``"all"`` or ``"train"``."""

    test_size: float = 0.4
    folds: int | None = None
    fold: int | None = None
    repeat: int | None = None
    scaler_rows: str = "train"


def partition(y: np.ndarray, holdout: HoldoutSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows) as indices into ``y``'s rows.

    Without folds: scikit-learn's ``train_test_split`` with ``random_state=seed`` (not
    stratified, as the classic run split). With folds: the fold of scikit-learn's
    ``RepeatedStratifiedKFold(n_splits=folds, random_state=seed)``, repeat by repeat.
    """
    if holdout.folds is None:
        return split_rows(len(y), holdout.test_size, seed)
    return fold_rows(y, holdout.folds, holdout.fold or 0, holdout.repeat or 0, seed)


def split_rows(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``train_test_split(X, y, test_size=test_size, random_state=seed)`` puts
    on each side: its shuffle depends on the number of rows alone, never their values."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(n), test_size=test_size, random_state=seed)
    return train, test


def fold_rows(
    y: np.ndarray, folds: int, fold: int, repeat: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``fold`` of repeat ``repeat`` of ``RepeatedStratifiedKFold(n_splits=folds,
    random_state=seed)``: every row is a test row in exactly one fold of each repeat,
    and each fold keeps the classes' proportions."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    # The repeats draw their shuffles one after another from one generator: repeat j is
    # the same whatever the number of repeats after it.
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeat + 1, random_state=seed)
    wanted = repeat * folds + fold
    for number, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        if number == wanted:
            return train, test
    raise ValueError(f"fold {fold} of repeat {repeat}: there are {folds} folds")


def scaling_rows(
    y: np.ndarray, holdout: HoldoutSpec, seed: int, validation_size: float
) -> np.ndarray | None:
    """The rows the scaler is fitted on: None (every row) with ``scaler_rows="all"``;
    otherwise the training rows without the validation rows that training will hold out
    of them (``validation_size`` of them, stratified and seeded as the trainer holds them)."""
    if holdout.scaler_rows == "all":
        return None
    train, _ = partition(y, holdout, seed)
    if validation_size == 0.0:
        return train
    fitted, _ = validation_rows(y[train], validation_size, seed)
    return train[fitted]
