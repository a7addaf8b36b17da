"""hydra-submitit-launcher's SLURM and local launchers, made to survive a job that the
cluster ends (``scancel``, the time limit, a lost node).

The plugin collects results with ``[job.results()[0] for job in jobs]``: the first job
without a result raises, and the whole sweep ends with a traceback and no summary, while
the other jobs go on. Here:

- in the job, SIGTERM (what SLURM sends first when it ends a job; submitit ignores it)
  raises :class:`digits_nn.tracking.Terminated`, so the open MLflow run is closed as
  KILLED, as on Ctrl-C;
- in the launching process, a job that ended without a result comes back as a FAILED
  ``JobReturn`` naming its SLURM state, so the sweep lists it and exits non-zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin

from digits_nn import tracking


class JobEndedByCluster(RuntimeError):
    """A job that left no result: cancelled, timed out, or its node lost."""


class _TolerantJob:
    """A submitit job whose ``results()`` reports a missing result instead of raising."""

    def __init__(self, job: Any) -> None:
        self._job = job

    def results(self) -> list[Any]:
        try:
            return self._job.results()
        except Exception as error:
            state = getattr(self._job, "state", "UNKNOWN")
            reason = JobEndedByCluster(
                f"job {self._job.job_id} ended without a result (SLURM state {state}):"
                f" {str(error).strip().splitlines()[0]}"
            )
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


class _Tolerant:
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        with _tolerant_map_array():
            return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        tracking.raise_on_sigterm()  # in the job, after submitit set its own handlers
        return super().__call__(*args, **kwargs)  # type: ignore[misc]


class SlurmLauncher(_Tolerant, plugin.SlurmLauncher):
    pass


class LocalLauncher(_Tolerant, plugin.LocalLauncher):
    pass
