"""Shared fixtures: temporary clones of the project, MLflow stores and servers.

The helpers they use, and that tests call directly, are in ``helpers.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import dvc, free_port, make_clone, project_env

# The longest modules first, the rest in file order. `make test` runs the suite in
# parallel processes, each taking one whole module at a time (pytest-xdist's loadfile):
# a long module handed out last would run alone at the end while the others sit idle.
LONGEST_FIRST = (
    "test_stack.py",
    "test_sweeps.py",
    "test_successive_halving.py",
    "test_optuna.py",
    "test_reliability.py",
    "test_benchmarks.py",
    "test_browser.py",
    "test_logged_model.py",
    "test_dvc_pipeline.py",
    "test_accuracy.py",
    "test_run_py.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable sort


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh clone with nothing reproduced yet."""
    return make_clone(tmp_path / "repo")


@pytest.fixture(scope="session")
def reproduced_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clone on which `dvc repro` has run; copy it before changing it."""
    repo = make_clone(tmp_path_factory.mktemp("reproduced") / "repo")
    dvc("repro", cwd=repo)
    return repo


@pytest.fixture
def reproduced(reproduced_once: Path, tmp_path: Path) -> Path:
    """A private copy of the reproduced clone (DVC cache and MLflow store included)."""
    copy = tmp_path / "repo"
    shutil.copytree(reproduced_once, copy, symlinks=True)
    return copy


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created and migrated once per test process.

    Creating a store runs MLflow's whole chain of schema migrations, which takes
    seconds; a copy of this one opens at once. It holds only MLflow's own Default
    experiment: each test's store still creates its experiment, artifact folder
    included, under the test's own root.
    """
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("migrated-store") / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store_root(tmp_path: Path, migrated_store: Path) -> Path:
    """``tmp_path`` with a migrated, empty store at ``mlflow.db``, where
    ``open_store(..., root=tmp_path)`` looks by default. For the tests about what is
    logged, not about creating one (tests/e2e/test_reliability.py creates fresh stores,
    four processes at once)."""
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    return tmp_path


@pytest.fixture
def sweep_root(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``store_root`` as the folder a sweep runs in (its store, artifacts and sweep
    directories there), for an in-process ``helpers.multirun``; the sweep's jobs record
    in no time (``helpers.quick_outcome``)."""
    from digits_nn.pipeline import app
    from helpers import quick_outcome

    monkeypatch.chdir(store_root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store_root / 'mlflow.db'}")
    monkeypatch.setattr(app, "run", lambda cfg, place, *_, **__: quick_outcome(cfg, place))
    return store_root


@pytest.fixture
def store(store_root: Path, monkeypatch: pytest.MonkeyPatch):
    """The ``digits-nn`` experiment of a fresh store in ``store_root`` (its artifacts
    there too)."""
    from digits_nn.config import TrackingConfig
    from digits_nn.tracking.store import open_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return open_store(TrackingConfig(), root=store_root)


@pytest.fixture
def mlflow_server(request: pytest.FixtureRequest) -> Iterator[callable]:
    """Start a real `mlflow server` on 127.0.0.1 over a given store; stopped afterwards."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(store_uri: str, cwd: Path) -> str:
        import urllib.request

        port = free_port()
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "1", "--backend-store-uri", store_uri]
        log = open(cwd / "mlflow-server.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(command, cwd=cwd, env=project_env(), stdout=log, stderr=log)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError((cwd / "mlflow-server.log").read_text())
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                time.sleep(0.5)
        raise AssertionError("mlflow server did not answer /health within 90 s")

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def pytest_terminal_summary(terminalreporter) -> None:
    """What each fresh-clone gate checked, bits or tolerances, in the log of every run
    (tests/e2e/test_fresh_clone.py records it; with xdist it arrives in the reports)."""
    lines = [
        f"{report.nodeid}: {value}"
        for report in terminalreporter.stats.get("passed", [])
        for name, value in report.user_properties
        if name == "reproduction"
    ]
    if lines:
        terminalreporter.section("what the fresh-clone gate checked")
        for line in lines:
            terminalreporter.write_line(line)
