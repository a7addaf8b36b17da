"""joblib's workers: what the fork server preloads, and which launcher gets it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from digits_nn.sweeps import workers
from helpers import sweep_config


def test_the_fork_server_preloads_modules_that_exist() -> None:
    # The fork server skips a module it cannot import without a word; a typo here would
    # quietly make every worker import it again.
    for module in [*workers.JOB_MODULES, *workers.TRACKING_MODULES, workers.WORKER_INIT]:
        assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize(
    ("launcher", "expected"), [("hydra/launcher=joblib", True), ("hydra/launcher=basic", False)]
)
def test_only_the_joblib_launcher_gets_the_fork_server(
    tmp_path: Path, launcher: str, expected: bool
) -> None:
    assert workers.uses_joblib(sweep_config(tmp_path, launcher)) is expected


def test_the_fork_server_starts_with_a_jobs_modules_preloaded() -> None:
    """joblib's workers, through loky, fork from a running server that preloads what a
    job imports (the tracking modules when the sweep tracks), the worker set-up last."""
    import os
    from multiprocessing import forkserver

    from joblib.externals.loky.backend import context

    server = forkserver._forkserver
    before = context.get_start_method()
    try:
        workers.start_fork_server(tracking_enabled=False)
        assert context.get_start_method() == "forkserver"
        assert server._preload_modules == [*workers.JOB_MODULES, workers.WORKER_INIT]
        os.kill(server._forkserver_pid, 0)  # running
        workers.start_fork_server(tracking_enabled=True)
        tracked = [*workers.JOB_MODULES, *workers.TRACKING_MODULES, workers.WORKER_INIT]
        assert server._preload_modules == tracked
    finally:
        context.set_start_method(before, force=True)
        server._stop()
        server.set_forkserver_preload([])
