"""One whole run of the pipeline for one config: what ``pipelines/run.py`` does, and
what each job of a sweep does.

The same steps as the DVC stages, chained in memory, writing into the run's own folder
(Hydra's run directory, never over the DVC outputs), logging one MLflow run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from digits_nn import config
from digits_nn.cli import exit_on_user_error, interactive
from digits_nn.config import Config
from digits_nn.core.training import TrainingResult
from digits_nn.data.files import write_bytes
from digits_nn.pipeline import peers, provenance
from digits_nn.pipeline.prepared import PreparedData, prepare
from digits_nn.pipeline.recording import RunData, new_run
from digits_nn.pipeline.steps import (
    RunContext,
    evaluate_and_record,
    peer_and_record,
    train_and_record,
)
from digits_nn.tracking.store import open_store

#: How a run gets its trained network: by training (the default), or by reading it from
#: a training that another run shared (a sweep's budgets).
TrainStep = Callable[[RunContext, PreparedData], TrainingResult]


@dataclass(frozen=True)
class RunPlace:
    """Where one run goes: its folder, the overrides that made its config (tagged), tags
    that place it among other runs (a sweep job's parent run and key), whether a person
    watches its progress, and whether it draws its pictures."""

    output_dir: Path
    overrides: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    progress: bool = False
    pictures: bool = True


@dataclass(frozen=True)
class Outcome:
    cfg: Config
    test_accuracy: float
    validation_accuracy: float | None
    run_id: str | None
    cost: np.ndarray

    @property
    def score(self) -> float:
        """What a search maximises: the validation accuracy where there are validation
        rows (choosing on the test rows would make the test accuracy optimistic)."""
        if self.validation_accuracy is not None:
            return self.validation_accuracy
        return self.test_accuracy


def run(
    cfg: Config,
    place: RunPlace,
    train: TrainStep = train_and_record,
    data: PreparedData | None = None,
) -> Outcome:
    """Prepare the data (unless ``data`` holds ``cfg``'s rows already), train, evaluate,
    and record it all as one MLflow run."""
    store = open_store(cfg.tracking)
    data = prepare(cfg) if data is None else data
    params_file = place.output_dir / "params.yaml"
    write_bytes(params_file, config.to_yaml(cfg).encode())
    # Named after the DVC stages' split.npz, which holds these rows for the same seed and
    # test_size; the md5 (the datasets' digest) says whether it does.
    run_data = RunData(data.split, provenance.split_md5(data.split), cfg.paths.split)
    tags = {"overrides": " ".join(place.overrides), **place.tags}
    if cfg.peer is not None:
        tags |= peers.tags(cfg.peer)
    with new_run(store, cfg, run_data, tags) as logged:
        outputs = cfg.paths.under(place.output_dir)
        ctx = RunContext(cfg, logged, outputs, params_file, place.progress, place.pictures)
        if cfg.peer is not None:
            scored, validation = peer_and_record(ctx, data)
            return Outcome(cfg, scored.test_accuracy, validation, logged.run_id, np.empty(0))
        result = train(ctx, data)
        evaluation = evaluate_and_record(ctx, result, data)
    return Outcome(
        cfg, evaluation.test_accuracy, result.validation_accuracy, logged.run_id, result.cost_curve
    )


def run_single(raw: DictConfig) -> float:
    """``pipelines/run.py`` without ``-m``: one run, into Hydra's run directory."""
    hydra = HydraConfig.get()
    place = RunPlace(
        Path(hydra.runtime.output_dir), list(hydra.overrides.task), progress=interactive()
    )
    return run(config.parse(raw), place).score


class CredentialsCheck(Callback):
    """Refuses a run or a sweep whose config holds a URI with credentials, before Hydra
    writes anything: Hydra copies the config, its own settings and the overrides into
    the run's folder (``.hydra/``) before the task starts, and a sweep's into its own.

    Registered first in ``conf/config.yaml`` (``hydra.callbacks``). Hydra turns a
    callback's exception into a warning, so the refusal exits itself (one line, status 2).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_credentials(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_credentials(config)


def refuse_credentials(composed: DictConfig) -> None:
    """Exit with one line if ``composed`` (the task's keys first, then Hydra's node: its
    overrides hold a sweep's values) holds a URI with credentials."""
    everything = OmegaConf.to_container(composed, resolve=False)
    assert isinstance(everything, dict)
    ordered = {k: v for k, v in everything.items() if k != "hydra"} | {
        "hydra": everything.get("hydra", {})
    }
    with exit_on_user_error():
        config.refuse_credentials(ordered)
