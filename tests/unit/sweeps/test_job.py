"""The job side of a sweep: what a job returns to the sweeper."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from digits_nn.sweeps import job
from digits_nn.sweeps.protocol import Objective
from helpers import hydra_job, quick_outcome


# Choosing on the test rows would leak them into the choice.
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


# The refusal of validation rows a split cannot give is each budget's own FAILED record,
# also when the budgets would share one training.
def test_budgets_whose_split_cannot_give_validation_rows_each_fail_with_the_refusal(
    tmp_path: Path,
) -> None:
    overrides = ["data.test_size=0.98", "train.validation_size=0.3", "train.iterations=5"]
    overrides.append("tracking.enabled=false")
    with hydra_job(tmp_path / "a", *overrides, multirun=True) as cfg:
        records = job.run_with_budgets(job.Job(cfg, overrides, tmp_path / "a"), [3])
    assert [r["status"] for r in records] == ["FAILED", "FAILED"]
    assert all("drawn per digit" in r["error"] for r in records)


# Each budget's duration_s is its own: counting the recording of the budgets recorded
# before it, or the whole shared training, would overstate the smaller budgets' cost.
def test_a_shared_budgets_duration_is_its_own_training_and_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from digits_nn.pipeline import app

    # A clock that moves only when a recording "takes" half a second: the durations are
    # then exact, however busy the machine.
    now = [1000.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])

    def recording_takes_half_a_second(cfg, place, *args, **kwargs):
        now[0] += 0.5
        return quick_outcome(cfg, place)

    monkeypatch.setattr(app, "run", recording_takes_half_a_second)
    overrides = ["train.iterations=30", "tracking.enabled=false"]
    with hydra_job(tmp_path / "a", *overrides, multirun=True) as cfg:
        shared_job = job.Job(cfg, overrides, tmp_path / "a")
        records = job.run_with_budgets(shared_job, [20, 10])
    assert [r["shared_training"] for r in records] == [shared_job.key] * 3
    # Three recordings of 0.5 s each: a budget's own is in its duration, the others' not.
    assert [r["duration_s"] for r in records] == [0.5, 0.5, 0.5], records


def test_a_budget_read_off_a_shared_training_is_recorded_as_a_standalone_run(
    store, tmp_path: Path
) -> None:
    from digits_nn.config import parse
    from digits_nn.errors import TrainingDiverged
    from digits_nn.pipeline.prepared import prepare
    from digits_nn.pipeline.recording import new_run
    from digits_nn.pipeline.steps import RunContext
    from digits_nn.sweeps import budgets
    from helpers import tiny_run_data

    cfg = parse({"train": {"iterations": 6}, "tracking": {"accuracy_every": 2}})
    data = prepare(cfg)
    shared = budgets.train_to_largest(cfg, data, [6, 4], track=True)
    small = parse({"train": {"iterations": 4}, "tracking": {"accuracy_every": 2}})
    params_file = tmp_path / "params.yaml"
    params_file.write_text("train:\n  iterations: 4\n")
    with new_run(store, small, tiny_run_data()) as run:
        ctx = RunContext(small, run, small.paths.under(tmp_path), params_file)
        result = job.record_shared(ctx, data, shared)
    assert result is shared.result(4)
    logged = store.client.get_run(run.run_id)
    assert logged.data.params["train.iterations"] == "4"
    assert "model_md5" in logged.data.tags and (tmp_path / "models/model.npz").is_file()
    client = store.client
    assert [m.step for m in client.get_metric_history(run.run_id, "train_cost")] == [1, 2, 3, 4]
    curve = client.get_metric_history(run.run_id, "test_accuracy_curve")
    assert {m.step: m.value for m in curve} == shared.accuracy_curve(4)
    assert {a.path for a in client.list_artifacts(run.run_id)} >= {"params.yaml", "model.npz"}
    # A budget the shared training diverged before: its run keeps the curve so far.
    diverged = budgets.SharedTraining(6, {}, {}, 2)
    diverged.diverged = TrainingDiverged("diverged", np.ones(3), np.ones(3))
    with pytest.raises(TrainingDiverged), new_run(store, small, tiny_run_data()) as failed:
        job.record_shared(RunContext(small, failed, small.paths.under(tmp_path)), data, diverged)
    steps = [m.step for m in client.get_metric_history(failed.run_id, "train_cost")]
    assert steps == [1, 2, 3] and client.get_run(failed.run_id).info.status == "FAILED"


def test_a_refused_configuration_of_a_sweep_gets_a_failed_child_run(sweep_root: Path) -> None:
    from helpers import multirun

    # Two overrides: the failed run's name and tag list them as the job was given them.
    with pytest.raises(SystemExit) as exited:
        multirun("train.alpha=0.25,-1", "seed=3", "hydra.sweep.dir=sweep", task=job.run)
    assert exited.value.code == 1  # the sweep names its failed job
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep_root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits-nn").experiment_id
    failed = client.search_runs([experiment], "attributes.status = 'FAILED'")
    [refused] = [r for r in failed if "mlflow.parentRunId" in r.data.tags]
    assert refused.info.run_name == "invalid train.alpha=-1 seed=3"
    assert refused.data.tags["overrides"] == "train.alpha=-1 seed=3"
    assert refused.data.tags["error"] == "train.alpha=-1.0 is not allowed: a finite number > 0."
    parent = refused.data.tags["mlflow.parentRunId"]
    assert client.get_run(parent).info.status == "FAILED"


def test_the_budgets_of_a_shared_training_are_recorded_on_the_rows_it_prepared_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digits_nn.pipeline import app, prepared

    calls: list[int] = []
    real_prepare = prepared.prepare

    def counted_prepare(cfg):
        calls.append(cfg.train.iterations)
        return real_prepare(cfg)

    monkeypatch.setattr(job, "prepare", counted_prepare)
    monkeypatch.setattr(app, "prepare", counted_prepare)
    overrides = ["train.iterations=30", "tracking.enabled=false"]
    with hydra_job(tmp_path / "a", *overrides, multirun=True) as cfg:
        records = job.run_with_budgets(job.Job(cfg, overrides, tmp_path / "a"), [20, 10])
    assert [r["status"] for r in records] == ["FINISHED"] * 3
    assert calls == [30]
