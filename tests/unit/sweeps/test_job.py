"""The job side of a sweep: what a job returns to the sweeper."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from digits_nn.sweeps import job
from digits_nn.sweeps.protocol import Objective
from helpers import hydra_job, quick_outcome


# Issue 15, mutation 9: choosing on the test rows would leak them into the choice.
@pytest.mark.parametrize(
    ("first", "value"),
    [
        ({"status": "FINISHED", "test_accuracy": 0.99, "validation_accuracy": 0.80}, 0.80),
        ({"status": "FINISHED", "test_accuracy": 0.99, "validation_accuracy": None}, 0.99),
        ({"status": "FAILED", "error": "diverged"}, math.nan),
    ],
    ids=["validated", "test-only", "failed"],
)
def test_a_sweeps_objective_is_validation_accuracy_when_there_are_validation_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: dict, value: float
) -> None:
    """What a sweeper maximises: the validation accuracy when there are validation rows,
    else the test accuracy; NaN for a failed job (Optuna records a failed trial)."""
    records = [{"key": "seed=1", **first}, {"key": "seed=1,train.iterations=5"}]
    monkeypatch.setattr(job, "run_with_budgets", lambda one, smaller: records)
    with hydra_job(tmp_path, "seed=1", multirun=True) as cfg:
        objective = job.run(cfg)
    assert isinstance(objective, Objective) and objective.records == records
    assert float(objective) == value or (math.isnan(value) and math.isnan(objective))


def test_the_budgets_a_job_shares_come_from_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digits_nn.sweeps.protocol import BUDGETS_ENV

    monkeypatch.delenv(BUDGETS_ENV, raising=False)
    assert job.shared_budgets() == []
    monkeypatch.setenv(BUDGETS_ENV, "1000,500")
    assert job.shared_budgets() == [1000, 500]


# Issue 25 #5: the refusal of validation rows a split cannot give is each budget's own
# FAILED record, also when the budgets would share one training.
def test_budgets_whose_split_cannot_give_validation_rows_each_fail_with_the_refusal(
    tmp_path: Path,
) -> None:
    overrides = ["data.test_size=0.98", "train.validation_size=0.3", "train.iterations=5"]
    overrides.append("tracking.enabled=false")
    with hydra_job(tmp_path / "a", *overrides, multirun=True) as cfg:
        records = job.run_with_budgets(job.Job(cfg, overrides, tmp_path / "a"), [3])
    assert [r["status"] for r in records] == ["FAILED", "FAILED"]
    assert all("drawn per digit" in r["error"] for r in records)


# Issue 25 #13: each smaller budget's duration_s included the recording of the budgets
# recorded before it (and every budget the whole shared training).
def test_a_shared_budgets_duration_is_its_own_training_and_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from digits_nn.pipeline import app

    def recording_takes_half_a_second(cfg, place, train=None):
        time.sleep(0.5)
        return quick_outcome(cfg, place)

    monkeypatch.setattr(app, "run", recording_takes_half_a_second)
    overrides = ["train.iterations=30", "tracking.enabled=false"]
    with hydra_job(tmp_path / "a", *overrides, multirun=True) as cfg:
        shared_job = job.Job(cfg, overrides, tmp_path / "a")
        records = job.run_with_budgets(shared_job, [20, 10])
    assert [r["shared_training"] for r in records] == [shared_job.key] * 3
    # Three recordings of 0.5 s each: a budget's own is in its duration, the others' not.
    assert all(0.5 <= r["duration_s"] < 0.95 for r in records), records
