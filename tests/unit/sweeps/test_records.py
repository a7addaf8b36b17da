"""The launching side's records: one per configuration, trusted only whole, and the
summary's list of exactly this sweep's configurations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hydra.core.utils import JobReturn, JobStatus

from digits_nn.sweeps import records
from digits_nn.sweeps.protocol import JOBS_FILE, RECORD_FILE, Objective, job_key
from helpers import SWEEP_GRID as GRID


def job_return(value=None, error: Exception | None = None) -> JobReturn:
    status = JobStatus.FAILED if error else JobStatus.COMPLETED
    return JobReturn(status=status, _return_value=error if error else value)


def test_a_job_that_raised_or_sent_nothing_gets_a_failed_record() -> None:
    expected = [GRID[2], GRID[1]]
    (first, second) = records.records_of(job_return(error=ValueError("boom")), expected)
    assert first["status"] == second["status"] == "FAILED"
    assert first["error"] == "ValueError: boom"
    assert first["key"] == job_key(GRID[2]) and first["overrides"] == GRID[2]
    sent = Objective.of(0.9, [{"key": job_key(GRID[2]), "status": "FINISHED"}])
    (kept, missing) = records.records_of(job_return(sent), expected)
    assert kept["status"] == "FINISHED"
    assert missing["status"] == "FAILED" and "no record" in missing["error"]


def test_a_failed_records_error_holds_no_password_of_the_uri_it_quotes() -> None:
    # MLflow's errors quote the store's URI, credentials included, when they come from
    # MLFLOW_TRACKING_URI: the record, the summary and the failure line repeat the error.
    quoted = RuntimeError("API request to http://alice:pw@rd@127.0.0.1:5000/api failed")
    [record] = records.records_of(job_return(error=quoted), [GRID[0]])
    assert record["error"] == (
        "RuntimeError: API request to http://alice:***@127.0.0.1:5000/api failed"
    )


def test_a_failed_record_is_keyed_by_its_configuration_unless_given_a_key() -> None:
    assert records.failed_record(["b=2", "a=1"], "boom") == {
        "key": "a=1,b=2",
        "overrides": ["b=2", "a=1"],
        "status": "FAILED",
        "error": "boom",
    }
    assert records.failed_record(["a=1"], "boom", key="7")["key"] == "7"


def test_a_half_written_or_foreign_record_is_not_trusted(tmp_path: Path) -> None:
    record = {"key": "a=1", "overrides": ["a=1"], "status": "FINISHED"}
    records.write_record(tmp_path, record)
    assert records.read_record(tmp_path, "a=1") == record
    text = (tmp_path / "a=1" / RECORD_FILE).read_text()
    (tmp_path / "a=1" / RECORD_FILE).write_text(text[: len(text) // 2])
    assert records.read_record(tmp_path, "a=1") is None
    records.write_record(tmp_path, {**record, "key": "b=2"})
    (tmp_path / "b=2").rename(tmp_path / "c=3")
    assert records.read_record(tmp_path, "c=3") is None  # another configuration's


# Several sweeps can share one folder: the summary describes only the last one's jobs.
def test_the_summary_describes_exactly_this_sweeps_jobs(tmp_path: Path) -> None:
    for key in ("a=1", "a=2", "b=1"):
        records.write_record(tmp_path, {"key": key, "overrides": [key], "status": "FINISHED"})
    records.write_jobs(tmp_path, ["b=1"])
    assert [r["key"] for r in records.sweep_records(tmp_path)] == ["b=1"]
    records.write_jobs(tmp_path, ["b=1", "b=2"])  # b=2 never came back
    rows = records.sweep_records(tmp_path)
    assert [(r["key"], r["status"]) for r in rows] == [("b=1", "FINISHED"), ("b=2", "FAILED")]


def test_a_search_keeps_every_trials_record_under_its_number(tmp_path: Path) -> None:
    """Optuna's launches go through RecordingLauncher: each trial's record is written
    under its job number (a search may try the same configuration twice)."""

    starts = []

    class Launcher:
        def launch(self, job_overrides, initial_job_idx):
            starts.append(initial_job_idx)
            return [
                job_return(Objective.of(0.5, [{"key": job_key(o), "status": "FINISHED"}]))
                for o in job_overrides
            ]

    launcher = records.RecordingLauncher(Launcher(), tmp_path)
    assert json.loads((tmp_path / JOBS_FILE).read_text()) == []  # no job yet, as a list
    launcher.launch([["seed=1"], ["seed=1"]], initial_job_idx=0)
    launcher.launch([["seed=2"]], initial_job_idx=2)
    assert records.read_jobs(tmp_path) == ["0", "1", "2"]
    assert [r["status"] for r in records.sweep_records(tmp_path)] == ["FINISHED"] * 3
    assert starts == [0, 2]  # the sweeper's own job numbers reach its launcher


# A record is reused only for the configuration and the store that made it.
def test_a_finished_record_stands_only_for_its_configuration_and_a_run_the_store_holds(
    store,
) -> None:
    from digits_nn.config import flatten, parse

    params = flatten(parse({"seed": 1}))
    client = store.client

    def run(status: str, experiment: str | None = None) -> str:
        run_id = client.create_run(experiment or store.experiment_id).info.run_id
        client.set_terminated(run_id, status=status)
        return run_id

    finished = {"key": "seed=1", "status": "FINISHED", "params": params, "run_id": run("FINISHED")}
    assert records.stale(finished, params, store) is None
    assert records.stale({**finished, "run_id": None}, params, None) is None  # tracking off
    other = flatten(parse({"seed": 1, "train": {"alpha": 0.5}}))
    assert records.stale(finished, other, store) == (
        "their records were made with another configuration (train.alpha: 0.25 -> 0.5)"
    )
    both = flatten(parse({"seed": 2, "train": {"alpha": 0.5}}))
    assert records.stale(finished, both, store) == (
        "their records were made with another configuration"
        " (seed: 1 -> 2, train.alpha: 0.25 -> 0.5)"
    )
    # A key the record's configuration had not, or has no more, is a difference too.
    older = {k: v for k, v in params.items() if k != "train.l2"}
    assert records.stale({**finished, "params": older}, params, store) == (
        "their records were made with another configuration (train.l2: None -> 0.0)"
    )
    assert records.stale(finished, older, store) == (
        "their records were made with another configuration (train.l2: 0.0 -> None)"
    )
    elsewhere = client.create_experiment("elsewhere")
    for run_id in ("0" * 32, None, run("FINISHED", elsewhere)):
        reason = records.stale({**finished, "run_id": run_id}, params, store)
        assert reason == f"their runs are not in the store this sweep records to ({store.uri})"
    killed = run("KILLED")
    deleted = run("FINISHED")
    client.delete_run(deleted)
    for run_id, status in ((killed, "killed"), (deleted, "finished")):
        reason = records.stale({**finished, "run_id": run_id}, params, store)
        assert reason == f"their runs are {status} or deleted in {store.uri}"
    # The store's URI, credentials hidden (MLFLOW_TRACKING_URI may carry them).
    elsewhere_store = dataclasses.replace(store, uri="http://alice:pw@127.0.0.1:5000")
    assert records.stale({**finished, "run_id": None}, params, elsewhere_store) == (
        "their runs are not in the store this sweep records to (http://alice:***@127.0.0.1:5000)"
    )


def test_each_tracking_config_opens_its_own_store_once(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digits_nn.config import TrackingConfig

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{store_root / 'mlflow.db'}"
    stores = records.StoreCache()
    assert stores.get(TrackingConfig(enabled=False)) is None
    first = stores.get(TrackingConfig(uri=uri, experiment="first"))
    second = stores.get(TrackingConfig(uri=uri, experiment="second"))
    assert first is not None and second is not None
    assert first.client.get_experiment(first.experiment_id).name == "first"
    assert second.client.get_experiment(second.experiment_id).name == "second"
    assert stores.get(TrackingConfig(uri=uri, experiment="first")) is first
