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
