"""The launching side of a sweep: which jobs to run, and the record each one sends back.

A job may run where it cannot see this machine's disk (a Ray worker, a SLURM node), so
each job *returns* its records (:class:`digits_nn.runner.Objective`), every launcher
pickles the return value back, and the launching process writes them into its own sweep
directory, one ``<key>/record.json`` per configuration. The key is the configuration
(its overrides), not the job's number, so that a rerun which skips finished jobs or
trains several budgets in one job finds every record again.

The sweepers themselves live in ``hydra_plugins.digits_nn_sweeper`` (Hydra loads plugins
only from there); this module holds what they do, as functions a fast test can call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser

from digits_nn import artifacts

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"
# The keys of the current sweep's configurations, in order: what its summary describes.
JOBS_FILE = "sweep_jobs.json"
# The smaller budgets a job trains along with its own, in its hydra.job.env_set.
BUDGETS_ENV = "DIGITS_NN_SHARED_BUDGETS"
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


def with_budget(overrides: Sequence[str], budget: int) -> list[str]:
    """The same configuration with ``train.iterations`` set to ``budget``."""
    budget_override = f"{BUDGET_KEY}={budget}"
    replaced = [budget_override if _key_of(o) == BUDGET_KEY else o for o in overrides]
    return replaced if budget_override in replaced else [*replaced, budget_override]


def budget_of(overrides: Sequence[str]) -> int | None:
    """The job's ``train.iterations`` override as a whole number, if it sets one."""
    for override in overrides:
        if _key_of(override) == BUDGET_KEY:
            try:
                return int(override.partition("=")[2])
            except ValueError:
                return None
    return None


def _key_of(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


# ---- records --------------------------------------------------------------------------


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
    artifacts.write_json(sweep_dir / record["key"] / RECORD_FILE, record)


def is_finished(record: dict[str, Any] | None) -> bool:
    return record is not None and record["status"] == "FINISHED"


def failed_record(overrides: Sequence[str], error: str, key: str | None = None) -> dict[str, Any]:
    """The record of a configuration whose job raised, or never sent its record back."""
    return {
        "key": key or job_key(overrides),
        "overrides": list(overrides),
        "status": "FAILED",
        "error": error,
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
    artifacts.write_json(sweep_dir / JOBS_FILE, keys)


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


# ---- the plan: what to launch ---------------------------------------------------------


@dataclass
class Launch:
    """One job to launch: the configurations it trains, the largest budget first."""

    members: list[list[str]]
    shared: list[int] = field(default_factory=list)  # the smaller budgets, if grouped

    @property
    def overrides(self) -> list[str]:
        """What the launcher gets: the job's own overrides, its folder, its budgets."""
        extra = [f"hydra.sweep.subdir='{job_key(self.members[0])}'"]
        if self.shared:
            budgets = ",".join(map(str, self.shared))
            extra.append(f"++hydra.job.env_set.{BUDGETS_ENV}='{budgets}'")
        return [*self.members[0], *extra]


def plan(jobs: list[list[str]], done: set[str], share_budgets: bool) -> list[Launch]:
    """The launches that train every configuration whose key is not in ``done``.

    With ``share_budgets``, configurations that differ only in ``train.iterations``
    become one launch trained to the largest budget: every smaller budget is read from
    the same training on the way (the prefix of the longer run).
    """
    todo = [j for j in jobs if job_key(j) not in done]
    if not share_budgets:
        return [Launch([j]) for j in todo]
    groups: dict[str, list[list[str]]] = {}
    for overrides in todo:
        budget = budget_of(overrides)
        rest = [o for o in overrides if _key_of(o) != BUDGET_KEY] if budget else overrides
        # A configuration without a budget of its own is its own group.
        key = job_key(rest) if budget else "\0" + job_key(overrides)
        groups.setdefault(key, []).append(overrides)
    launches = []
    for members in groups.values():
        members = sorted(members, key=lambda o: -(budget_of(o) or 0))
        budgets = [budget_of(o) for o in members]
        if len(members) > 1 and len(set(budgets)) == len(budgets):
            launches.append(Launch(members, [b for b in budgets[1:] if b is not None]))
        else:
            launches += [Launch([m]) for m in members]
    return launches


# What a configuration's training costs grows with its iterations and, per iteration, with
# the units the activations pass through: the exp of the sigmoid over every hidden and
# output unit of every row dominates an iteration (docs/benchmarks.md, sections a and s).
OUTPUT_UNITS = 10
WORK_KEYS = ("train.iterations", "model.hidden_size", "model.hidden_sizes")


def work(overrides: Sequence[str], defaults: Mapping[str, Any]) -> float:
    """Iterations times hidden and output units: how much training a configuration asks
    for, only to order the launches. A value it cannot read gives 0: that job fails at
    once, when it checks its config, and reports what is wrong."""
    values = dict(defaults)
    own = [o for o in overrides if _key_of(o) in WORK_KEYS]
    for override in OverridesParser.create().parse_overrides(own):
        values[override.key_or_group] = override.value()
    try:
        widths = values.get("model.hidden_sizes") or [values.get("model.hidden_size")]
        return float(values["train.iterations"]) * (sum(map(float, widths)) + OUTPUT_UNITS)
    except (KeyError, TypeError, ValueError):
        return 0.0


def longest_first(launches: list[Launch], defaults: Mapping[str, Any]) -> list[Launch]:
    """The launches, the most training first (in their order among equals).

    Every launcher hands jobs to free workers in the order it gets them, so the sweep
    ends with whatever comes last. A grid lists its largest values last: in the
    reference grid the last job trained a 64-100-10 network to 10000 iterations and
    recorded its four budgets, 47 s, the other core idle for the last 26. The longest
    first leaves short jobs to fill the end (the longest-processing-time rule).
    """
    return sorted(launches, key=lambda launch: -work(launch.members[0], defaults))


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
