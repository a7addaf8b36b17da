"""The launching side's records: one per configuration, in the sweep directory.

A job may run where it cannot see this machine's disk, so each job *returns* its
records (:class:`~digits_nn.sweeps.protocol.Objective`) and the launching process
writes them, one ``<key>/record.json`` per configuration. The key is the configuration
(its overrides), not the job's number, so that a rerun which skips finished jobs or
trains several budgets in one job finds every record again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digits_nn.credentials import redact
from digits_nn.data.files import write_json
from digits_nn.sweeps.protocol import JOBS_FILE, RECORD_FILE, job_key

log = logging.getLogger(__name__)


def read_record(sweep_dir: Path, key: str) -> dict[str, Any] | None:
    """The configuration's record, or None if there is none or it is not whole.

    Records are written atomically, but a record from an older version, a file cut by
    hand or one for another configuration is not trusted either: it is rerun.
    """
    try:
        record = json.loads((sweep_dir / key / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key or "status" not in record:
        return None
    return record


def write_record(sweep_dir: Path, record: dict[str, Any]) -> None:
    write_json(sweep_dir / record["key"] / RECORD_FILE, record)


def is_finished(record: dict[str, Any] | None) -> bool:
    return record is not None and record["status"] == "FINISHED"


def failed_record(overrides: Sequence[str], error: str, key: str | None = None) -> dict[str, Any]:
    """The record of a configuration whose job raised, or never sent its record back.

    The error may quote the store's URI, credentials included (MLflow's own errors do):
    the record, the summary and the failure line repeat it, so it is redacted here."""
    return {
        "key": key or job_key(overrides),
        "overrides": list(overrides),
        "status": "FAILED",
        "error": redact(error),
    }


def records_of(job_return: Any, expected: list[list[str]]) -> list[dict[str, Any]]:
    """The records a job sent back, for the configurations it was given (``expected``).

    A job that raised, or that returned no record for some configuration, gets a FAILED
    record naming why, so that the sweep's summary still lists every configuration.
    """
    try:
        value = job_return.return_value
        sent = list(getattr(value, "records", None) or [])
        error = "the job returned no record for this configuration"
    except Exception as raised:  # the job's own exception, re-raised by JobReturn
        sent = []
        error = f"{type(raised).__name__}: {raised}".strip()
    by_key = {record["key"]: record for record in sent}
    keys = [job_key(overrides) for overrides in expected]
    return [by_key.get(key) or failed_record(o, error, key) for key, o in zip(keys, expected)]


def write_jobs(sweep_dir: Path, keys: list[str]) -> None:
    write_json(sweep_dir / JOBS_FILE, keys)


def read_jobs(sweep_dir: Path) -> list[str]:
    try:
        keys = json.loads((sweep_dir / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [str(k) for k in keys] if isinstance(keys, list) else []


def sweep_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """The records of exactly the current sweep's configurations, in its order; a
    configuration without a whole record is listed as FAILED."""
    rows = []
    for key in read_jobs(sweep_dir):
        record = read_record(sweep_dir, key)
        rows.append(record or failed_record([], "no record: the job did not finish", key))
    return rows


class RecordingLauncher:
    """A launcher that keeps every job's records, for a sweeper that is not ours (Optuna).

    It wraps the sweeper's launcher: each batch's records, come back as return values,
    are written into the sweep directory under the job's number (a search may try the
    same configuration twice), and the job joins the sweep's list of jobs.
    """

    def __init__(self, launcher: Any, sweep_dir: Path) -> None:
        self.launcher, self.sweep_dir = launcher, sweep_dir
        self.keys: list[str] = []
        write_jobs(sweep_dir, self.keys)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        results = self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx)
        for number, (overrides, result) in enumerate(zip(job_overrides, results)):
            (record,) = records_of(result, [list(overrides)])
            record["key"] = str(initial_job_idx + number)
            write_record(self.sweep_dir, record)
            self.keys.append(record["key"])
        write_jobs(self.sweep_dir, self.keys)
        return results
