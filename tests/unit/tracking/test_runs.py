"""The run lifecycle against a real SQLite store: a run is closed however its block
ends, with real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from digits_nn import errors
from digits_nn.errors import Terminated, TrackingError
from digits_nn.tracking import runs
from helpers import project_env


def interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: KeyboardInterrupt


def terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the entry points' handler: Terminated


def fail() -> None:
    raise ValueError("weights went sideways at iteration 7")


@pytest.mark.parametrize(
    ("work", "raised", "status", "error_tag"),
    [
        (lambda: None, None, "FINISHED", None),
        (interrupt, KeyboardInterrupt, "KILLED", None),
        (terminate, Terminated, "KILLED", None),
        (fail, ValueError, "FAILED", "weights went sideways at iteration 7"),
    ],
    ids=["finished", "sigint", "sigterm", "exception"],
)
def test_a_run_is_closed_as_its_block_ends(store, work, raised, status, error_tag) -> None:
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    # Ctrl-C's KeyboardInterrupt even when the suite runs with SIGINT ignored (in the
    # background, or under a mutation tool); SIGTERM as the entry points handle it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    errors.raise_on_sigterm()
    opened = []
    try:
        if raised is None:
            with runs.run(store, name="lifecycle") as run:
                opened.append(run.run_id)
                work()
        else:
            with pytest.raises(raised), runs.run(store, name="lifecycle") as run:
                opened.append(run.run_id)
                work()
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        errors.received.clear()  # or a later exit in this process would read as SIGTERM's
    logged = store.client.get_run(opened[0])
    assert logged.info.status == status
    assert logged.data.tags.get("error") == error_tag


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ("refused\nsecond line", "refused"),
        ("", "ConnectionError"),
        ("API request to http://a:pw@h/api failed with exception boom", "API request to"),
    ],
)
def test_a_server_that_stopped_answering_is_named_in_one_line(store, error, said) -> None:
    """The run is left as the server holds it (closing it would spend another retry
    budget in vain); the error names the server and the first line of the failure."""
    import requests

    failure = requests.exceptions.ConnectionError(error) if said != "API request to" else None
    with pytest.raises(TrackingError) as stopped, runs.run(store, name="gone") as run:
        raise failure or RuntimeError(error)
    message = str(stopped.value)
    assert message.startswith(
        f"MLflow server {store.uri} stopped answering during run {run.run_id} ("
    )
    assert f"({said}" in message and "second line" not in message and "pw" not in message
    assert message.endswith("The runs it holds are kept; run the job again once it is back.")
    assert store.client.get_run(run.run_id).info.status == "RUNNING"


def test_a_run_that_fails_before_its_work_is_failed_with_its_error(store) -> None:
    run_id = runs.record_failure(store, "refused", {"overrides": "train.alpha=-1"}, "bad")
    logged = store.client.get_run(run_id)
    assert (logged.info.status, logged.data.tags["error"]) == ("FAILED", "bad")


def test_a_reopened_run_is_the_same_run(store) -> None:
    """What the evaluate stage does with the run the train stage handed over: log into it
    again, and close it."""
    with runs.run(store, name="train", tags={"model_md5": "abc"}) as trained:
        trained.params({"seed": 0})
    with runs.run(store, run_id=trained.run_id) as again:
        again.metrics({"test_accuracy": 0.5})
    logged = store.client.get_run(trained.run_id)
    assert logged.info.status == "FINISHED"
    assert (logged.data.params, logged.data.metrics) == ({"seed": "0"}, {"test_accuracy": 0.5})


# A pipeline with tracking off never imports mlflow (tests/e2e/test_reliability.py runs it
# whole): each logging call checks that its run is on before it imports mlflow.
LOG_TO_A_RUN_WITHOUT_TRACKING = """
import sys
import numpy as np
from digits_nn.data.steps import Split
from digits_nn.tracking.runs import RunLog

run = RunLog()
assert not run.enabled
run.params({"seed": 0})
run.metrics({"test_accuracy": 1.0})
run.history("train_cost", [1.0, 0.5])
run.history("test_accuracy_curve", {100: 0.5})
run.files(["nowhere.txt"])
run.tag("model_md5", "abc")
run.datasets(Split(np.zeros((2, 64)), np.zeros((2, 64)), np.zeros(2), np.zeros(2)), "0", "x")
print(sorted(name for name in sys.modules if name.split(".")[0] == "mlflow"))
"""


def test_a_run_of_a_pipeline_without_tracking_logs_nothing_and_imports_no_mlflow() -> None:
    listed = subprocess.run(
        [sys.executable, "-c", LOG_TO_A_RUN_WITHOUT_TRACKING],
        capture_output=True,
        text=True,
        check=True,
        env=project_env(),
    )
    assert listed.stdout.strip() == "[]"


def test_a_dataset_another_run_stored_meanwhile_is_logged_on_the_next_try() -> None:
    """Two jobs on the same fold both insert its dataset; the second finds it next time."""
    from mlflow.exceptions import MlflowException

    from digits_nn.tracking.runs import log_inputs_once_stored

    class Racing:
        calls = 0

        def log_inputs(self, run_id, datasets):
            Racing.calls += 1
            if Racing.calls == 1:
                raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed")

    log_inputs_once_stored(Racing(), "run", [])
    assert Racing.calls == 2

    class Broken:
        def log_inputs(self, run_id, datasets):
            raise MlflowException("no such run")

    with pytest.raises(MlflowException, match="no such run"):
        log_inputs_once_stored(Broken(), "run", [])


@pytest.mark.parametrize(
    ("length", "n", "steps"),
    [
        (0, 10, []),
        (1, 10, [1]),
        (5, 1, [1, 2, 3, 4, 5]),
        (25, 10, [1, 10, 20, 25]),
        (30, 10, [1, 10, 20, 30]),
        (9, 10, [1, 9]),
    ],
)
def test_every_nth_keeps_the_first_every_nth_and_the_last_iteration(length, n, steps) -> None:
    import numpy as np

    curve = np.arange(1.0, length + 1.0) / 7
    assert runs.every_nth(curve, n) == {step: curve[step - 1] for step in steps}


def refuse(db: Path, table: str, key: str) -> None:
    """Make the store ``db`` refuse rows of ``table`` named ``key``, as a broken or full
    store would (a SQLite trigger); everything else it stores as before."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN NEW.key = '{key}'"
            f" BEGIN SELECT RAISE(ABORT, 'the store refuses {key}'); END"
        )
        connection.commit()


@pytest.mark.parametrize(
    ("table", "key", "error_tag"),
    [
        ("metrics", "train_cost", "weights went sideways at iteration 7"),
        ("tags", "error", None),
    ],
    ids=["its-history-is-refused", "its-error-tag-is-refused"],
)
def test_a_failed_run_is_closed_as_failed_with_its_own_error_whatever_the_store_refuses(
    store, store_root: Path, table: str, key: str, error_tag: str | None
) -> None:
    """Closing a failed run must not fail in its turn: the block's error is the one
    raised, and the run is FAILED, even when its last history batch or its error tag
    cannot be stored."""
    refuse(store_root / "mlflow.db", table, key)
    with pytest.raises(ValueError, match="sideways"), runs.run(store, name="broken") as run:
        run.history("train_cost", [2.0, 1.0])
        fail()
    logged = store.client.get_run(run.run_id)
    assert logged.info.status == "FAILED"
    assert logged.data.tags.get("error") == error_tag


class Unsaid(Exception):
    """An error raised without a message."""


@pytest.mark.parametrize(
    ("error", "tag"),
    [
        (ValueError("x" * 4999 + "yz" + "w" * 999), "x" * 4999 + "y"),
        (Unsaid(), "Unsaid"),
        # Not MLflow's wording for a server that stopped answering: the run's own failure.
        (
            RuntimeError("API request to /runs/get returned 404"),
            "API request to /runs/get returned 404",
        ),
    ],
    ids=["long", "no-message", "api-error-from-a-server-that-answers"],
)
def test_a_failed_runs_error_tag_is_its_first_5000_characters_or_its_type(
    store, error: Exception, tag: str
) -> None:
    with pytest.raises(type(error)), runs.run(store, name="failing") as run:
        raise error
    logged = store.client.get_run(run.run_id)
    assert (logged.info.status, logged.data.tags["error"]) == ("FAILED", tag)


def test_a_run_that_fails_before_its_work_keeps_the_first_5000_characters_of_its_error(
    store,
) -> None:
    error = "x" * 4999 + "yz" + "w" * 999
    run_id = runs.record_failure(store, "refused", {}, error)
    assert store.client.get_run(run_id).data.tags["error"] == "x" * 4999 + "y"
