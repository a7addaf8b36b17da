"""What a run records about itself in MLflow: its name, tags and dataset inputs, its
configuration, and what training produced."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits_nn import config
from digits_nn.config import Config
from digits_nn.core.training import TrainingResult
from digits_nn.data.steps import Scaled, Split
from digits_nn.pipeline import numeric_platform, peers, provenance
from digits_nn.tracking import runs
from digits_nn.tracking.models import log_model, model_of
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store, project_root


@dataclass(frozen=True)
class RunData:
    """The rows a run trains and tests on, as its MLflow run records them: ``md5`` is the
    ``data_md5`` tag and the datasets' digest (split.npz's md5, as in dvc.lock), and
    ``source`` the DVC path of split.npz."""

    split: Split
    md5: str
    source: str


@contextlib.contextmanager
def new_run(
    store: Store | None, cfg: Config, run_data: RunData, tags: Mapping[str, str] | None = None
) -> Iterator[RunLog]:
    """A new run of ``cfg``, closed however it ends, tagged with its provenance and
    ``tags`` from the start (a sweep job's parent run and configuration: a job killed at
    any moment after leaves a run its sweep can find), with ``run_data`` as its dataset
    inputs. Logs nothing when ``store`` is None (tracking off)."""
    if store is None:
        yield RunLog()
        return
    all_tags = run_tags(run_data.md5) | dict(tags or {})
    with runs.run(store, name=run_name(cfg), description=describe(cfg), tags=all_tags) as run:
        run.datasets(run_data.split, run_data.md5, run_data.source)
        yield run


@contextlib.contextmanager
def reopened_run(store: Store | None, run_id: str) -> Iterator[RunLog]:
    """The run ``run_id`` open again, closed however it ends."""
    if store is None:
        yield RunLog()
        return
    with runs.run(store, run_id=run_id) as run:
        yield run


def run_tags(data_md5: str) -> dict[str, str]:
    """Provenance: git state, the data's md5, versions, BLAS and the numeric platform
    (``platform.*``). Never the environment, which may hold secrets such as
    MLFLOW_TRACKING_PASSWORD (the platform reads three variables that steer numpy and
    OpenBLAS, by name)."""
    tags: dict[str, str] = {
        **provenance.git_state(project_root()),
        "data_md5": data_md5,
        "blas": provenance.blas_info(),
    }
    tags |= {f"version.{name}": v for name, v in provenance.package_versions().items()}
    tags |= numeric_platform.tags(numeric_platform.describe())
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    return tags


def record_config(run: RunLog, cfg: Config, params_file: Path | None) -> None:
    """The whole config as params, and the params file the run was given. A peer's run
    has the params that act on it: the seed, the data section, the peer and its
    estimator (the network's sections play no part in it)."""
    params = config.flatten(cfg)
    if cfg.peer is not None:
        params = {k: v for k, v in params.items() if k.split(".")[0] in ("seed", "data", "peer")}
        params |= peers.params(cfg.peer)
        if cfg.train.validation_size:
            params["train.validation_size"] = cfg.train.validation_size
    run.params(params)
    if params_file is not None and params_file.is_file():
        run.files([params_file])


def record_cost(
    run: RunLog, cost: np.ndarray, classic_cost: np.ndarray, model_id: str | None = None
) -> None:
    """The minimised cost as a full history; the classic figure as its final value (its
    full curve is in cost.csv, and a second history would double the logging)."""
    run.history("train_cost", cost)
    if len(classic_cost):
        run.metrics({"final_classic_cost": float(classic_cost[-1])}, model_id=model_id)


def record_training(
    run: RunLog,
    result: TrainingResult,
    accuracy_curve: Mapping[int, float],
    files: list[Path],
    model_id: str | None = None,
) -> None:
    """What training produced: its curves and figures, the model's md5 and its files
    (the model file first). The MLflow model is :func:`record_model`'s; its figures are
    linked to it (``model_id``)."""
    record_cost(run, result.cost_curve, result.classic_cost_curve, model_id)
    run.history("validation_cost", result.validation_cost_curve)
    run.history("test_accuracy_curve", accuracy_curve)
    figures: dict[str, float] = {}
    if result.best_iteration is not None:
        figures["best_iteration"] = result.best_iteration
    if result.validation_accuracy is not None:
        figures["validation_accuracy"] = result.validation_accuracy
    if figures:
        run.metrics(figures, model_id=model_id)
    run.tag("model_md5", provenance.md5(files[0]))
    run.files(files)


def record_model(run: RunLog, cfg: Config, model_file: Path, scaling: Scaled) -> str | None:
    """The network as the run's MLflow logged model, with the scaling its inputs need
    and the run's configuration as its params; returns its id."""
    return log_model(run, model_file, scaling.mean, scaling.scale, config.flatten(cfg))


# The rows each final figure is measured on: the run's dataset inputs (RunLog.datasets).
EVALUATED_ON = {
    "test_accuracy": "digits-test",
    "train_accuracy": "digits-train",
    "final_cost": "digits-train",
}


def record_evaluation(run: RunLog, figures: Mapping[str, float], split: Split) -> None:
    """The final figures of an evaluation, each linked to the run's logged model and to
    the dataset input it was measured on (named by the split's md5, as
    :meth:`RunLog.datasets` names it), so that the experiment's Models tab shows them."""
    if not run.enabled:
        return
    model_id = model_of(run)
    digest = provenance.split_md5(split)
    for dataset in sorted({EVALUATED_ON.get(key, "") for key in figures}):
        group = {k: v for k, v in figures.items() if EVALUATED_ON.get(k, "") == dataset}
        run.metrics(group, model_id=model_id, dataset=(dataset, digest) if dataset else None)


def run_name(config: Config) -> str:
    """A name a person can read in the dashboard, e.g. ``h30-a0.25-i3000-s0``, a peer's
    ``peer-svc-s0``; a fold's ends in its fold and repeat (``-f2r0``)."""
    model = config.model
    hidden = "x".join(map(str, model.hidden_sizes)) if model.hidden_sizes else model.hidden_size
    extras = ""
    if config.data.augment.copies:
        extras += f"-aug{config.data.augment.copies}"
    if model.members > 1:
        extras += f"-m{model.members}"
    name = f"h{hidden}-a{config.train.alpha:g}-i{config.train.iterations}{extras}-s{config.seed}"
    if config.peer is not None:
        name = f"peer-{config.peer}-s{config.seed}"
    if config.data.folds is not None:
        name += f"-f{config.data.fold}r{config.data.repeat}"
    return name


def describe(config: Config) -> str:
    """One line for the dashboard: the network and how it is trained."""
    if config.peer is not None:
        peer = peers.PEERS_BY_NAME[config.peer]
        return (
            f"Baseline: scikit-learn {peer.label} on the {peer.inputs} pixels of the same"
            f" rows, seed {config.seed}."
        )
    model, train = config.model, config.train
    sizes = "-".join(map(str, model.layer_sizes()))
    if train.optimizer == "gd" and train.batch_size is None:
        how = "full-batch gradient descent"
    else:
        rows = "all" if train.batch_size is None else train.batch_size
        how = f"{'Nesterov ' if train.nesterov and train.optimizer == 'momentum' else ''}"
        how += f"{train.optimizer} on batches of {rows} rows"
    extras = [f"L2 {train.l2:g}"] if train.l2 else []
    if train.schedule == "inverse_time":
        extras.append(f"inverse-time decay {train.decay:g}")
    if train.patience is not None:
        extras.append(f"early stopping (patience {train.patience})")
    if config.data.augment.copies:
        extras.append(f"{config.data.augment.copies} affine copies of each training image")
    members = f", {model.members} members averaged" if model.members > 1 else ""
    return (
        f"{sizes} {model.activation} network, {model.output} output, {model.init} init, {how}"
        f" with alpha {train.alpha:g} for {train.iterations} iterations"
        f"{', ' + ', '.join(extras) if extras else ''}{members}, seed {config.seed}."
    )
