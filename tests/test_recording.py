"""Per-run recording into a real SQLite MLflow store: metric histories go through MLflow's
asynchronous logging, and every point still arrives, however the run ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digits_nn import data, pipeline, tracking
from digits_nn.config import Config, TrackingConfig
from digits_nn.errors import TrackingError

COST = np.geomspace(4.0, 0.03, 3000)

# A few rows are enough: each run records them as its two dataset inputs.
RUN_DATA = pipeline.RunData(
    data.Split(np.zeros((10, 64)), np.zeros((10, 64)), np.arange(10), np.arange(10)),
    "0123456789abcdef0123456789abcdef",
    "data/processed/split.npz",
)


@pytest.fixture
def store(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> tracking.Store:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tracking.open_store(TrackingConfig(experiment="recording"), root=store_root)


def history(store: tracking.Store, run_id: str, key: str) -> np.ndarray:
    points = store.client.get_metric_history(run_id, key)
    steps = [p.step for p in points]
    assert steps == sorted(set(steps)), "each step exactly once"
    return np.array([p.value for p in sorted(points, key=lambda p: p.step)])


def test_the_curves_arrive_whole_before_the_run_closes(store: tracking.Store) -> None:
    accuracy = {500 * k: 0.5 + 0.04 * k for k in range(1, 11)}
    with pipeline.recording(store, Config(), run_data=RUN_DATA) as recorder:
        recorder.cost_curves(COST, np.sqrt(COST))
        recorder.curve("test_accuracy_curve", accuracy)
        recorder.curve("validation_cost", COST[:1500])
    run = store.client.get_run(recorder.run_id)
    assert run.info.status == "FINISHED"
    assert np.array_equal(history(store, recorder.run_id, "train_cost"), COST)
    assert np.array_equal(history(store, recorder.run_id, "validation_cost"), COST[:1500])
    assert history(store, recorder.run_id, "test_accuracy_curve").tolist() == list(
        accuracy.values()
    )
    assert run.data.metrics["final_classic_cost"] == np.sqrt(COST)[-1]
    assert store.pending == []


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, tracking.Terminated])
def test_an_interrupted_run_keeps_its_curve_and_ends_killed(
    store: tracking.Store, interruption: type[BaseException]
) -> None:
    with (
        pytest.raises(interruption),
        pipeline.recording(store, Config(), run_data=RUN_DATA) as recorder,
    ):
        recorder.cost_curves(COST, np.sqrt(COST))
        raise interruption()
    assert store.client.get_run(recorder.run_id).info.status == "KILLED"
    assert np.array_equal(history(store, recorder.run_id, "train_cost"), COST)
    assert store.pending == []


def test_a_failing_run_keeps_its_curve_and_ends_failed(store: tracking.Store) -> None:
    with (
        pytest.raises(ValueError, match="after the curve"),
        pipeline.recording(store, Config(), run_data=RUN_DATA) as recorder,
    ):
        recorder.cost_curves(COST, np.sqrt(COST))
        raise ValueError("after the curve")
    run = store.client.get_run(recorder.run_id)
    assert (run.info.status, run.data.tags["error"]) == ("FAILED", "after the curve")
    assert np.array_equal(history(store, recorder.run_id, "train_cost"), COST)
    assert store.pending == []


def test_a_batch_the_store_refuses_fails_the_run_with_one_message(
    store: tracking.Store,
) -> None:
    with (
        pytest.raises(TrackingError, match="metric batch") as refused,
        pipeline.recording(store, Config(), run_data=RUN_DATA) as recorder,
    ):
        recorder.curve("bad?key", COST[:10])
    assert "Traceback" not in str(refused.value)
    run = store.client.get_run(recorder.run_id)
    assert run.info.status == "FAILED"
    assert "metric batch" in run.data.tags["error"]


def test_a_sweep_jobs_run_is_placed_as_it_is_created(
    store: tracking.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job SIGKILLed right after its run appears runs no more code: its sweep finds the
    # run by these tags to close it, so they must come with the run, not after it.
    placement = {"mlflow.parentRunId": "p" * 32, "sweep_job": "seed=1"}
    seen: dict[str, str] = {}

    def first_call_after_creation(store: tracking.Store, run_id: str, *args: object) -> None:
        seen.update(store.client.get_run(run_id).data.tags)

    monkeypatch.setattr(tracking, "log_datasets", first_call_after_creation)
    with pipeline.recording(store, Config(), run_data=RUN_DATA, placement=placement):
        pass
    assert placement.items() <= seen.items()
    assert seen["data_md5"] == RUN_DATA.md5
