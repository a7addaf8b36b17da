"""The job side of a sweep: one configuration, or several budgets of one, per job.

A job runs the pipeline for its configuration as a child run of the sweep's parent run
(:mod:`digits_nn.pipeline.app`); a job that fails is recorded as FAILED, with its error,
and the sweep goes on. It sends its records back as its return value
(:class:`~digits_nn.sweeps.protocol.Objective`) and also writes them into its own folder:
on a launcher that runs jobs on this machine, a sweep stopped before the job's return
came back still finds them. A job given smaller budgets to share (``BUDGETS_ENV``)
trains once and records every budget as its own run. A job of successive halving or of
a pruned search goes on from an earlier budget of its configuration
(:mod:`~digits_nn.sweeps.continuation`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from digits_nn import config, errors
from digits_nn.config import Config
from digits_nn.core.training import TrainingResult
from digits_nn.data.files import write_json
from digits_nn.errors import DigitsNNError, TrainingDiverged
from digits_nn.pipeline import app, recording
from digits_nn.pipeline.prepared import PreparedData, prepare
from digits_nn.pipeline.steps import RunContext, record_training, train_and_record
from digits_nn.sweeps import budgets, continuation
from digits_nn.sweeps.plan import with_budget
from digits_nn.sweeps.protocol import (
    BUDGET_KEY,
    BUDGETS_ENV,
    PARENT_RUN_ENV,
    RECORD_FILE,
    SWEEP_JOB_TAG,
    Objective,
    job_key,
)
from digits_nn.tracking import runs
from digits_nn.tracking.store import open_store

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One configuration of a sweep: its config, its overrides and its folder."""

    raw: DictConfig
    overrides: list[str]
    output_dir: Path
    started: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> str:
        return job_key(self.overrides)

    def record(self, status: str, **extra: Any) -> dict[str, Any]:
        """The job's line of the sweep summary, sent back to the launching process."""
        payload: dict[str, Any] = {
            "key": self.key,
            "overrides": self.overrides,
            "status": status,
            "duration_s": round(time.perf_counter() - self.started, 3),
        }
        return payload | extra


def run(raw: DictConfig) -> Objective:
    """``pipelines/run.py -m``: this job's records, and the value a sweeper maximises
    (NaN for a failed job, which Optuna records as a failed trial)."""
    # The basic launcher runs its jobs in the launching process: Ctrl-C whose exception
    # was dropped between two jobs still stops the sweep here.
    errors.raise_if_interrupted()
    hydra = HydraConfig.get()
    job = Job(raw, list(hydra.overrides.task), Path(hydra.runtime.output_dir))
    request = continuation.requested()
    if request is not None or continuation.keeps_state():
        records = [run_continued(job, request)]
    else:
        records = run_with_budgets(job, shared_budgets())
    first = records[0]
    value = first.get("validation_accuracy")
    if value is None:
        value = first.get("test_accuracy", math.nan)
    return Objective.of(value, records)


def run_with_budgets(job: Job, smaller: list[int]) -> list[dict[str, Any]]:
    """The records of ``job``'s configuration and of each smaller budget it shares."""
    jobs = [job]
    for budget in sorted(smaller, reverse=True):
        member = with_budget(job.overrides, budget)
        raw_member = job.raw.copy()
        with open_dict(raw_member):
            OmegaConf.update(raw_member, BUDGET_KEY, budget)
        jobs.append(Job(raw_member, member, job.output_dir.parent / job_key(member)))
    shared, data = _train_shared(jobs) if len(jobs) > 1 else (None, None)
    train: app.TrainStep = train_and_record
    if shared is not None:
        train = lambda ctx, rows: record_shared(ctx, rows, shared)  # noqa: E731
    records = []
    for member in jobs:
        # Each budget's duration is its own: the shared training up to its budget (what
        # a standalone run would have trained), then its own recording, not the others'.
        member.started = time.perf_counter()
        if shared is not None:
            member.started -= shared.training_seconds(int(member.raw.train.iterations))
        record = _run_in_sweep(member, sweep_parent_run(), train, data)
        if shared is not None:
            record["shared_training"] = job.key
        write_json(member.output_dir / RECORD_FILE, record)
        records.append(record)
    return records


def run_continued(job: Job, request: continuation.Request | None) -> dict[str, Any]:
    """The record of a job of successive halving or of a pruned search: it goes on from
    an earlier budget of its configuration if asked, and keeps its state if a later
    budget may go on from it."""
    earlier = None
    if request is not None:
        earlier = job.output_dir.parent / job_key(with_budget(job.overrides, request.iteration))
    keep = job.output_dir if continuation.keeps_state() else None
    step = continuation.ContinuedTraining(request, earlier, keep)
    record = _run_in_sweep(job, sweep_parent_run(), step)
    if record["status"] == "FINISHED":
        record |= step.extra
    write_json(job.output_dir / RECORD_FILE, record)
    return record


def shared_budgets() -> list[int]:
    """The smaller budgets the sweeper asked this job to train along with its own."""
    listed = os.environ.get(BUDGETS_ENV, "")
    return [int(b) for b in listed.split(",") if b.strip()]


def sweep_parent_run() -> str | None:
    """The id of the sweep's parent MLflow run, if the sweep is tracked."""
    return os.environ.get(PARENT_RUN_ENV) or None


def _train_shared(
    jobs: list[Job],
) -> tuple[budgets.SharedTraining, PreparedData] | tuple[None, None]:
    """One training for every budget of ``jobs`` (the largest first), if they can share,
    and the rows it trained on, which are every budget's (budgets differ only in
    ``train.iterations``)."""
    try:
        cfg = config.parse(jobs[0].raw)
        wanted = [config.parse(job.raw).train.iterations for job in jobs]
        if not budgets.can_share(cfg):
            log.info(
                "budgets not shared: early stopping, a peer or an ensemble trains each budget apart"
            )
            return None, None
        data = prepare(cfg)
    except DigitsNNError:
        return None, None  # each job reports its own refusal
    log.info("one training to %d iterations for the budgets %s", max(wanted), wanted)
    return budgets.train_to_largest(cfg, data, wanted, cfg.tracking.enabled), data


def _run_in_sweep(
    job: Job,
    parent_run_id: str | None,
    train: app.TrainStep,
    data: PreparedData | None = None,
) -> dict[str, Any]:
    """Run one configuration of a sweep, trained by ``train`` on ``data`` (None: its
    rows, prepared here); its failure is its record, not an exception."""
    try:
        cfg = _parse(job, parent_run_id)
        # With tracking.pictures=best, the sweep draws its best run's pictures at its end.
        pictures = cfg.tracking.pictures == "all"
        place = app.RunPlace(
            job.output_dir, job.overrides, _placement(job, parent_run_id), pictures=pictures
        )
        outcome = app.run(cfg, place, train, data)
    except DigitsNNError as error:
        log.error("job failed: %s", error)
        return job.record("FAILED", error=str(error))
    return job.record(
        "FINISHED",
        test_accuracy=outcome.test_accuracy,
        validation_accuracy=outcome.validation_accuracy,
        run_id=outcome.run_id,
        params=config.flatten(outcome.cfg),
        cost=[float(c) for c in outcome.cost],
    )


def _parse(job: Job, parent_run_id: str | None) -> Config:
    """The job's config; a refused one still gets a FAILED child run, so that the sweep's
    record in MLflow is complete."""
    try:
        return config.parse(job.raw)
    except DigitsNNError as error:
        if parent_run_id:
            _record_refused(job, parent_run_id, error)
        raise


def _placement(job: Job, parent_run_id: str | None) -> dict[str, str]:
    """The tags that place a sweep job's run: its parent run, and which configuration
    it is (for a rerun, and for the launching side to close the run as KILLED if the
    job is killed outright before it can)."""
    tags = {SWEEP_JOB_TAG: job.key}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    return tags


def record_shared(
    ctx: RunContext, data: PreparedData, shared: budgets.SharedTraining
) -> TrainingResult:
    """Record this budget from the shared training, as a standalone run records it."""
    recording.record_config(ctx.run, ctx.cfg, ctx.params_file)
    try:
        result = shared.result(ctx.cfg.train.iterations)
    except TrainingDiverged as error:
        recording.record_cost(ctx.run, error.partial_cost, error.partial_classic_cost)
        raise
    record_training(ctx, result, shared.accuracy_curve(ctx.cfg.train.iterations), data)
    return result


def _record_refused(job: Job, parent_run_id: str, error: DigitsNNError) -> None:
    try:
        tracking_cfg = config.TrackingConfig(**OmegaConf.to_container(job.raw.tracking))
    except Exception:  # the tracking section itself is broken: nowhere to record
        return
    store = open_store(tracking_cfg)
    if store is not None:
        overrides = " ".join(job.overrides)
        tags = {"mlflow.parentRunId": parent_run_id, "overrides": overrides}
        runs.record_failure(store, f"invalid {overrides}", tags, str(error))
