"""The SLURM launcher's view of a job's state without accounting (fast).

No cluster here: ``sacct`` and ``scontrol`` are stand-in scripts on PATH that print what
SLURM 22.05 printed on the local stack (see tests/e2e/test_stack.py for the real thing).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from hydra.core.utils import JobStatus
from submitit.slurm.slurm import SlurmJob

from hydra_plugins.digits_nn_launchers import submitit_launchers as launchers

# `scontrol show job -o 41` for an array of four, throttled to two at a time: task 0
# cancelled, task 1 running, tasks 2 and 3 still pending (one line for both), as SLURM
# printed them (shortened to the fields that matter, in SLURM's order).
SCONTROL_41 = """\
JobId=41 ArrayJobId=41 ArrayTaskId=2-3%2 ArrayTaskThrottle=2 JobName=run UserId=root(0) \
JobState=PENDING Reason=Resources Dependency=(null) NodeList= NumNodes=1 \
Command=(null) WorkDir=/tmp/x StdOut=/tmp/x/o_41_4294967294.txt Power=
JobId=43 ArrayJobId=41 ArrayTaskId=1 ArrayTaskThrottle=2 JobName=run UserId=root(0) \
JobState=RUNNING Reason=None Dependency=(null) NodeList=vm BatchHost=vm NumNodes=1 \
Command=(null) WorkDir=/tmp/x StdOut=/tmp/x/o_41_1.txt Power=
JobId=42 ArrayJobId=41 ArrayTaskId=0 ArrayTaskThrottle=2 JobName=run UserId=root(0) \
JobState=CANCELLED Reason=None Dependency=(null) NodeList=vm BatchHost=vm NumNodes=1 \
Command=(null) WorkDir=/tmp/x StdOut=/tmp/x/o_41_0.txt Power=
"""
# A job that is not an array, ended by its time limit.
SCONTROL_50 = (
    "JobId=50 JobName=run UserId=root(0) JobState=TIMEOUT Reason=TimeLimit"
    " Dependency=(null) NodeList=vm NumNodes=1 Command=/tmp/run.sh WorkDir=/tmp/x\n"
)


def test_scontrol_lines_give_each_array_task_its_own_state() -> None:
    states = launchers.parse_scontrol_jobs(SCONTROL_41 + SCONTROL_50)

    assert {job: info["State"] for job, info in states.items()} == {
        "41_0": "CANCELLED",
        "41_1": "RUNNING",
        "41_2": "PENDING",
        "41_3": "PENDING",
        "50": "TIMEOUT",
    }
    assert states["50"]["Reason"] == "TimeLimit"
    assert states["41_1"]["NodeList"] == "vm"


@pytest.mark.parametrize(
    ("spec", "tasks"),
    [("0", [0]), ("2-3%2", [2, 3]), ("1,3-5", [1, 3, 4, 5]), ("7%1", [7]), ("", [])],
)
def test_array_task_ranges(spec: str, tasks: list[int]) -> None:
    assert launchers._task_ids(spec) == tasks


def test_lines_without_a_job_or_a_state_are_skipped() -> None:
    assert launchers.parse_scontrol_jobs("No jobs in the system\n\nJobId=3 JobName=x\n") == {}


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sacct fails as without slurmdbd; scontrol prints the file of the asked job id, or
    says the id is invalid (a job purged after MinJobAge). Each call is logged."""
    bin_dir, shown = tmp_path / "bin", tmp_path / "shown"
    bin_dir.mkdir()
    shown.mkdir()
    calls = tmp_path / "calls"
    scripts = {
        "sacct": f'echo sacct >> {calls}\necho "Slurm accounting storage is disabled" >&2\n'
        "exit 1\n",
        "scontrol": f'echo "scontrol $*" >> {calls}\n'
        f'f={shown}/"$4"\n'
        'if [ -f "$f" ]; then cat "$f"; else\n'
        '  echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1; fi\n',
    }
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (shown / "41").write_text(SCONTROL_41)
    return tmp_path


def test_without_accounting_the_watcher_asks_scontrol_and_a_cancelled_task_is_done(
    fake_slurm: Path,
) -> None:
    watcher = launchers.ScontrolWatcher()
    for job in ("41_0", "41_1", "41_3", "60_0"):
        watcher.register_job(job)

    assert watcher.get_state("41_0", mode="force") == "CANCELLED"
    assert watcher.is_done("41_0", mode="cache")
    assert [watcher.is_done(j, mode="cache") for j in ("41_1", "41_3")] == [False, False]
    # slurmctld no longer knows array 60: it ended over MinJobAge ago.
    assert watcher.get_state("60_0", mode="cache") == launchers.PURGED
    assert watcher.is_done("60_0", mode="cache")

    time.sleep(0.01)  # submitit ignores a forced update within 1 ms of the last
    watcher.get_state("41_1", mode="force")  # again: sacct is not asked twice
    calls = (fake_slurm / "calls").read_text().splitlines()
    assert calls.count("sacct") == 1
    # Only the arrays with unfinished tasks are asked again.
    assert calls[1:] == [
        "scontrol show job -o 41",
        "scontrol show job -o 60",
        "scontrol show job -o 41",
    ]


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETING", "SUSPENDED", "UNKNOWN"])
def test_states_of_a_job_that_may_still_give_a_result_are_not_its_end(state: str) -> None:
    watcher = launchers.ScontrolWatcher()
    watcher.register_job("7")
    watcher._info_dict["7"] = {"State": state}
    assert not watcher.is_done("7", mode="cache")


@pytest.mark.parametrize(
    "state", ["CANCELLED", "CANCELLED by 0", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PURGED"]
)
def test_states_of_an_ended_job_are_its_end(state: str) -> None:
    watcher = launchers.ScontrolWatcher()
    watcher.register_job("7")
    watcher._info_dict["7"] = {"State": state}
    assert watcher.is_done("7", mode="cache")


def test_a_task_that_left_no_result_comes_back_failed_naming_its_slurm_state(
    fake_slurm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launchers, "WATCHER", launchers.ScontrolWatcher())
    folder = fake_slurm / "submitit"
    job = SlurmJob(folder=folder, job_id="41_0")
    job.paths.folder.mkdir(parents=True)
    job._results_timeout_s = 0  # submitit's wait for a slow shared disk

    (returned,) = launchers._TolerantJob(job).results()

    assert returned.status == JobStatus.FAILED
    with pytest.raises(launchers.JobEndedByCluster, match=r"41_0 ended without a result"):
        returned.return_value  # noqa: B018  (raises the job's error)
    assert "SLURM state CANCELLED" in str(returned._return_value)
