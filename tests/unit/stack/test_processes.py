"""Processes the stack records: a pid in its state file is trusted only while the process
holding it is the one the stack started (after a reboot, or once a daemon has died, its
pid may belong to an unrelated process)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from digits_nn.stack.control import down, status
from digits_nn.stack.layout import Layout, save_state
from digits_nn.stack.processes import identity, record, running, spawn


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen]:
    """A process the stack did not start."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize(
    "recorded",
    [{"started": "another-boot:12345"}, {}],
    ids=["another process's start", "a state file without one"],
)
def test_down_leaves_alone_a_process_that_holds_a_recorded_pid(
    tmp_path: Path, bystander: subprocess.Popen, recorded: dict
) -> None:
    layout = Layout(tmp_path)
    entry = {"pid": bystander.pid, "port": 5123, **recorded}
    save_state(layout, {"mlflow": entry, "munge": dict(entry)})
    down(layout)
    assert bystander.poll() is None, "down signalled a process the stack never started"


def test_status_calls_a_reused_pid_stopped(tmp_path: Path, bystander: subprocess.Popen) -> None:
    layout = Layout(tmp_path)
    save_state(layout, {"mlflow": {"pid": bystander.pid, "started": "another-boot:1"}})
    assert status(layout)["mlflow"]["running"] is False


def test_down_stops_the_process_the_stack_recorded(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    entry: dict = {}
    record(entry, spawn([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path / "log"))
    assert running(entry)
    save_state(layout, {"mlflow": entry})
    down(layout)
    assert not running(entry) and identity(entry["pid"]) is None


def test_a_process_is_known_by_its_boot_and_start_time(bystander: subprocess.Popen) -> None:
    mine = identity(bystander.pid)
    assert mine is not None and mine == identity(bystander.pid)
    assert mine != identity(1)
    assert identity(None) is None and identity(2**22 + 1) is None
