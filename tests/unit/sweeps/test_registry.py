"""The best validated job's model as a version of ``digits-nn``, aliased ``challenger``,
in a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digits_nn import config
from digits_nn.config import parse
from digits_nn.pipeline import app
from digits_nn.sweeps import registry
from digits_nn.tracking.store import Store


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
