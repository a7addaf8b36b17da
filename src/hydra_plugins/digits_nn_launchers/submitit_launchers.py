"""hydra-submitit-launcher's SLURM and local launchers, made to survive a job that the
cluster ends (``scancel``, the time limit, a lost node).

The plugin collects results with ``[job.results()[0] for job in jobs]``: the first job
without a result raises, and the whole sweep ends with a traceback and no summary, while
the other jobs go on. And submitit learns that a job ended from ``sacct``: on a cluster
without accounting (no slurmdbd) every state is UNKNOWN, which submitit takes for "still
running", so the sweep waits forever for a job that was cancelled. Here:

- in the job, SIGTERM (what SLURM sends first when it ends a job; submitit ignores it)
  raises :class:`digits_nn.errors.Terminated`, so the open MLflow run is closed as
  KILLED, as on Ctrl-C. The preset asks for no early warning of the time limit
  (``signal_delay_s: 0``); if a user asks for one, submitit's handler would fail the
  job at once, as it cannot be checkpointed: the job runs on instead, to the limit;
- in the launching process, each SLURM job's state comes from :class:`ScontrolWatcher`:
  ``sacct`` where accounting is on, else slurmctld's own view (``scontrol show job``);
- a job that ended without a result comes back as a FAILED ``JobReturn`` naming its
  SLURM state (CANCELLED, TIMEOUT, ...), so the sweep lists it and exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from digits_nn import errors

log = logging.getLogger(__name__)

# What scontrol says of a job that slurmctld no longer knows: it ended more than
# MinJobAge (300 s by default) ago. With no result left, it ended without one.
PURGED = "PURGED"
# SLURM states of a job that may still run or give a result. submitit's own list lacks
# the suspended and transitional ones, which it would take for the end.
NOT_ENDED = {
    "BOOT_FAIL_REQUEUE",
    "COMPLETING",
    "CONFIGURING",
    "PENDING",
    "PREEMPTED",
    "READY",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "RESV_DEL_HOLD",
    "RUNNING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "SUSPENDED",
    "UNKNOWN",
}
_FIELD = re.compile(r"(?:^|\s)([A-Za-z/:]+)=(\S*)")


class JobEndedByCluster(RuntimeError):
    """A job that left no result: cancelled, timed out, or its node lost."""


def parse_scontrol_jobs(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show job -o`` output (one job a line) as submitit's watcher keeps
    states: by job id, an array task as ``<array job id>_<task>``, with its ``State``.

    The pending rest of an array is one line whose ``ArrayTaskId`` is a range such as
    ``2-7%2`` (``%`` the throttle): each of its tasks gets that line's state.
    """
    states: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields: dict[str, str] = {}
        for key, value in _FIELD.findall(line):
            fields.setdefault(key, value)
        if "JobId" not in fields or "JobState" not in fields:
            continue
        info = {
            "JobID": fields["JobId"],
            "State": fields["JobState"],
            "Reason": fields.get("Reason", ""),
            "NodeList": fields.get("NodeList", ""),
        }
        array_id, tasks = fields.get("ArrayJobId"), fields.get("ArrayTaskId")
        if array_id and tasks:
            for task in _task_ids(tasks):
                states[f"{array_id}_{task}"] = info
        else:
            states[fields["JobId"]] = info
    return states


def _task_ids(spec: str) -> list[int]:
    """``0``, ``2-7%2`` or ``1,3-4`` as the task numbers it names."""
    ids: list[int] = []
    for part in spec.partition("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            ids += range(int(low), int(high or low) + 1)
    return ids


class ScontrolWatcher(SlurmInfoWatcher):
    """submitit's SLURM watcher, with slurmctld's view where accounting is off.

    submitit asks ``sacct``; without an accounting daemon that fails, and every job stays
    UNKNOWN, which submitit takes for not ended. Then each array's state comes from
    ``scontrol show job -o``, which slurmctld answers for MinJobAge after a job ended; a
    job it no longer knows is :data:`PURGED` (its result, if any, is already on disk,
    and submitit looks there first). Asked at most every ``delay_s`` seconds (submitit's
    own default waits up to 600 s between calls), so a job cancelled in a long sweep is
    noticed within that delay.
    """

    def __init__(self, delay_s: int = 20) -> None:
        super().__init__(delay_s=delay_s)
        self.sacct_works = True

    def is_done(self, job_id: str, mode: str = "standard") -> bool:
        return self.get_state(job_id, mode=mode).split()[0].upper() not in NOT_ENDED

    def update(self) -> None:
        unfinished = self._registered - self._finished
        if not unfinished:
            return
        self._num_calls += 1
        info = self._from_sacct() if self.sacct_works else None
        if info is None:
            info = self._from_scontrol(unfinished)
        self._info_dict.update(info)
        self._last_status_check = time.time()
        for job_id in unfinished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def _from_sacct(self) -> dict[str, dict[str, str]] | None:
        command = self._make_command()
        if command is None:
            return {}
        try:
            output = subprocess.run(command, capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", b"") or str(error).encode()
            log.info(
                "sacct unavailable (%s): job states from scontrol",
                detail.decode(errors="replace").strip(),
            )
            self.sacct_works = False
            return None
        return self.read_info(output)

    def _from_scontrol(self, unfinished: set[str]) -> dict[str, dict[str, str]]:
        info: dict[str, dict[str, str]] = {}
        for array_id in sorted({job_id.split("_")[0] for job_id in unfinished}):
            mine = {j for j in unfinished if j.split("_")[0] == array_id}
            try:
                shown = subprocess.run(
                    ["scontrol", "show", "job", "-o", array_id],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                log.warning("scontrol show job %s: %s; state unknown for now", array_id, error)
                continue
            if shown.returncode == 0:
                known = parse_scontrol_jobs(shown.stdout)
                info |= {j: known.get(j) or {"JobID": j, "State": PURGED} for j in mine}
            elif "invalid job id" in shown.stderr.lower():
                info |= {j: {"JobID": j, "State": PURGED} for j in mine}
            else:  # slurmctld not answering: ask again next time
                log.warning("scontrol show job %s: %s", array_id, shown.stderr.strip())
        return info


# One watcher for every SLURM job this process launches, as submitit shares its own.
WATCHER = ScontrolWatcher()


class _TolerantJob:
    """A submitit job whose ``results()`` reports a missing result instead of raising."""

    def __init__(self, job: Any) -> None:
        self._job = job
        if isinstance(job, SlurmJob):  # submitit's array jobs are always SlurmJob
            job.watcher = WATCHER
            WATCHER.register_job(job.job_id)

    def results(self) -> list[Any]:
        from submitit.core.utils import UncompletedJobError

        try:
            return self._job.results()
        except Exception as error:
            state = getattr(self._job, "state", "UNKNOWN")
            left_nothing = not self._job.paths.result_pickle.exists()
            if isinstance(error, UncompletedJobError) and left_nothing:
                message = (
                    f"job {self._job.job_id} ended without a result (SLURM state {state});"
                    f" its log: {self._job.paths.stderr}"
                )
            else:
                message = (
                    f"job {self._job.job_id} failed outside the task (SLURM state {state}):"
                    f" {str(error).strip().splitlines()[0]}"
                )
            reason = JobEndedByCluster(message)
            return [JobReturn(status=JobStatus.FAILED, _return_value=reason)]


@contextlib.contextmanager
def _tolerant_map_array() -> Iterator[None]:
    """Wrap the jobs that submitit's executors return, for the plugin's ``launch`` only."""
    import submitit

    original = submitit.AutoExecutor.map_array

    def map_array(executor: Any, fn: Any, *iterable: Any) -> list[_TolerantJob]:
        return [_TolerantJob(job) for job in original(executor, fn, *iterable)]

    submitit.AutoExecutor.map_array = map_array
    try:
        yield
    finally:
        submitit.AutoExecutor.map_array = original


def _run_on_at_the_time_limit_warning() -> None:
    """In a SLURM job: submitit's handler of its early time-limit signal raises at once
    for a job it cannot checkpoint ("timed-out and not checkpointable"), failing the run
    minutes before the limit. Let the job run on instead: at the limit SLURM's SIGTERM
    ends the run as KILLED, and the job's state is TIMEOUT. A preempted job is still
    requeued by submitit."""
    from submitit.core.job_environment import JobEnvironment
    from submitit.core.utils import UncompletedJobError

    number = getattr(signal, f"SIG{JobEnvironment.USR_SIG}", None)
    submitits = signal.getsignal(number) if number is not None else None
    if not callable(submitits):
        return

    def handler(signum: int, frame: Any) -> None:
        try:
            submitits(signum, frame)
        except UncompletedJobError as error:
            log.warning("%s The job runs on until SLURM ends it at its time limit.", error)

    signal.signal(number, handler)


class _Tolerant:
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        with _tolerant_map_array():
            return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        # In the job, after submitit set its own handlers.
        errors.raise_on_sigterm()
        _run_on_at_the_time_limit_warning()
        return super().__call__(*args, **kwargs)  # type: ignore[misc]


class SlurmLauncher(_Tolerant, plugin.SlurmLauncher):
    pass


class LocalLauncher(_Tolerant, plugin.LocalLauncher):
    pass
