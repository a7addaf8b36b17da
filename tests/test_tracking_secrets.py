"""Secrets never leave the process: credentials in a tracking URI are redacted from every
param, tag and logged file (issue 14 item 6), and a job gives up on a dead server within
the project's own retry budget (issue 11)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from digits_nn import config, data, pipeline, tracking
from digits_nn.errors import TrackingError

SECRET = "s3cret-do-not-log"
URI = f"http://alice:{SECRET}@127.0.0.1:5999"

RUN_DATA = pipeline.RunData(
    data.Split(np.zeros((10, 64)), np.zeros((10, 64)), np.arange(10), np.arange(10)),
    "0" * 32,
    "data/processed/split.npz",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URI, "http://alice:***@127.0.0.1:5999"),
        (f"tracking.uri={URI} seed=1", "tracking.uri=http://alice:***@127.0.0.1:5999 seed=1"),
        (
            "postgresql+psycopg2://bob:pw@db:5432/mlflow",
            "postgresql+psycopg2://bob:***@db:5432/mlflow",
        ),
        ("https://token@host/path", "https://***@host/path"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("user@example.org and http://host/a@b", "user@example.org and http://host/a@b"),
        ("seed=3", "seed=3"),
    ],
)
def test_redact_hides_userinfo_of_every_uri_and_nothing_else(text: str, expected: str) -> None:
    assert tracking.redact(text) == expected


def test_credentials_in_the_tracking_uri_reach_no_param_tag_or_logged_file(
    tmp_path: Path, store_root: Path
) -> None:
    """The run's params, its overrides tag and its logged params.yaml, as the pipeline
    writes them, with ``tracking.uri`` carrying a password (issue 14 item 6)."""
    store_cfg = config.TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    store = tracking.open_store(store_cfg, root=tmp_path)
    cfg = config.parse({"tracking": {"uri": URI}})
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"tracking:\n  uri: {URI}\n")
    with pipeline.recording(
        store, cfg, run_data=RUN_DATA, overrides=f"tracking.uri={URI} seed=0"
    ) as recorder:
        recorder.config(cfg, params_file)
        run_id = recorder.run_id
    run = store.client.get_run(run_id)
    assert run.data.params["tracking.uri"] == "http://alice:***@127.0.0.1:5999"
    assert run.data.tags["overrides"] == "tracking.uri=http://alice:***@127.0.0.1:5999 seed=0"
    assert SECRET not in str(run.data.params) + str(run.data.tags)
    logged = Path(store.client.download_artifacts(run_id, "params.yaml", str(tmp_path / "dl")))
    assert SECRET not in logged.read_text()
    assert "alice:***@127.0.0.1" in logged.read_text()
    assert SECRET in params_file.read_text()  # the user's own file is left as it was


def test_an_unreachable_store_is_named_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(TrackingError) as caught:
        tracking.open_store(config.TrackingConfig(uri="http://alice:pw-123@127.0.0.1:9"), tmp_path)
    assert "pw-123" not in str(caught.value)
    assert "http://alice:***@127.0.0.1:9" in str(caught.value)


def test_http_retry_budget_is_set_for_our_runs_and_a_users_own_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in tracking.HTTP_RETRY_BUDGET:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    tracking.limit_http_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert (
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        == tracking.HTTP_RETRY_BUDGET["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )


def test_a_dead_server_fails_a_logging_call_within_the_budget_and_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a port nobody listens on, with the project's budget, one logging call
    gives up in well under 60 s (MLflow's own default retries for about 4 minutes), and
    says nothing per attempt: the run's one line reports it (a job whose server stopped
    printed some 60 lines of urllib3 retries and MLflow batch errors)."""
    from mlflow import MlflowClient

    for key in tracking.HTTP_RETRY_BUDGET:
        monkeypatch.delenv(key, raising=False)
    tracking.limit_http_retries()
    client = MlflowClient(tracking_uri="http://127.0.0.1:9")
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception):  # noqa: B017 - MLflow's own
        client.get_experiment_by_name("digits-nn")
    assert time.monotonic() - started < tracking.worst_case_http_wait()
    assert tracking.worst_case_http_wait() <= 60
    assert not [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()]


def test_a_store_survives_pickling_as_a_launcher_ships_it_to_its_jobs(
    tmp_path: Path, store_root: Path
) -> None:
    """submitit and Ray pickle the sweep callback, store included, for every job."""
    import pickle

    store = tracking.open_store(
        config.TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}"), root=tmp_path
    )
    copy = pickle.loads(pickle.dumps(store))
    assert copy.client.get_experiment(store.experiment_id).name == "digits-nn"


def test_ray_jobs_get_the_shells_mlflow_settings_but_never_a_secret() -> None:
    """Ray writes every runtime_env into its logs: secrets stay with ``ray start``."""
    from hydra_plugins.digits_nn_launchers.ray_launcher import job_environment

    shell = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_TRACKING_USERNAME": "digits",
        "MLFLOW_TRACKING_PASSWORD": SECRET,
        "MLFLOW_TRACKING_TOKEN": SECRET,
        "HOME": "/root",
    }
    env = job_environment(shell, {"OMP_NUM_THREADS": "1"})
    assert env == {
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_TRACKING_USERNAME": "digits",
    }
    assert "MLFLOW_TRACKING_URI" not in job_environment({"MLFLOW_TRACKING_URI": URI}, {})
