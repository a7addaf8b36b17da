"""One whole pipeline run for one Hydra config: what ``pipelines/run.py`` does per job.

The same library steps as the DVC stages, chained in memory, writing into Hydra's
run directory (never over the DVC outputs), logging one MLflow run. In a sweep the run
is a child of the sweep's parent run; a job that fails is recorded as FAILED, with its
error, and the sweep goes on (:mod:`digits_nn.sweep` reports the failures at the end).

A sweep job sends its records back as its return value (:class:`Objective`): the
launching process writes them into its sweep directory (:mod:`digits_nn.sweeper`), as a
job may run where that directory is out of reach. A job given smaller budgets to share
(``DIGITS_NN_SHARED_BUDGETS``) trains once and records every budget as its own run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from digits_nn import artifacts, budgets, config, data, errors, pipeline, provenance, sweeper
from digits_nn.errors import DigitsNNError, TrainingDiverged
from digits_nn.train import TrainingResult

log = logging.getLogger(__name__)

# The sweep callback puts the parent run's id in every job's ``hydra.job.env_set``, and
# Hydra sets it in the job's environment before the job runs, wherever the launcher runs
# it. Not the launching process's environment: joblib's workers are forked from a server
# started before the parent run exists, and a SLURM or Ray worker never sees it.
PARENT_RUN_ENV = "DIGITS_NN_PARENT_RUN_ID"
SWEEP_JOB_TAG = "sweep_job"


class Objective(float):
    """What a sweep job returns: the float a sweeper maximises (Optuna needs a float),
    carrying the job's records back to the launching process (pickled by any launcher)."""

    records: list[dict[str, Any]]

    @classmethod
    def of(cls, value: float, records: list[dict[str, Any]]) -> Objective:
        objective = cls(value)
        objective.records = records
        return objective


def objective(test_accuracy: float | None, validation_accuracy: float | None) -> float:
    """What a sweeper maximises: the validation accuracy when there are validation rows
    (choosing on the test rows would report an optimistic test accuracy), else the test
    accuracy; NaN for a failed job, which Optuna records as a failed trial."""
    if validation_accuracy is not None:
        return validation_accuracy
    return math.nan if test_accuracy is None else test_accuracy


def run(raw: DictConfig) -> float:
    """Run the pipeline for ``raw``; returns its objective (NaN if a sweep job failed)."""
    # A sweep on the basic launcher runs its jobs in this process: Ctrl-C whose exception
    # was dropped between two jobs still stops the sweep here.
    errors.raise_if_interrupted()
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    overrides = list(hydra.overrides.task)
    if hydra.mode != RunMode.MULTIRUN:
        job = Job(raw, overrides, output_dir)
        outcome = _run(job, in_sweep=False, parent_run_id=None)
        return objective(outcome.test_accuracy, outcome.validation_accuracy)
    records = run_sweep_job(raw, overrides, output_dir, shared_budgets())
    first = records[0]
    value = objective(first.get("test_accuracy"), first.get("validation_accuracy"))
    return Objective.of(value, records)


class Job:
    """One configuration of a sweep: its config, its overrides and its folder."""

    def __init__(self, raw: DictConfig, overrides: list[str], output_dir: Path) -> None:
        self.raw, self.overrides, self.output_dir = raw, overrides, output_dir
        self.started = time.perf_counter()

    @property
    def key(self) -> str:
        return sweeper.job_key(self.overrides)

    def record(self, status: str, **extra: Any) -> dict[str, Any]:
        """The job's line of the sweep summary, sent back to the launching process."""
        payload: dict[str, Any] = {
            "key": self.key,
            "overrides": self.overrides,
            "status": status,
            "duration_s": round(time.perf_counter() - self.started, 3),
        }
        return payload | extra


def run_sweep_job(
    raw: DictConfig, overrides: list[str], output_dir: Path, smaller: list[int]
) -> list[dict[str, Any]]:
    """The records of this job's configuration and of each smaller budget it shares.

    Each record is also written into the job's own folder: on a launcher that runs jobs
    on this machine, a sweep stopped before the job's return came back still finds it.
    """
    parent_run_id = sweep_parent_run()
    jobs = [Job(raw, overrides, output_dir)]
    for budget in sorted(smaller, reverse=True):
        member = sweeper.with_budget(overrides, budget)
        raw_member = raw.copy()
        with open_dict(raw_member):
            OmegaConf.update(raw_member, sweeper.BUDGET_KEY, budget)
        jobs.append(Job(raw_member, member, output_dir.parent / sweeper.job_key(member)))
    shared = _train_shared(jobs) if len(jobs) > 1 else None
    records = []
    for job in jobs:
        record = _run_in_sweep(job, parent_run_id, shared)
        if shared is not None:
            record["shared_training"] = jobs[0].key
        artifacts.write_json(job.output_dir / sweeper.RECORD_FILE, record)
        records.append(record)
    return records


def shared_budgets() -> list[int]:
    """The smaller budgets the sweeper asked this job to train along with its own."""
    listed = os.environ.get(sweeper.BUDGETS_ENV, "")
    return [int(b) for b in listed.split(",") if b.strip()]


def sweep_parent_run() -> str | None:
    """The id of the sweep's parent MLflow run, if the sweep is tracked."""
    return os.environ.get(PARENT_RUN_ENV) or None


def _train_shared(jobs: list[Job]) -> budgets.SharedTraining | None:
    """One training for every budget of ``jobs`` (the largest first), if they can share."""
    try:
        cfg = config.parse(jobs[0].raw)
        wanted = [config.parse(job.raw).train.iterations for job in jobs]
    except DigitsNNError:
        return None  # each job reports its own refusal
    if not budgets.can_share(cfg):
        log.info("budgets not shared: early stopping restores weights at each run's end")
        return None
    _, split, onehot = pipeline.prepare_data(cfg)
    log.info("one training to %d iterations for the budgets %s", max(wanted), wanted)
    return budgets.train_to_largest(cfg, split, onehot, wanted, cfg.tracking.enabled)


def _run_in_sweep(
    job: Job, parent_run_id: str | None, shared: budgets.SharedTraining | None
) -> dict[str, Any]:
    """Run one configuration of a sweep; its failure is its record, not an exception."""
    try:
        outcome = _run(job, in_sweep=True, parent_run_id=parent_run_id, shared=shared)
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


@dataclass
class Outcome:
    cfg: config.Config
    test_accuracy: float
    validation_accuracy: float | None
    run_id: str | None
    cost: np.ndarray


def _run(
    job: Job,
    in_sweep: bool,
    parent_run_id: str | None,
    shared: budgets.SharedTraining | None = None,
) -> Outcome:
    overrides = " ".join(job.overrides)
    try:
        cfg = config.parse(job.raw)
    except DigitsNNError as error:
        if parent_run_id:
            _record_refused_job(job.raw, overrides, parent_run_id, error)
        raise
    paths = cfg.paths.under(job.output_dir)
    store = pipeline.open_store(cfg)
    scaled, split, onehot = pipeline.prepare_data(cfg)
    params_file = job.output_dir / "params.yaml"
    artifacts.write_bytes(params_file, OmegaConf.to_yaml(config.to_dict(cfg)).encode())
    with pipeline.recording(
        store,
        cfg,
        # Named after the DVC stages' split.npz, which holds these rows for the same seed
        # and test_size; the md5 (the datasets' digest) says whether it does.
        run_data=pipeline.RunData(split, provenance.split_md5(split), cfg.paths.split),
        overrides=overrides,
        placement=_placement(job, in_sweep, parent_run_id),
    ) as recorder:
        if shared is None:
            progress = not in_sweep and pipeline.interactive()
            result = pipeline.train_and_record(
                cfg, split, onehot, scaled, recorder, paths, params_file, progress
            )
        else:
            result = _record_shared(cfg, shared, recorder, paths, params_file, scaled)
        evaluation = pipeline.evaluate_and_record(
            result.network,
            pipeline.fitted_split(split, cfg),
            pipeline.raw_pixels(split.X_test, scaled),
            result.cost_curve,
            result.classic_cost_curve,
            recorder,
            paths,
        )
    return Outcome(
        cfg,
        evaluation.test_accuracy,
        result.validation_accuracy,
        recorder.run_id,
        result.cost_curve,
    )


def _placement(job: Job, in_sweep: bool, parent_run_id: str | None) -> dict[str, str]:
    """The tags that place a sweep job's run: its parent run, and which configuration
    it is (for a rerun, and for the launching side to close the run as KILLED if the
    job is killed outright before it can)."""
    tags = {SWEEP_JOB_TAG: job.key} if in_sweep else {}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    return tags


def _record_shared(
    cfg: config.Config,
    shared: budgets.SharedTraining,
    recorder: pipeline.Recorder,
    paths: config.PathsConfig,
    params_file: Path,
    scaling: data.Scaled,
) -> TrainingResult:
    """Record this budget from the shared training, as a standalone run records it."""
    recorder.config(cfg, params_file)
    try:
        result = shared.result(cfg.train.iterations)
    except TrainingDiverged as error:
        recorder.cost_curves(error.partial_cost, error.partial_classic_cost)
        raise
    curve = shared.accuracy_curve(cfg.train.iterations)
    pipeline.record_training(result, curve, recorder, paths, scaling)
    return result


def _record_refused_job(
    raw: DictConfig, overrides: str, parent_run_id: str, error: DigitsNNError
) -> None:
    """A sweep job whose config is invalid still gets a FAILED child run, so that the
    sweep's record in MLflow is complete."""
    from digits_nn import tracking

    try:
        tracking_cfg = config.TrackingConfig(**OmegaConf.to_container(raw.tracking))
    except Exception:  # the tracking section itself is broken: nowhere to record
        return
    if tracking_cfg.enabled:
        store = tracking.open_store(tracking_cfg)
        tags = {"mlflow.parentRunId": parent_run_id, "overrides": overrides}
        tracking.record_failure(store, f"invalid {overrides}", tags, str(error))
