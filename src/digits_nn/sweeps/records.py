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
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from digits_nn import config
from digits_nn.config import Config, TrackingConfig
from digits_nn.credentials import redact
from digits_nn.data.files import write_json
from digits_nn.errors import DigitsNNError
from digits_nn.sweeps.protocol import JOBS_FILE, RECORD_FILE, job_key
from digits_nn.tracking.store import Store, open_store

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


def reusable(
    sweep_dir: Path, jobs: list[list[str]], config_of: Callable[[list[str]], Config]
) -> set[str]:
    """The keys of the configurations a resumed sweep need not train again.

    A FINISHED record is reused only for the very configuration that made it (every
    resolved key: ``conf/`` may have changed since) and only if the store this sweep
    records to holds its run, FINISHED (``MLFLOW_TRACKING_URI`` may name another store).
    ``config_of`` gives a job's config as its launcher composes it. The others train
    again, and the log says why.
    """
    done, retrained, stores = set(), Counter[str](), StoreCache()
    for overrides in jobs:
        key = job_key(overrides)
        record = read_record(sweep_dir, key)
        if not is_finished(record):
            continue
        try:
            cfg = config_of(overrides)
            reason = stale(record, config.flatten(cfg), stores.get(cfg.tracking))  # type: ignore[arg-type]
        except DigitsNNError as error:  # a config now refused, or a store that will not open
            reason = f"its configuration now fails: {error}"
        if reason is None:
            done.add(key)
        else:
            retrained[reason] += 1
    if done:
        log.info("resuming: %d of %d configurations already finished", len(done), len(jobs))
    for reason, count in retrained.items():
        log.warning("%d finished configuration(s) trained again: %s", count, reason)
    return done


def stale(record: dict[str, Any], params: dict[str, Any], store: Store | None) -> str | None:
    """Why a FINISHED record cannot stand for the configuration ``params``, recording to
    ``store`` (None: tracking off); None if it can."""
    kept = record.get("params") or {}
    changed = sorted(k for k in kept.keys() | params.keys() if kept.get(k) != params.get(k))
    if changed:
        differences = ", ".join(f"{k}: {kept.get(k)!r} -> {params.get(k)!r}" for k in changed)
        return f"their records were made with another configuration ({differences})"
    if store is None:
        return None
    try:
        run = store.client.get_run(record["run_id"])
    except Exception:  # no run id, or one the store does not hold
        run = None
    if run is None or run.info.experiment_id != store.experiment_id:
        return f"their runs are not in the store this sweep records to ({redact(store.uri)})"
    if run.info.status != "FINISHED" or run.info.lifecycle_stage != "active":
        return f"their runs are {run.info.status.lower()} or deleted in {redact(store.uri)}"
    return None


class StoreCache:
    """Each tracking config's store, opened once."""

    def __init__(self) -> None:
        self.opened: dict[str, Store | None] = {}

    def get(self, tracking: TrackingConfig) -> Store | None:
        key = repr(tracking)
        if key not in self.opened:
            self.opened[key] = open_store(tracking)
        return self.opened[key]


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
