"""MLflow in the fast suite: how a run is closed, and the logged model as MLflow loads it.

Both used to be guarded only by slow end-to-end tests. Here they run against a real
SQLite store in a temporary folder, with real signals and MLflow's own pyfunc loader.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.datasets import load_digits

from digits_nn import artifacts, cli, config, data, errors, modern, tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tracking.Store:
    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        # root: the artifacts go to the temporary folder, not the project's mlartifacts/.
        tracking_config = config.TrackingConfig(uri=f"sqlite:///{root}/mlflow.db")
        return tracking.open_store(tracking_config, root)


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
        (terminate, tracking.Terminated, "KILLED", None),
        (fail, ValueError, "FAILED", "weights went sideways at iteration 7"),
    ],
    ids=["finished", "sigint", "sigterm", "exception"],
)
def test_a_run_is_closed_as_its_block_ends(store, work, raised, status, error_tag) -> None:
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    # Ctrl-C's KeyboardInterrupt even when the suite runs with SIGINT ignored (in the
    # background, or under a mutation tool); SIGTERM as the entry points handle it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tracking.raise_on_sigterm()
    opened = []
    try:
        if raised is None:
            with tracking.run(store, name="lifecycle") as run_id:
                opened.append(run_id)
                work()
        else:
            with pytest.raises(raised), tracking.run(store, name="lifecycle") as run_id:
                opened.append(run_id)
                work()
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        errors.received.clear()  # or a later exit in this process would read as SIGTERM's
    run = store.client.get_run(opened[0])
    assert run.info.status == status
    assert run.data.tags.get("error") == error_tag


@pytest.mark.parametrize(
    ("signum", "caught", "status"),
    [(signal.SIGINT, KeyboardInterrupt, 130), (signal.SIGTERM, tracking.Terminated, 143)],
    ids=["sigint", "sigterm"],
)
def test_an_interruption_a_library_turned_into_its_own_error_still_exits_with_its_status(
    signum, caught, status, caplog, entry_point_signals
) -> None:
    # Seen in CI: Ctrl-C landed while Hydra composed the next job's config; omegaconf
    # made an AttributeError of the KeyboardInterrupt, and Hydra reported it and exited 1.
    with pytest.raises(SystemExit) as exited, cli.exit_on_user_error():
        try:
            os.kill(os.getpid(), signum)
        except caught:
            raise SystemExit(1) from None  # what Hydra does with the library's error
    assert exited.value.code == status
    assert "outputs are written whole or not at all" in caplog.text

    errors.received.clear()  # without a signal, an exit status is left alone
    with pytest.raises(SystemExit) as exited, cli.exit_on_user_error():
        raise SystemExit(1)
    assert exited.value.code == 1


@pytest.fixture
def entry_point_signals() -> Iterator[None]:
    """The handlers an entry point installs, with no signal recorded; restored after."""
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    errors.received.clear()
    try:
        errors.record_sigint()
        errors.raise_on_sigterm()
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        errors.received.clear()


@pytest.mark.parametrize(
    "signum, caught, status",
    [(signal.SIGINT, KeyboardInterrupt, 130), (signal.SIGTERM, tracking.Terminated, 143)],
    ids=["sigint", "sigterm"],
)
def test_an_interruption_a_library_swallowed_stops_the_next_job_and_the_exit_status(
    signum, caught, status, caplog, entry_point_signals
) -> None:
    # Seen in CI: Ctrl-C as an in-process sweep moved to its next job vanished, and the
    # sweep ran to its end and exited 0.
    from digits_nn import runner

    with contextlib.suppress(caught):  # what the library did
        os.kill(os.getpid(), signum)
    with pytest.raises(caught):  # the next job does not start
        runner.run(OmegaConf.create({}))
    with pytest.raises(SystemExit) as exited:
        cli.guarded(lambda: None)  # the work "ends normally"
    assert exited.value.code == status
    assert "outputs are written whole or not at all" in caplog.text

    errors.received.clear()  # without a signal, nothing changes
    with pytest.raises(SystemExit) as exited:
        cli.guarded(lambda: None)
    assert exited.value.code == 0


def test_a_run_that_fails_before_its_work_is_failed_with_its_error(store) -> None:
    run_id = tracking.record_failure(store, "refused", {"overrides": "train.alpha=-1"}, "bad")
    run = store.client.get_run(run_id)
    assert (run.info.status, run.data.tags["error"]) == ("FAILED", "bad")


def test_the_served_model_scales_raw_pixels_as_the_pipeline_did(store, tmp_path: Path) -> None:
    import mlflow.pyfunc

    # The oracle: the network's labels for rows scaled by sklearn, from the raw pixels.
    raw = load_digits().data[:300]
    scaled = data.standardise(data.load_digits())
    network = modern.init_network([64, 30, 10], "xavier", seed=4)
    expected = modern.predict(network, scaled.X[:300])
    assert not np.array_equal(expected, modern.predict(network, raw))  # scaling matters

    model_file = tmp_path / "model.npz"
    artifacts.write_model(model_file, network)
    with tracking.run(store, name="served") as run_id:
        tracking.log_model(store, run_id, model_file, scaled.mean, scaled.scale)
    local = store.client.download_artifacts(run_id, "model", str(tmp_path))
    model = mlflow.pyfunc.load_model(local)
    frame = pd.DataFrame(raw, columns=[f"pixel_{i}" for i in range(64)])
    np.testing.assert_array_equal(np.asarray(model.predict(frame)), expected)
