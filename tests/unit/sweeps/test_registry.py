"""The best validated job's model as a version of ``digits-nn``, aliased ``challenger``,
in a real SQLite store, and through a real tracking server over one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digits_nn import config
from digits_nn.config import TrackingConfig, parse
from digits_nn.pipeline import app
from digits_nn.sweeps import registry
from digits_nn.tracking.store import HTTP_RETRY_BUDGET, Store, open_store


def best_row(store: Store, tmp_path: Path, **train) -> dict:
    """A finished job's record, as a validated sweep ranks it first."""
    cfg = parse({"train": {"iterations": 5, "validation_size": 0.2, **train}})
    cfg.tracking.uri = store.uri
    outcome = app.run(cfg, app.RunPlace(tmp_path, ["train.iterations=5"]))
    return {
        "run_id": outcome.run_id,
        "params": config.flatten(cfg),
        "overrides": ["train.iterations=5"],
        "test_accuracy": outcome.test_accuracy,
        "validation_accuracy": outcome.validation_accuracy,
    }


def test_the_registered_version_is_the_runs_logged_model(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)  # whatever an earlier test of this worker left global
    best = best_row(store, tmp_path)
    version = registry.register_best(store, best)
    found = store.client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.ALIAS)
    [model] = store.client.search_logged_models([store.experiment_id])
    assert str(found.version) == version
    # Linked both ways, as MLflow's own register_model links them.
    assert (found.source, found.run_id) == (f"models:/{model.model_id}", best["run_id"])
    listed = json.loads(store.client.get_logged_model(model.model_id).tags["mlflow.modelVersions"])
    assert listed == [{"name": "digits-nn", "version": version}]
    assert not mlflow.is_tracking_uri_set()  # the store was global only while registering
    assert found.tags["data_md5"] == store.client.get_run(best["run_id"]).data.tags["data_md5"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}@{registry.ALIAS}")
    assert loaded.metadata.model_id == model.model_id


def logged_job(store: Store, md5: str | None = "0123abcd") -> dict:
    """A validated sweep's best job as its record gives it, with the run it logged: the
    run's data md5 tag (None: a run that has none) and its logged model, without the
    seconds of training that would make them."""
    from mlflow.entities import LoggedModelOutput

    client = store.client
    run_id = client.create_run(store.experiment_id).info.run_id
    if md5 is not None:
        client.set_tag(run_id, "data_md5", md5)
    model = client.create_logged_model(store.experiment_id, source_run_id=run_id, name="model")
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])
    client.set_terminated(run_id)
    return {
        "run_id": run_id,
        "params": {"seed": 3, "train.alpha": 0.25, "model.hidden_sizes": None},
        "overrides": ["seed=3", "train.alpha=0.25"],
        "test_accuracy": 0.9123456789,
        "validation_accuracy": 0.95,
        "model_id": model.model_id,
    }


def version_of(store: Store, version: str):
    return store.client.get_model_version(registry.REGISTERED_MODEL, version)


# What a reviewer of the registry reads to know where a version came from and how good
# it was, without opening the run.
def test_a_version_carries_the_jobs_params_data_md5_accuracies_and_overrides(
    store: Store,
) -> None:
    found = version_of(store, registry.register_best(store, logged_job(store)))
    assert found.tags == {
        "param.seed": "3",
        "param.train.alpha": "0.25",
        "param.model.hidden_sizes": "None",
        "data_md5": "0123abcd",
        "test_accuracy": "0.912346",
        "validation_accuracy": "0.950000",
    }
    assert found.description == "Best of a sweep by validation accuracy: seed=3 train.alpha=0.25"


def test_a_run_without_a_data_md5_is_registered_with_an_empty_one(store: Store) -> None:
    found = version_of(store, registry.register_best(store, logged_job(store, md5=None)))
    assert found.tags["data_md5"] == ""


def test_digits_nn_is_created_even_when_the_registry_holds_other_models(store: Store) -> None:
    store.client.create_registered_model("another-model")
    version = registry.register_best(store, logged_job(store))
    assert store.client.get_registered_model(registry.REGISTERED_MODEL).name == "digits-nn"
    assert version_of(store, version).run_id is not None


# The Models tab lists every version made of a logged model, not only the latest.
def test_registering_the_same_model_again_lists_both_versions_and_moves_the_alias(
    store: Store,
) -> None:
    best = logged_job(store)
    first, second = registry.register_best(store, best), registry.register_best(store, best)
    listed = store.client.get_logged_model(best["model_id"]).tags["mlflow.modelVersions"]
    assert json.loads(listed) == [
        {"name": "digits-nn", "version": first},
        {"name": "digits-nn", "version": second},
    ]
    found = store.client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.ALIAS)
    assert (first, second, str(found.version)) == ("1", "2", "2")


@pytest.fixture
def served_store(
    store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """The store of ``store_root`` behind a real MLflow tracking server (MLflow's own
    application, served from a thread of this process: a second process would spend
    seconds importing MLflow), opened by its http URI as a user's sweep opens it."""
    from mlflow.server import ARTIFACT_ROOT_ENV_VAR, BACKEND_STORE_URI_ENV_VAR, app, handlers
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils
    from werkzeug.serving import make_server

    # The server makes its store MLflow's global tracking and registry URI, variables
    # included, in this process: all four are put back after the test (a variable is
    # set first so that monkeypatch removes it again even if it was absent).
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    for key in HTTP_RETRY_BUDGET:  # open_store sets them for the process: undone after
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(BACKEND_STORE_URI_ENV_VAR, f"sqlite:///{store_root / 'mlflow.db'}")
    monkeypatch.setenv(ARTIFACT_ROOT_ENV_VAR, (tmp_path / "mlartifacts").as_uri())
    # The server keeps its stores in globals: this test's, and none left for the next.
    monkeypatch.setattr(handlers, "_tracking_store", None)
    monkeypatch.setattr(handlers, "_model_registry_store", None)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield open_store(TrackingConfig(uri=f"http://127.0.0.1:{server.server_port}"), tmp_path)
    finally:
        server.shutdown()


# A server checks that a models:/ source is the model the request names; the SQLite
# registry reads neither.
def test_through_a_tracking_server_the_version_is_the_runs_logged_model(
    served_store: Store,
) -> None:
    best = logged_job(served_store)
    version = registry.register_best(served_store, best)
    found = served_store.client.get_model_version_by_alias(
        registry.REGISTERED_MODEL, registry.ALIAS
    )
    assert str(found.version) == version
    assert (found.source, found.run_id) == (f"models:/{best['model_id']}", best["run_id"])
    # The server lists the version on the logged model itself: once, not again.
    listed = served_store.client.get_logged_model(best["model_id"]).tags["mlflow.modelVersions"]
    assert [str(entry["version"]) for entry in json.loads(listed)] == [version]
