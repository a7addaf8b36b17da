"""The statistics of resampled accuracies, against scipy's own t-test and t interval."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from digits_nn.sweeps import stats

RATIO = 1 / 4  # 5 folds: a fold's test rows are a quarter of its training rows


def nadeau_bengio_factor(n: int, ratio: float) -> float:
    """How much larger the corrected standard error is than the plain one."""
    return math.sqrt((1 / n + ratio) / (1 / n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_corrected_t_is_scipys_paired_t_shrunk_by_the_correction(seed) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.95, 0.01, 10)
    b = a + rng.normal(0.004, 0.005, 10)
    plain = scipy_stats.ttest_rel(b, a)
    got = stats.paired(a, b, RATIO)
    t = plain.statistic / nadeau_bengio_factor(10, RATIO)
    assert got.t == pytest.approx(t, rel=1e-12)
    assert got.p == pytest.approx(2 * scipy_stats.t.sf(abs(t), df=9), rel=1e-12)
    assert got.p > plain.pvalue, "the correction makes the test more cautious"
    se = np.std(b - a, ddof=1) / math.sqrt(10) * nadeau_bengio_factor(10, RATIO)
    low, high = scipy_stats.t.interval(0.95, df=9, loc=np.mean(b - a), scale=se)
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))


def test_without_the_correction_it_is_scipys_paired_t_test() -> None:
    a = np.array([0.91, 0.93, 0.92, 0.95, 0.90])
    b = np.array([0.93, 0.94, 0.92, 0.97, 0.93])
    plain = scipy_stats.ttest_rel(b, a)
    got = stats.paired(a, b, 0.0)
    assert (got.t, got.p) == (pytest.approx(plain.statistic), pytest.approx(plain.pvalue))


def test_a_consistent_gain_is_distinguishable_and_noise_is_not() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(0.88, 0.01, 10)
    better = stats.paired(a, a + 0.08 + rng.normal(0, 0.005, 10), RATIO)
    assert better.distinguishable and better.p < 1e-6 and better.low > 0
    noise = stats.paired(a, a + rng.normal(0, 0.005, 10), RATIO)
    assert not noise.distinguishable and noise.low < 0 < noise.high
    assert "indistinguishable" in stats.verdict(noise, "A", "B")
    assert stats.verdict(better, "A", "B").startswith("B is better than A")


def test_identical_accuracies_are_indistinguishable_and_a_constant_gain_is_not() -> None:
    a = np.array([0.9, 0.91, 0.92])
    same = stats.paired(a, a, RATIO)
    assert (same.difference, same.p, same.distinguishable) == (0.0, 1.0, False)
    shifted = stats.paired(a, a - 0.01, RATIO)
    assert shifted.p == 0.0 and shifted.difference == pytest.approx(-0.01)
    assert stats.verdict(shifted, "A", "B").startswith("A is better than B")


def test_a_paired_test_needs_two_matching_resamples() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired(np.array([0.9]), np.array([0.8]), RATIO)
    with pytest.raises(ValueError, match="same resamples"):
        stats.paired(np.array([0.9, 0.8]), np.array([0.8, 0.7, 0.6]), RATIO)


def test_the_spread_is_the_mean_sd_and_corrected_t_interval() -> None:
    values = np.array([0.97, 0.975, 0.98, 0.965, 0.985, 0.97, 0.98, 0.975, 0.96, 0.99])
    got = stats.spread(values, RATIO)
    assert got.n == 10
    assert got.mean == pytest.approx(np.mean(values))
    assert got.std == pytest.approx(np.std(values, ddof=1))
    se = scipy_stats.sem(values) * nadeau_bengio_factor(10, RATIO)
    low, high = scipy_stats.t.interval(0.95, df=9, loc=np.mean(values), scale=se)
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))


def test_one_value_has_no_spread() -> None:
    got = stats.spread(np.array([0.9]), RATIO)
    assert got.mean == 0.9 and math.isnan(got.std) and math.isnan(got.low)


def test_the_correction_ratio_is_a_resamples_test_rows_over_its_training_rows() -> None:
    assert stats.test_train_ratio(20, 80) == 0.25  # a fold of a 5-fold: 1 / (5 - 1)


def test_two_paired_resamples_are_enough_for_a_test() -> None:
    a, b = np.array([0.90, 0.92]), np.array([0.93, 0.94])
    got = stats.paired(a, b, RATIO)
    t = scipy_stats.ttest_rel(b, a).statistic / nadeau_bengio_factor(2, RATIO)
    assert got.n == 2
    assert got.t == pytest.approx(t, rel=1e-12)
    assert got.p == pytest.approx(2 * scipy_stats.t.sf(abs(t), df=1), rel=1e-12)


# With no noise to measure against, the statistic is as large as the difference allows:
# none (t = 0, p = 1), or infinite with the difference's sign (p = 0).
@pytest.mark.parametrize(
    ("shift", "t", "p"), [(0.0, 0.0, 1.0), (0.125, math.inf, 0.0), (-0.125, -math.inf, 0.0)]
)
def test_a_constant_difference_has_no_interval_and_a_t_of_its_sign(shift, t, p) -> None:
    a = np.array([0.5, 0.75, 0.25])  # dyadic: every difference is exactly ``shift``
    assert stats.paired(a, a + shift, RATIO) == stats.Paired(3, shift, shift, shift, t, p)


# Accuracies read with the csv module are text; they are compared as the numbers they
# are, on either side.
@pytest.mark.parametrize("text_side", ["a", "b"])
def test_accuracies_given_as_text_are_compared_as_numbers(text_side) -> None:
    a, b = [0.90, 0.92, 0.91], [0.93, 0.94, 0.92]
    expected = stats.paired(np.array(a), np.array(b), RATIO)
    if text_side == "a":
        a = [str(v) for v in a]
    else:
        b = [str(v) for v in b]
    assert stats.paired(a, b, RATIO) == expected


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            stats.Paired(10, 0.0123, 0.0045, 0.0201, 3.2, 0.0108),
            "B is better than A: B - A = +0.0123 (95 % interval +0.0045 to +0.0201,"
            " p = 0.0108, 10 paired resamples) is more than noise.",
        ),
        (
            stats.Paired(10, -0.0123, -0.0201, -0.0045, -3.2, 0.0108),
            "A is better than B: B - A = -0.0123 (95 % interval -0.0201 to -0.0045,"
            " p = 0.0108, 10 paired resamples) is more than noise.",
        ),
        (
            stats.Paired(4, -0.002, -0.009, 0.005, -0.9, 0.43),
            "B and A are indistinguishable: B - A = -0.0020 (95 % interval -0.0090 to"
            " +0.0050, p = 0.43, 4 paired resamples) is within noise.",
        ),
    ],
)
def test_the_verdict_is_one_line_with_the_difference_its_interval_and_p(result, line) -> None:
    assert stats.verdict(result, "A", "B") == line
