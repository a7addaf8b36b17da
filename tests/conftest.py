"""Shared fixtures: temporary clones of the project for the slow end-to-end tests.

A clone is the working tree as git sees it (tracked and untracked, minus ignored
files), committed into a fresh repository, so the tests exercise exactly what a user
would get from `git clone`, including uncommitted work in progress.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# The longest modules first, the rest in file order. `make test` runs the suite in
# parallel processes, each taking one whole module at a time (pytest-xdist's loadfile):
# a long module handed out last would run alone at the end while the others sit idle.
LONGEST_FIRST = (
    "test_stack.py",
    "test_e2e_sweeps.py",
    "test_reliability.py",
    "test_benchmarks.py",
    "test_browser.py",
    "test_e2e_pipeline.py",
    "test_e2e_review.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable sort


def default_sigint() -> None:
    """``preexec_fn`` for a child that the test interrupts with SIGINT: Ctrl-C's default.

    A suite started in the background (``cmd &`` in a script, as some CI runners do)
    leaves SIGINT ignored in every process it starts, and Python then keeps it ignored:
    the child would never see the test's Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def project_env(**extra: str) -> dict[str, str]:
    """The environment of a user in this virtualenv: `python` and `dvc` on PATH are its own,
    no tracking URI leaks in from the caller, and BLAS has one thread for determinism."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["CI"] = "true"
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=project_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def dvc(*args: str, cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=check, **env)


def make_clone(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=destination, check=True)
    subprocess.run(["git", "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=destination, check=True)
    return destination


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

    Creating a store runs MLflow's whole chain of schema migrations, 1.5-2.5 s here; a
    copy of this one opens in under 0.1 s. It holds only MLflow's own Default
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
    ``tracking.open_store(..., root=tmp_path)`` looks by default. For the tests about
    what is logged, not about creating one (``test_reliability.py`` creates fresh stores,
    four processes at once)."""
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    return tmp_path


def mlflow_runs(repo: Path):
    """The client and every run of the repository's store. Taken under the pipeline's
    own lock: a reader that opens a store while a process is still creating it would
    race its schema migration."""
    from filelock import FileLock
    from mlflow import MlflowClient

    with FileLock(f"{repo / 'mlflow.db'}.lock", timeout=120):
        client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("digits-nn")
    if experiment is None:
        return client, []
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
