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


class Objective(float):
    """What a sweep job returns: the float a sweeper maximises (Optuna needs a float),
    carrying the job's records back to the launching process."""

    records: list[dict[str, Any]]

    @classmethod
    def of(cls, value: float, records: list[dict[str, Any]]) -> Objective:
        objective = cls(value)
        objective.records = records
        return objective
