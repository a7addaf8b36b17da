"""Opening the store: a broken one is named without its password, a job gives up on a
dead server within the project's own retry budget, and a store travels
pickled to a launcher's jobs."""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path

import pytest

from digits_nn.config import TrackingConfig
from digits_nn.errors import TrackingError
from digits_nn.tracking import store as stores
from digits_nn.tracking.store import HTTP_RETRY_BUDGET, open_store, worst_case_http_wait


def test_an_unreachable_store_is_named_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(TrackingError) as caught:
        open_store(TrackingConfig(uri="http://alice:pw-123@127.0.0.1:9"), tmp_path)
    assert "pw-123" not in str(caught.value)
    assert "http://alice:***@127.0.0.1:9" in str(caught.value)


def test_tracking_off_opens_no_store(tmp_path: Path) -> None:
    assert open_store(TrackingConfig(enabled=False, uri="http://127.0.0.1:9"), tmp_path) is None


def test_the_default_store_is_the_projects_mlflow_db_unless_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert stores.resolve_uri(TrackingConfig(), tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert stores.resolve_uri(TrackingConfig(uri="http://h:1"), tmp_path) == "http://h:1"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:2")
    assert stores.resolve_uri(TrackingConfig(uri="http://h:1"), tmp_path) == "http://env:2"


def test_http_retry_budget_is_set_for_our_runs_and_a_users_own_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in HTTP_RETRY_BUDGET:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    stores.limit_http_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert (
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        == HTTP_RETRY_BUDGET["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )


def test_a_dead_server_fails_a_logging_call_within_the_budget_and_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a port nobody listens on, with the project's budget, one logging call
    gives up in well under 60 s (MLflow's own default retries for minutes), and says
    nothing per attempt: the run's one line reports it."""
    from mlflow import MlflowClient

    for key in HTTP_RETRY_BUDGET:
        monkeypatch.delenv(key, raising=False)
    stores.limit_http_retries()
    client = MlflowClient(tracking_uri="http://127.0.0.1:9")
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception):  # noqa: B017 - MLflow's own
        client.get_experiment_by_name("digits-nn")
    assert time.monotonic() - started < worst_case_http_wait()
    assert worst_case_http_wait() <= 60
    assert not [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()]


def test_a_store_survives_pickling_as_a_launcher_ships_it_to_its_jobs(store) -> None:
    """submitit and Ray pickle the sweep callback, store included, for every job."""
    copy = pickle.loads(pickle.dumps(store))
    assert copy.client.get_experiment(store.experiment_id).name == "digits-nn"


@pytest.mark.parametrize("from_environment", [None, "sqlite:////elsewhere/mlflow.db"])
def test_a_store_made_global_for_a_block_leaves_mlflows_uri_and_the_environment_as_they_were(
    store, monkeypatch: pytest.MonkeyPatch, from_environment: str | None
) -> None:
    import mlflow

    if from_environment is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", from_environment)
    with stores.as_global(store):
        assert mlflow.get_tracking_uri() == store.uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == from_environment
    # Once the variable is gone, no URI is left set: the block did not turn the
    # environment's URI into MLflow's own (it would then outlive the variable).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert not mlflow.is_tracking_uri_set()


@pytest.mark.parametrize(
    ("settings", "seconds"),
    [
        # The project's budget: 3 attempts of 15 s, and back-offs of 1 + 1 and 2 + 1 s.
        ({}, 3 * 15 + (1 + 1) + (2 + 1)),
        # A user's own: 4 attempts of 2 s, back-offs of 0.5, 1 and 2 s with 0.25 s each.
        (
            {
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0.5",
                "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.25",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
            },
            4 * 2 + (0.5 + 0.25) + (1 + 0.25) + (2 + 0.25),
        ),
    ],
    ids=["project-budget", "users-own"],
)
def test_the_worst_case_wait_is_every_attempt_timing_out_plus_every_back_off(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], seconds: float
) -> None:
    for key in HTTP_RETRY_BUDGET:
        monkeypatch.delenv(key, raising=False)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    assert worst_case_http_wait() == seconds
