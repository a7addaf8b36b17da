"""The launching side of training by rungs: configurations taken to a budget, each going
on from its own run at the budget before, as successive halving
(:mod:`~digits_nn.sweeps.halving`) and a pruned Optuna search
(:mod:`~digits_nn.sweeps.study`) launch them.

Each (configuration, budget) is one job and one child run, keyed like the grid's jobs
(its overrides with ``train.iterations`` set to the budget), so that a rerun finds every
record that finished and launches only the rest. A job is told, in its
``hydra.job.env_set``, which earlier state to go on from (its iteration, the md5 of its
file and the run that keeps it): a few dozen characters, whatever the launcher. The
state itself stays in the earlier job's folder and run (:mod:`~digits_nn.sweeps.continuation`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from digits_nn import config
from digits_nn.errors import DigitsNNError
from digits_nn.sweeps import plan, records
from digits_nn.sweeps.protocol import CONTINUE_ENV, KEEP_STATE_ENV, continue_from, job_key
from digits_nn.tracking.store import Store, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One configuration (its overrides, without a budget) taken to ``budget``, going on
    from ``earlier`` (its FINISHED record at a smaller budget) if given; ``keep``: a
    later budget may go on from this one."""

    configuration: list[str]
    budget: int | None  # None: the configuration's own train.iterations, alone
    earlier: dict[str, Any] | None = None
    keep: bool = True

    @property
    def overrides(self) -> list[str]:
        if self.budget is None:
            return list(self.configuration)
        return plan.with_budget(self.configuration, self.budget)

    @property
    def key(self) -> str:
        return job_key(self.overrides)

    @property
    def started_at(self) -> int:
        """The iteration the job goes on from (0: from the start)."""
        if self.budget is None or self.earlier is None or not self.earlier.get("state_md5"):
            return 0
        return plan.budget_of(self.earlier["overrides"]) or 0

    def launch_overrides(self) -> list[str]:
        """What the launcher gets: the job's overrides, its folder, what it goes on from."""
        extra = [f"hydra.sweep.subdir='{self.key}'"]
        if self.keep and self.budget is not None:
            extra.append(f"++hydra.job.env_set.{KEEP_STATE_ENV}='1'")
        if self.started_at:
            earlier = self.earlier or {}
            value = continue_from(self.started_at, earlier["state_md5"], earlier.get("run_id"))
            extra.append(f"++hydra.job.env_set.{CONTINUE_ENV}='{value}'")
        return [*self.overrides, *extra]


@dataclass
class RungLauncher:
    """Launches steps with the sweep's launcher and keeps their records in the sweep
    directory. ``defaults`` are the base config's values of :data:`plan.WORK_KEYS`."""

    launcher: Any
    sweep_dir: Path
    defaults: Mapping[str, Any]
    batch_size: int | None = None
    launched: int = 0  # jobs launched so far, for Hydra's job numbers

    def run(self, steps: list[Step]) -> list[dict[str, Any]]:
        """Each step's record, in the order given: read back where it finished before,
        otherwise from the job launched for it. The longest jobs are launched first."""
        found = {s.key: records.read_record(self.sweep_dir, s.key) for s in steps}
        todo = [s for s in steps if not records.is_finished(found[s.key])]
        if len(todo) < len(steps):
            log.info("resuming: %d of %d already finished", len(steps) - len(todo), len(steps))
        todo.sort(key=lambda s: -self.work(s))
        size = self.batch_size or max(len(todo), 1)
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            batch = [step.launch_overrides() for step in chunk]
            results = self.launcher.launch(batch, initial_job_idx=self.launched)
            self.launched += len(batch)
            for step, result in zip(chunk, results):
                (record,) = records.records_of(result, [step.overrides])
                records.write_record(self.sweep_dir, record)
                found[step.key] = record
        return [found[s.key] for s in steps]  # type: ignore[misc]

    def work(self, step: Step) -> float:
        """The training a step asks for: the iterations it still has to run."""
        if step.budget is None:
            return plan.work(step.overrides, self.defaults)
        still = plan.with_budget(step.configuration, step.budget - step.started_at)
        return plan.work(still, self.defaults)

    def annotate(self, record: dict[str, Any], **fields: Any) -> None:
        """Add what the sweep decided about a record (its rung, its outcome) to it."""
        record.update(fields)
        records.write_record(self.sweep_dir, record)


def work_defaults(sweep_config: DictConfig) -> dict[str, Any]:
    return {k: OmegaConf.select(sweep_config, k) for k in plan.WORK_KEYS}


def sweep_store(sweep_config: DictConfig) -> Store | None:
    """The sweep's MLflow store, to tag its runs with what the sweep decided; None when
    tracking is off or its section is invalid (each job then reports that)."""
    task = OmegaConf.masked_copy(sweep_config, ["tracking"])
    try:
        return open_store(config.parse(task).tracking)
    except DigitsNNError:
        return None


def tag_runs(store: Store | None, tagged: list[tuple[dict[str, Any], dict[str, str]]]) -> None:
    """Set ``tags`` on the run of each record that has one."""
    if store is None:
        return
    for record, tags in tagged:
        if record.get("run_id"):
            for key, value in tags.items():
                store.client.set_tag(record["run_id"], key, value)
