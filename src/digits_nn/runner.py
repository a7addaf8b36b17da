"""One whole pipeline run for one Hydra config: what ``pipelines/run.py`` does per job.

The same library steps as the DVC stages, chained in memory, writing into Hydra's
run directory (never over the DVC outputs), logging one MLflow run. In a sweep the run
is a child of the sweep's parent run; a job that fails is recorded as FAILED, with its
error, and the sweep goes on (:mod:`digits_nn.sweep` reports the failures at the end).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from digits_nn import artifacts, config, pipeline, provenance
from digits_nn.errors import DigitsNNError

log = logging.getLogger(__name__)

# The sweep callback puts the parent run's id in every job's ``hydra.job.env_set``, and
# Hydra sets it in the job's environment before the job runs, wherever the launcher runs
# it. Not the launching process's environment: joblib's workers are forked from a server
# started before the parent run exists, and a SLURM or Ray worker never sees it.
PARENT_RUN_ENV = "DIGITS_NN_PARENT_RUN_ID"
RESULT_FILE = "result.json"
SUMMARY_KEYS = ("train.alpha", "train.iterations", "model.hidden_size", "seed")


def run(raw: DictConfig) -> float:
    """Run the pipeline for ``raw``; returns its objective (NaN if a sweep job failed)."""
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    overrides = " ".join(hydra.overrides.task)
    in_sweep = hydra.mode == RunMode.MULTIRUN
    parent_run_id = sweep_parent_run() if in_sweep else None
    started = time.perf_counter()
    try:
        # Training runs on one BLAS thread (pipeline.fit), so parallel workers do not
        # oversubscribe the cores.
        accuracy, validation_accuracy = _run(raw, output_dir, overrides, in_sweep, parent_run_id)
    except DigitsNNError as error:
        if not in_sweep:
            raise
        log.error("job failed: %s", error)
        _write_result(output_dir, raw, overrides, "FAILED", started, error=str(error))
        return math.nan  # a sweeper such as Optuna records a NaN objective as a failed trial
    if in_sweep:
        _write_result(
            output_dir,
            raw,
            overrides,
            "FINISHED",
            started,
            test_accuracy=accuracy,
            validation_accuracy=validation_accuracy,
        )
    # What a sweeper maximises: the validation accuracy when there are validation rows
    # (hyperparameter search must not look at the test rows), else the test accuracy.
    return accuracy if validation_accuracy is None else validation_accuracy


def _run(
    raw: DictConfig, output_dir: Path, overrides: str, in_sweep: bool, parent_run_id: str | None
) -> tuple[float, float | None]:
    try:
        cfg = config.parse(raw)
    except DigitsNNError as error:
        if parent_run_id:
            _record_refused_job(raw, overrides, parent_run_id, error)
        raise
    paths = cfg.paths.under(output_dir)
    store = pipeline.open_store(cfg)
    scaled, split, onehot = pipeline.prepare_data(cfg)
    params_file = output_dir / "params.yaml"
    artifacts.write_bytes(params_file, OmegaConf.to_yaml(config.to_dict(cfg)).encode())
    with pipeline.recording(
        store,
        cfg,
        # Named after the DVC stages' split.npz, which holds these rows for the same seed
        # and test_size; the md5 (the datasets' digest) says whether it does.
        run_data=pipeline.RunData(split, provenance.split_md5(split), cfg.paths.split),
        overrides=overrides,
        parent_run_id=parent_run_id,
    ) as recorder:
        progress = not in_sweep and pipeline.interactive()
        result = pipeline.train_and_record(
            cfg, split, onehot, scaled, recorder, paths, params_file, progress
        )
        evaluation = pipeline.evaluate_and_record(
            result.network,
            split,
            pipeline.raw_pixels(split.X_test, scaled),
            result.cost_curve,
            result.classic_cost_curve,
            recorder,
            paths,
        )
    if result.validation_accuracy is not None:
        return evaluation.test_accuracy, result.validation_accuracy
    return evaluation.test_accuracy, None


def sweep_parent_run() -> str | None:
    """The id of the sweep's parent MLflow run, if the sweep is tracked."""
    return os.environ.get(PARENT_RUN_ENV) or None


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


def _write_result(
    output_dir: Path, raw: DictConfig, overrides: str, status: str, started: float, **extra: Any
) -> None:
    """The job's line of the sweep summary, read back by :mod:`digits_nn.sweep`."""
    payload: dict[str, Any] = {"overrides": overrides, "status": status}
    payload |= {key: OmegaConf.select(raw, key, default=None) for key in SUMMARY_KEYS}
    payload["duration_s"] = round(time.perf_counter() - started, 3)
    payload |= extra
    artifacts.write_json(output_dir / RESULT_FILE, payload)
