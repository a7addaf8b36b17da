"""The statistics of accuracies measured on resampled rows: their spread, and whether two
configurations measured on the same resamples differ by more than noise.

The resamples (the folds of a k-fold, or seeded train/test splits) share most of their
training rows, so their accuracies are correlated, and the plain standard error of
their mean is too small: a plain paired t-test over them finds differences that are
not there. Nadeau and Bengio (2003, "Inference for the generalization error") correct
the variance of the mean of J such estimates from ``s^2 / J`` to
``(1/J + n_test/n_train) s^2``; Bouckaert and Frank (2004) showed the corrected test
keeps its nominal error rate for repeated k-fold cross-validation, where
``n_test/n_train = 1/(k-1)``. Both the interval of one configuration's mean and the
paired test of two configurations use it here, with Student's t on J - 1 degrees of
freedom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Two configurations whose paired p-value is at least this are indistinguishable.
ALPHA = 0.05
LEVEL = 0.95  # of every interval


@dataclass(frozen=True)
class Spread:
    """One configuration's accuracies over ``n`` resamples: their mean, standard
    deviation (n - 1 in the denominator) and the corrected 95 % interval of the mean."""

    n: int
    mean: float
    std: float
    low: float
    high: float


@dataclass(frozen=True)
class Paired:
    """B - A on the same ``n`` resamples: the mean difference, its corrected 95 %
    interval, the corrected t statistic and its two-sided p-value (``n - 1`` df)."""

    n: int
    difference: float
    low: float
    high: float
    t: float
    p: float

    @property
    def distinguishable(self) -> bool:
        return self.p < ALPHA


def test_train_ratio(n_test: int, n_train: int) -> float:
    """``n_test / n_train`` of one resample, the correction's second term."""
    return n_test / n_train


def corrected_se(values: np.ndarray, ratio: float) -> float:
    """The corrected standard error of the mean of ``values`` (see the module)."""
    n = len(values)
    return math.sqrt((1.0 / n + ratio) * float(np.var(values, ddof=1)))


def spread(values: np.ndarray, ratio: float) -> Spread:
    """Mean, standard deviation and corrected 95 % interval of one configuration's
    accuracies; a single value has no spread (NaN)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(np.mean(values))
    if n < 2:
        return Spread(n, mean, math.nan, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * corrected_se(values, ratio)
    return Spread(n, mean, float(np.std(values, ddof=1)), mean - half, mean + half)


def paired(a: np.ndarray, b: np.ndarray, ratio: float) -> Paired:
    """The corrected resampled t-test of B against A, whose accuracies ``a`` and ``b``
    were measured on the same resamples, in the same order."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(
            f"a paired test needs the same resamples on both sides, at least 2; got {len(a)}"
            f" and {len(b)}"
        )
    d = b - a
    n, mean = len(d), float(np.mean(d))
    se = corrected_se(d, ratio)
    if se == 0.0:  # every difference the same: no noise to measure against
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        return Paired(n, mean, mean, mean, t, 1.0 if mean == 0.0 else 0.0)
    t = mean / se
    p = float(2.0 * stats.t.sf(abs(t), n - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * se
    return Paired(n, mean, mean - half, mean + half, t, p)


def verdict(paired_result: Paired, a: str, b: str) -> str:
    """One line: whether B's difference from A is distinguishable from noise."""
    r = paired_result
    figures = (
        f"{r.difference:+.4f} (95 % interval {r.low:+.4f} to {r.high:+.4f}, p = {r.p:.3g},"
        f" {r.n} paired resamples)"
    )
    if not r.distinguishable:
        return f"{b} and {a} are indistinguishable: B - A = {figures} is within noise."
    better, worse = (b, a) if r.difference > 0 else (a, b)
    return f"{better} is better than {worse}: B - A = {figures} is more than noise."
