"""The data steps of the pipeline: arrays in, arrays out, no file I/O.

scikit-learn is imported inside the steps that use it, so that a stage which does
not (``onehot``) starts without paying for the import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_nn.data import digits


@dataclass
class Dataset:
    X: np.ndarray  # (n, 64) float64 pixels
    y: np.ndarray  # (n,) int64 labels 0..9


@dataclass
class Scaled:
    X: np.ndarray  # (n, 64) standardised features
    y: np.ndarray
    mean: np.ndarray  # (64,) the fitted per-pixel mean ...
    scale: np.ndarray  # ... and scale, so raw pixels can be scaled the same way later


@dataclass
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass
class OneHot:
    Y_train: np.ndarray  # (n_train, 10)
    Y_test: np.ndarray  # (n_test, 10)


def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits: X (1797, 64) float64 in 0..16, y (1797,) int64."""
    from sklearn.datasets import load_digits as sklearn_digits

    loaded = sklearn_digits()
    return Dataset(loaded.data.astype(np.float64), loaded.target.astype(np.int64))


def standardise(data: Dataset, rows: np.ndarray | None = None, how: str = "per_pixel") -> Scaled:
    """Scaled as :func:`scaling` fits it (``how``) on ``rows`` (indices; None: every row),
    applied to every row.

    Fitted on every row, the scaling carries the test rows' means and variances into
    training: the classic run's order (``data.scaler_rows=all``). Fitted on the training
    rows alone (:func:`digits_nn.data.rows.scaler_rows`), it does not.
    """
    mean, scale = scaling(data.X if rows is None else data.X[rows], how)
    return Scaled((data.X - mean) / scale, data.y, mean, scale)


def scaling(X: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(mean, scale)`` per pixel that ``(X - mean) / scale`` standardises with.

    ``per_pixel``: each pixel's own mean and standard deviation, as scikit-learn's
    StandardScaler fits them (a constant pixel keeps scale 1). ``global``: one mean and
    one standard deviation over every value of ``X``, repeated for each pixel, so that
    a pixel that is nearly always 0 stays near the others' scale instead of becoming an
    outlier when a shifted digit lights it.
    """
    if how == "global":
        std = float(X.std())
        return np.full(X.shape[1], X.mean()), np.full(X.shape[1], std if std > 0 else 1.0)
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    return scaler.mean_, scaler.scale_


def split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> Split:
    """A seeded random train/test split (40 % test gives 1078 / 719 rows)."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed
    )
    return Split(X_train, X_test, y_train, y_test)


def take(X: np.ndarray, y: np.ndarray, rows: tuple[np.ndarray, np.ndarray]) -> Split:
    """The split whose training and test rows are ``rows`` (two index arrays, as
    :func:`digits_nn.data.rows.partition` gives them), each side in that order."""
    train, test = rows
    return Split(X[train], X[test], y[train], y[test])


def one_hot(y: np.ndarray, n_classes: int = digits.N_CLASSES) -> np.ndarray:
    """Label ``k`` becomes a row with a 1 at index ``k``."""
    return np.eye(n_classes)[y]


def one_hot_split(split: Split) -> OneHot:
    """The one-hot targets of both halves of a split."""
    return OneHot(one_hot(split.y_train), one_hot(split.y_test))


def validation_rows(labels: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training rows fitted on and of the validation rows: a stratified,
    seeded share of the *training* rows, never the test rows (drawn per digit, so every
    digit needs two of them: :func:`scarcest_digit`)."""
    from sklearn.model_selection import train_test_split

    fit, held = train_test_split(
        np.arange(len(labels)), test_size=size, random_state=seed, stratify=labels
    )
    return fit, held


def scarcest_digit(labels: np.ndarray) -> tuple[int, int]:
    """The digit with the fewest rows in ``labels``, and how many it has (0 if absent)."""
    counts = np.bincount(labels, minlength=digits.N_CLASSES)
    return int(counts.argmin()), int(counts.min())


def without_validation(split: Split, size: float, seed: int) -> Split:
    """The split as training saw it: its train rows are the rows fitted on, without the
    validation rows, so that ``train_accuracy`` is measured on the rows trained on."""
    if size == 0.0:
        return split
    fit, _ = validation_rows(split.y_train, size, seed)
    return Split(split.X_train[fit], split.X_test, split.y_train[fit], split.y_test)


def raw_pixels(X_scaled: np.ndarray, scaled: Scaled) -> np.ndarray:
    """Undo the standardisation, to draw digits as the 0..16 pixels they were."""
    return X_scaled * scaled.scale + scaled.mean
