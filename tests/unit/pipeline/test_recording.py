"""What a run records about itself, into a real SQLite MLflow store: its dataset inputs,
its tags from the start, and its curves, which the store writes on a thread of its own
and still arrive whole however the run ends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digits_nn.config import Config, parse
from digits_nn.data.steps import Split
from digits_nn.errors import Terminated, TrackingError
from digits_nn.pipeline import recording
from digits_nn.pipeline.recording import RunData, new_run, reopened_run
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store
from helpers import datasets_of, search_runs, tiny_run_data

COST = np.geomspace(4.0, 0.03, 3000)

# A few rows are enough: each run records them as its two dataset inputs.
RUN_DATA = tiny_run_data()


def history(store: Store, run_id: str, key: str) -> np.ndarray:
    points = store.client.get_metric_history(run_id, key)
    steps = [p.step for p in points]
    assert steps == sorted(set(steps)), "each step exactly once"
    return np.array([p.value for p in sorted(points, key=lambda p: p.step)])


def test_the_curves_arrive_whole_before_the_run_closes(store: Store) -> None:
    accuracy = {500 * k: 0.5 + 0.04 * k for k in range(1, 11)}
    with new_run(store, Config(), RUN_DATA) as run:
        recording.record_cost(run, COST, np.sqrt(COST))
        run.history("test_accuracy_curve", accuracy)
        run.history("validation_cost", COST[:1500])
    logged = store.client.get_run(run.run_id)
    assert logged.info.status == "FINISHED"
    assert np.array_equal(history(store, run.run_id, "train_cost"), COST)
    assert np.array_equal(history(store, run.run_id, "validation_cost"), COST[:1500])
    assert history(store, run.run_id, "test_accuracy_curve").tolist() == list(accuracy.values())
    assert logged.data.metrics["final_classic_cost"] == np.sqrt(COST)[-1]
    assert store.pending == []


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, Terminated])
def test_an_interrupted_run_keeps_its_curve_and_ends_killed(
    store: Store, interruption: type[BaseException]
) -> None:
    with pytest.raises(interruption), new_run(store, Config(), RUN_DATA) as run:
        recording.record_cost(run, COST, np.sqrt(COST))
        raise interruption()
    assert store.client.get_run(run.run_id).info.status == "KILLED"
    assert np.array_equal(history(store, run.run_id, "train_cost"), COST)
    assert store.pending == []


def test_a_failing_run_keeps_its_curve_and_ends_failed(store: Store) -> None:
    with (
        pytest.raises(ValueError, match="after the curve"),
        new_run(store, Config(), RUN_DATA) as run,
    ):
        recording.record_cost(run, COST, np.sqrt(COST))
        raise ValueError("after the curve")
    logged = store.client.get_run(run.run_id)
    assert (logged.info.status, logged.data.tags["error"]) == ("FAILED", "after the curve")
    assert np.array_equal(history(store, run.run_id, "train_cost"), COST)
    assert store.pending == []


def test_a_batch_the_store_refuses_fails_the_run_with_one_message(store: Store) -> None:
    with (
        pytest.raises(TrackingError, match="metric batch") as refused,
        new_run(store, Config(), RUN_DATA) as run,
    ):
        run.history("bad?key", COST[:10])
    assert "Traceback" not in str(refused.value)
    logged = store.client.get_run(run.run_id)
    assert logged.info.status == "FAILED"
    assert "metric batch" in logged.data.tags["error"]


def test_a_sweep_jobs_run_is_placed_as_it_is_created(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job SIGKILLed right after its run appears runs no more code: its sweep finds the
    # run by these tags to close it, so they must come with the run, not after it.
    placement = {"mlflow.parentRunId": "p" * 32, "sweep_job": "seed=1"}
    seen: dict[str, str] = {}

    def first_call_after_creation(run: RunLog, *args: object) -> None:
        seen.update(run.store.client.get_run(run.run_id).data.tags)

    monkeypatch.setattr(RunLog, "datasets", first_call_after_creation)
    with new_run(store, Config(), RUN_DATA, placement):
        pass
    assert placement.items() <= seen.items()
    assert seen["data_md5"] == RUN_DATA.md5


def test_without_a_store_a_run_logs_nothing() -> None:
    with new_run(None, Config(), RUN_DATA) as run:
        assert not run.enabled
        recording.record_cost(run, COST, np.sqrt(COST))
    with reopened_run(None, "abc") as run:
        assert not run.enabled


SPLIT_PATH = "data/processed/split.npz"


def test_a_new_run_records_its_train_and_test_rows_as_datasets(store: Store) -> None:
    """Each run records the data it saw as two dataset inputs, `digits-train` and
    `digits-test`, whose digest is the run's `data_md5` (split.npz's md5, as in dvc.lock)
    and whose source is the DVC path of split.npz; `mlflow.search_runs` filters on them."""
    rng = np.random.default_rng(0)
    split = Split(
        rng.normal(size=(30, 64)), rng.normal(size=(20, 64)), np.arange(30) % 10, np.arange(20) % 10
    )
    cfg = parse({})
    run_data = RunData(split, "0123456789abcdef0123456789abcdef", SPLIT_PATH)
    with new_run(store, cfg, run_data) as run:
        run_id = run.run_id
    # Reopening the run (the evaluate stage does) adds no second pair.
    with reopened_run(store, run_id):
        pass

    [found] = search_runs(store.uri)
    assert found.data.tags["data_md5"] == run_data.md5
    datasets = datasets_of(found)
    assert set(datasets) == {("digits-train", "training"), ("digits-test", "testing")}
    assert len(found.inputs.dataset_inputs) == 2
    for (name, _), dataset in datasets.items():
        assert dataset.digest == run_data.md5
        assert dataset.source_type == "local"
        assert json.loads(dataset.source) == {"uri": SPLIT_PATH}
        rows = 30 if name == "digits-train" else 20
        assert json.loads(dataset.profile)["features_shape"] == [rows, 64]
    assert search_runs(store.uri, "dataset.name = 'digits-test'") != []
    assert search_runs(store.uri, f"dataset.digest = '{run_data.md5}'") != []
    assert search_runs(store.uri, "dataset.digest = 'something else'") == []


def test_a_runs_name_and_description_say_what_it_trains() -> None:
    cfg = parse({"model": {"hidden_sizes": [100, 50]}, "train": {"alpha": 0.5}, "seed": 3})
    assert recording.run_name(cfg) == "h100x50-a0.5-i3000-s3"
    assert recording.run_name(parse({})) == "h30-a0.25-i3000-s0"
    assert recording.describe(parse({})) == (
        "64-30-10 sigmoid network, sigmoid output, uniform init, full-batch gradient descent"
        " with alpha 0.25 for 3000 iterations, seed 0."
    )
    modern = parse(
        {
            "train": {
                "optimizer": "momentum",
                "nesterov": True,
                "batch_size": 32,
                "l2": 0.5,
                "schedule": "inverse_time",
                "decay": 0.1,
                "validation_size": 0.2,
                "patience": 4,
            }
        }
    )
    assert recording.describe(modern).endswith(
        "Nesterov momentum on batches of 32 rows with alpha 0.25 for 3000 iterations,"
        " L2 0.5, inverse-time decay 0.1, early stopping (patience 4), seed 0."
    )
    best = parse(
        {
            "data": {"augment": {"copies": 8, "rotation": 12.0}},
            "model": {"members": 5},
            "train": {"iterations": 100},
        }
    )
    assert recording.run_name(best) == "h30-a0.25-i100-aug8-m5-s0"
    assert recording.describe(best).endswith(
        "for 100 iterations, 8 affine copies of each training image, 5 members averaged, seed 0."
    )


def test_each_run_logs_its_network_as_an_mlflow_3_logged_model_with_its_figures(
    store: Store, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One READY logged model per run: created for the run by its id, recorded
    as the run's output, carrying the run's params, and holding the run's final figures,
    each on the dataset input it was measured on."""
    import mlflow.pyfunc

    from digits_nn.pipeline import app, provenance
    from digits_nn.pipeline.prepared import prepare

    cfg = parse({"train": {"iterations": 5}, "tracking": {"uri": store.uri}})
    split_md5 = provenance.split_md5(prepare(cfg).split)
    outcomes = [app.run(cfg, app.RunPlace(tmp_path / str(i), [])) for i in range(2)]
    models = store.client.search_logged_models([store.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(o.run_id for o in outcomes)
    for model in models:
        run = store.client.get_run(model.source_run_id)
        assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]
        assert (model.name, str(model.status)) == ("model", "READY")
        assert model.params == run.data.params
        linked = {m.key: (m.value, m.dataset_name, m.dataset_digest) for m in model.metrics}
        digest = run.data.tags["data_md5"]
        assert digest == split_md5
        assert linked["test_accuracy"] == (run.data.metrics["test_accuracy"], "digits-test", digest)
        assert linked["train_accuracy"][1:] == ("digits-train", digest)
        assert linked["final_classic_cost"][1:] == (None, None)
        assert "train_cost" not in linked  # histories stay with the run
    # runs:/<run_id>/model is the run's logged model (resolved in the store the
    # environment names, as MLflow resolves every models:/ URI).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    loaded = mlflow.pyfunc.load_model(f"runs:/{outcomes[0].run_id}/model")
    assert loaded.metadata.model_id in {m.model_id for m in models}
    assert loaded.metadata.run_id == outcomes[0].run_id


def test_a_model_that_cannot_be_stored_is_marked_failed_and_fails_the_run(
    store: Store, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digits_nn.pipeline import app

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(store.client._client), "log_model_artifacts", refuse)
    cfg = parse({"train": {"iterations": 5}, "tracking": {"uri": store.uri}})
    with pytest.raises(OSError, match="disk full"):
        app.run(cfg, app.RunPlace(tmp_path, []))
    [model] = store.client.search_logged_models([store.experiment_id])
    assert str(model.status) == "FAILED"
    assert store.client.get_run(model.source_run_id).info.status == "FAILED"


def test_the_curves_are_written_by_the_stores_own_thread_not_mlflows_asynchronous_logging(
    store: Store,
) -> None:
    """Closing a run shuts MLflow's asynchronous logging down, which waits for its thread's
    one-second poll to end: every child run of a sweep sat idle for up to a second."""
    import threading

    with new_run(store, Config(), RUN_DATA) as run:
        recording.record_cost(run, COST, np.sqrt(COST))
        threads = {thread.name for thread in threading.enumerate()}
    assert not any(name.startswith("MLflowAsyncLogging") for name in threads), threads
    assert any(name.startswith("digits-nn-history") for name in threads), threads
    assert np.array_equal(history(store, run.run_id, "train_cost"), COST)


def test_a_store_asked_for_every_tenth_point_logs_the_first_the_tenths_and_the_last(
    store: Store,
) -> None:
    from dataclasses import replace

    thinned = replace(store, curve_every=10)
    with new_run(thinned, Config(), RUN_DATA) as run:
        recording.record_cost(run, COST[:2995], np.sqrt(COST[:2995]))
        run.history("test_accuracy_curve", {7: 0.5, 13: 0.6})  # a mapping is logged whole
    points = store.client.get_metric_history(run.run_id, "train_cost")
    steps = sorted(p.step for p in points)
    assert steps == [1, *range(10, 2991, 10), 2995]
    assert {p.step: p.value for p in points} == {s: COST[s - 1] for s in steps}
    accuracy = store.client.get_metric_history(run.run_id, "test_accuracy_curve")
    assert sorted(p.step for p in accuracy) == [7, 13]


def test_the_installed_versions_a_run_records_are_read_once_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sweep's worker records many runs; reading package metadata costs milliseconds."""
    from importlib import metadata

    from digits_nn.pipeline import provenance

    read: list[str] = []
    real_version = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: read.append(name) or real_version(name))
    provenance.installed_version.cache_clear()
    try:
        first = provenance.package_versions()
        assert provenance.package_versions() == first
        assert sorted(read) == sorted(provenance.PACKAGES)
        assert first["numpy"] == real_version("numpy")
    finally:
        provenance.installed_version.cache_clear()
