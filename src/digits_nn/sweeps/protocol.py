"""The names both sides of a sweep share: what travels to a job, and what comes back.

A job may run where it cannot see the launching machine's disk or environment (a Ray
worker, a SLURM node). What it needs travels in its Hydra config (``hydra.job.env_set``,
which Hydra sets in the job's environment wherever the launcher runs it); what it
produces comes back as its return value (:class:`Objective`), which every launcher
pickles back to the launching process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

# The sweep's parent MLflow run, in every job's hydra.job.env_set.
PARENT_RUN_ENV = "DIGITS_NN_PARENT_RUN_ID"
# The smaller budgets a job trains along with its own, in its hydra.job.env_set.
BUDGETS_ENV = "DIGITS_NN_SHARED_BUDGETS"
# The tag that names a child run's configuration (its job key).
SWEEP_JOB_TAG = "sweep_job"
# A configuration's record, in <sweep dir>/<job key>/.
RECORD_FILE = "record.json"
# The keys of the current sweep's configurations, in order: what its summary describes.
JOBS_FILE = "sweep_jobs.json"
# The key whose values a job may share as budgets.
BUDGET_KEY = "train.iterations"
# A job that goes on from an earlier budget of its configuration (a later rung of
# successive halving, a trial that survived a pruner), in its hydra.job.env_set:
# "<iterations done>:<md5 of that state file>:<that budget's MLflow run id, or nothing>".
CONTINUE_ENV = "DIGITS_NN_CONTINUE_FROM"
# "1" for a job that a later budget may go on from: it keeps its trainer's state.
KEEP_STATE_ENV = "DIGITS_NN_KEEP_STATE"
# The trainer's state: in the job's folder, and in this folder of its MLflow run.
STATE_FILE = "trainer_state.npz"
STATE_ARTIFACTS = "continuation"

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def job_key(overrides: Sequence[str]) -> str:
    """A stable folder name for one configuration: its overrides, sorted.

    Readable where the overrides are plain; otherwise (odd characters, or very long)
    shortened and made unique with a hash of the whole configuration.
    """
    canonical = ",".join(sorted(overrides)) or "defaults"
    safe = _UNSAFE.sub("_", canonical)
    if safe == canonical and len(safe) <= 150:
        return safe
    digest = hashlib.sha1(canonical.encode()).hexdigest()[:10]
    return f"{safe[:100]}-{digest}"


def continue_from(iteration: int, md5: str, run_id: str | None) -> str:
    """The value of :data:`CONTINUE_ENV` for a job that goes on from ``iteration``."""
    return f"{iteration}:{md5}:{run_id or ''}"


def parse_continue_from(value: str) -> tuple[int, str, str | None]:
    """The iteration, md5 and run id of a :data:`CONTINUE_ENV` value; ValueError if it
    is not one."""
    iteration, md5, run_id = value.split(":")
    if not re.fullmatch(r"[0-9a-f]{32}", md5) or int(iteration) < 1:
        raise ValueError(value)
    return int(iteration), md5, run_id or None


class Objective(float):
    """What a sweep job returns: the float a sweeper maximises (Optuna needs a float),
    carrying the job's records back to the launching process."""

    records: list[dict[str, Any]]

    @classmethod
    def of(cls, value: float, records: list[dict[str, Any]]) -> Objective:
        objective = cls(value)
        objective.records = records
        return objective
