"""A sweep over resamples: its jobs grouped into configurations, the spread of each over
its folds, and which are indistinguishable from the best, checked against scipy."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from digits_nn.sweeps import resamples, stats, summary

FOLDS = 5


def fold_record(alpha: str, fold: int, repeat: int, accuracy: float | None) -> dict:
    overrides = [f"train.alpha={alpha}", f"data.fold={fold}", f"data.repeat={repeat}"]
    params = {
        "train.alpha": float(alpha),
        "model.hidden_size": 30,
        "seed": 0,
        "data.test_size": 0.4,
        "data.folds": FOLDS,
        "data.fold": fold,
        "data.repeat": repeat,
    }
    key = ",".join(sorted(overrides))
    status = "FAILED" if accuracy is None else "FINISHED"
    row = {"key": key, "overrides": overrides, "status": status, "params": params}
    if accuracy is not None:
        row |= {"test_accuracy": accuracy, "validation_accuracy": None, "cost": [1.0, 0.5]}
    return row


def cv_records(accuracies: dict[str, list[float]]) -> list[dict]:
    """Every configuration on 2 repeats of 5 folds, in the sweep's order."""
    return [
        fold_record(alpha, fold, repeat, values[repeat * FOLDS + fold])
        for alpha, values in accuracies.items()
        for repeat in range(2)
        for fold in range(FOLDS)
    ]


BASE = 0.95 + np.random.default_rng(0).normal(0, 0.01, 10)
SWING = np.array([1, -1, 1, -1, 1, -1, 1, -1, 1, -1], dtype=float)
ACCURACIES = {
    "1.0": list(BASE + 0.02),  # the best
    "2.5": list(BASE + 0.019 + 0.006 * SWING),  # 0.001 lower, with noise 6 times that
    "0.25": list(BASE - 0.05 + 0.002 * SWING),  # clearly worse
}


def test_the_configurations_are_the_jobs_without_their_fold() -> None:
    rows, metric = summary.rank(cv_records(ACCURACIES))
    assert resamples.is_resampled(summary.swept_keys(rows))
    table = resamples.configurations(rows, metric)
    assert table[0]["configuration"] == "train.alpha=1.0"
    assert {c["configuration"] for c in table} == {f"train.alpha={a}" for a in ACCURACIES}
    assert all(c["resamples"] == 10 for c in table)


def test_each_configurations_spread_is_scipys_with_the_correction() -> None:
    rows, metric = summary.rank(cv_records(ACCURACIES))
    for row in resamples.configurations(rows, metric):
        values = np.array(ACCURACIES[row["configuration"].partition("=")[2]])
        assert row["mean"] == pytest.approx(values.mean())
        assert row["std"] == pytest.approx(values.std(ddof=1))
        se = scipy_stats.sem(values) * math.sqrt((1 / 10 + 1 / (FOLDS - 1)) * 10)
        low, high = scipy_stats.t.interval(0.95, 9, loc=values.mean(), scale=se)
        assert (row["ci95_low"], row["ci95_high"]) == (pytest.approx(low), pytest.approx(high))


def test_the_summary_marks_what_is_indistinguishable_from_the_best() -> None:
    rows, metric = summary.rank(cv_records(ACCURACIES))
    table = {c["configuration"]: c for c in resamples.configurations(rows, metric)}
    assert table["train.alpha=1.0"]["vs_best"] == "best"
    assert table["train.alpha=2.5"]["vs_best"] == "indistinguishable"
    assert table["train.alpha=0.25"]["vs_best"] == "worse"
    best, other = np.array(ACCURACIES["1.0"]), np.array(ACCURACIES["2.5"])
    plain = scipy_stats.ttest_rel(other, best)
    t = plain.statistic / math.sqrt((1 / 10 + 1 / 4) * 10)
    p = 2 * scipy_stats.t.sf(abs(t), 9)
    assert table["train.alpha=2.5"]["p_vs_best"] == pytest.approx(p)


def test_folds_are_paired_by_their_rows_not_their_order() -> None:
    """A configuration missing a fold is compared on the folds both have."""
    records = cv_records(ACCURACIES)
    records = [
        r
        for r in records
        if not (r["key"].endswith("train.alpha=0.25") and r["params"]["data.fold"] == 0)
    ]
    rows, metric = summary.rank(list(reversed(records)))
    table = {c["configuration"]: c for c in resamples.configurations(rows, metric)}
    assert table["train.alpha=0.25"]["resamples"] == 8
    assert table["train.alpha=0.25"]["vs_best"] == "worse"


def test_the_summary_and_parent_run_carry_every_configurations_figures(tmp_path) -> None:
    rows, metric = summary.rank(cv_records(ACCURACIES))
    files = summary.write_summary(tmp_path, rows, "cv", metric)
    assert tmp_path / "sweep_configurations.csv" in files
    table = list(csv.DictReader(io.StringIO((tmp_path / "sweep_configurations.csv").read_text())))
    assert table[0]["configuration"] == "train.alpha=1.0"
    assert "indistinguishable" in (tmp_path / "sweep_summary.md").read_text()
    values = summary.parent_metrics(rows, metric)
    assert values["best_mean"] == pytest.approx(np.mean(ACCURACIES["1.0"]))
    assert values["train.alpha:2.5/mean"] == pytest.approx(np.mean(ACCURACIES["2.5"]))
    assert {"best_std", "best_ci95_low", "best_ci95_high"} <= set(values)


def test_a_sweep_that_varies_no_rows_is_summarised_job_by_job(tmp_path) -> None:
    from helpers import sweep_record

    rows, metric = summary.rank([sweep_record("0.1", 0.8), sweep_record("0.3", 0.9)])
    files = summary.write_summary(tmp_path, rows, "grid", metric)
    assert tmp_path / "sweep_configurations.csv" not in files
    assert "best_mean" not in summary.parent_metrics(rows, metric)


def test_a_configuration_is_a_valid_mlflow_metric_name() -> None:
    from mlflow.utils.validation import _validate_metric_name

    label = resamples.metric_label("model.hidden_sizes=[100,50],train.alpha=0.25")
    _validate_metric_name(f"{label}/mean")


def test_two_shared_resamples_are_enough_to_compare_two_configurations() -> None:
    a = {(FOLDS, 0, 0): 0.90, (FOLDS, 1, 0): 0.92, (FOLDS, 2, 0): 0.97}
    b = {(FOLDS, 0, 0): 0.93, (FOLDS, 1, 0): 0.94}
    got = resamples.compare(a, b, 0.25)
    assert got == stats.paired(np.array([0.90, 0.92]), np.array([0.93, 0.94]), 0.25)
    assert resamples.compare(a, {(FOLDS, 0, 0): 0.93}, 0.25) is None


# A record made before a param existed names its resample with None there: such
# resamples are still put in one order (None and a number do not compare).
def test_resamples_are_paired_even_when_a_param_is_missing_from_some_records() -> None:
    a = {(FOLDS, 0, None): 0.90, (FOLDS, 0, 1): 0.92, (FOLDS, 1, 0): 0.95}
    b = {(FOLDS, 0, None): 0.93, (FOLDS, 0, 1): 0.94, (FOLDS, 1, 0): 0.95}
    got = resamples.compare(a, b, 0.25)
    assert got is not None and got.n == 3
    assert got.difference == pytest.approx(np.mean([0.03, 0.02, 0.0]))
