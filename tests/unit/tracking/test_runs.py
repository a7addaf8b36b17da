"""The run lifecycle against a real SQLite store: a run is closed however its block
ends, with real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from digits_nn import errors
from digits_nn.errors import Terminated
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


def test_a_run_that_fails_before_its_work_is_failed_with_its_error(store) -> None:
    run_id = runs.record_failure(store, "refused", {"overrides": "train.alpha=-1"}, "bad")
    logged = store.client.get_run(run_id)
    assert (logged.info.status, logged.data.tags["error"]) == ("FAILED", "bad")


def test_a_reopened_run_is_the_same_run_and_the_newest_run_of_a_tag_is_found(store) -> None:
    """What the evaluate stage does: find the train stage's run by the model's md5 and
    log into it again."""
    with runs.run(store, name="older", tags={"model_md5": "abc"}):
        pass
    with runs.run(store, name="train", tags={"model_md5": "abc"}) as trained:
        trained.params({"seed": 0})
    assert runs.find_run(store, "model_md5", "abc") == trained.run_id
    assert runs.find_run(store, "model_md5", "other") is None
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
