"""The files a run writes: the model and its cost curve (train), the metrics, the numeric
platform, reports and pictures (evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from digits_nn.config import Config, PathsConfig
from digits_nn.core import trainer
from digits_nn.core.network import Network, networks
from digits_nn.core.training import TrainingResult
from digits_nn.data.files import write_csv, write_json
from digits_nn.data.model_file import write_model
from digits_nn.errors import ArtifactError
from digits_nn.pipeline import numeric_platform, plots
from digits_nn.pipeline.evaluation import Evaluation
from digits_nn.pipeline.fit import validation_set
from digits_nn.pipeline.prepared import PreparedData

PICTURES = ("cost", "confusion", "misclassified", "weights")


def save_training(paths: PathsConfig, result: TrainingResult) -> list[Path]:
    write_model(paths.model, result.network)
    write_cost_curve(paths.cost, result)
    return [Path(paths.model), Path(paths.cost)]


def save_evaluation(
    paths: PathsConfig, evaluation: Evaluation, result: TrainingResult, data: PreparedData
) -> list[Path]:
    """metrics.json, platform.json, per-class report, test predictions and the PNGs;
    returns the paths."""
    return [
        *save_network_reports(paths, evaluation, result, data),
        *save_pictures(paths, evaluation, result, data),
    ]


def save_network_reports(
    paths: PathsConfig, evaluation: Evaluation, result: TrainingResult, data: PreparedData
) -> list[Path]:
    """A network's metrics.json (validation figures included), platform.json, per-class
    report and test predictions; returns the paths."""
    files = save_reports(paths, evaluation, data, metrics_file(evaluation, result))
    write_json(paths.platform, numeric_platform.recorded(numeric_platform.describe()))
    return [*files, Path(paths.platform)]


def save_pictures(
    paths: PathsConfig, evaluation: Evaluation, result: TrainingResult, data: PreparedData
) -> list[Path]:
    """The four PNGs of a run (``PICTURES``) in ``paths.plots``; returns the paths."""
    plot_dir = Path(paths.plots)
    pictures = {name: plot_dir / f"{name}.png" for name in PICTURES}
    plots.save_cost_curve(pictures["cost"], result.cost_curve, result.classic_cost_curve)
    plots.save_confusion_matrix(
        pictures["confusion"], evaluation.confusion, evaluation.test_accuracy
    )
    plots.save_misclassified(
        pictures["misclassified"],
        data.test_pixels,
        data.split.y_test,
        evaluation.test_predictions,
    )
    # An ensemble's picture is its first member's.
    first = networks(result.network)[0]
    plots.save_first_layer_weights(pictures["weights"], first.weights[0])
    return list(pictures.values())


def save_reports(
    paths: PathsConfig, evaluation: Evaluation, data: PreparedData, figures: dict[str, float]
) -> list[Path]:
    """metrics.json (``figures``), the per-class report and the test predictions."""
    write_json(paths.metrics, figures)
    write_json(paths.classes, evaluation.per_class)
    write_csv(
        paths.predictions,
        ["actual", "predicted"],
        zip(data.split.y_test.tolist(), evaluation.test_predictions.tolist()),
    )
    return [Path(paths.metrics), Path(paths.classes), Path(paths.predictions)]


def save_peer_evaluation(
    paths: PathsConfig, evaluation: Evaluation, data: PreparedData, figures: dict[str, float]
) -> list[Path]:
    """What a peer's run writes: the reports and the pictures that are not the network's
    (no cost curve, no weights)."""
    files = save_reports(paths, evaluation, data, figures)
    plot_dir = Path(paths.plots)
    pictures = [plot_dir / "confusion.png", plot_dir / "misclassified.png"]
    plots.save_confusion_matrix(pictures[0], evaluation.confusion, evaluation.test_accuracy)
    plots.save_misclassified(
        pictures[1], data.test_pixels, data.split.y_test, evaluation.test_predictions
    )
    return [*files, *pictures]


def metrics(evaluation: Evaluation, result: TrainingResult) -> dict[str, float]:
    """What evaluation adds to a run: the accuracies, and the final cost."""
    return {
        "test_accuracy": evaluation.test_accuracy,
        "train_accuracy": evaluation.train_accuracy,
        "final_cost": result.final_cost,
    }


def metrics_file(evaluation: Evaluation, result: TrainingResult) -> dict[str, float]:
    """metrics.json: :func:`metrics`, and where there are validation rows their accuracy
    and (with early stopping) the iteration whose weights were kept, so that DVC's
    experiments can be chosen on them rather than on the test rows. (The MLflow run has
    those from its training.)"""
    values = metrics(evaluation, result)
    if result.validation_accuracy is not None:
        values["validation_accuracy"] = result.validation_accuracy
    if result.best_iteration is not None:
        values["best_iteration"] = result.best_iteration
    return values


def read_training(cfg: Config, network: Network, data: PreparedData) -> TrainingResult:
    """The training as the train stage left it in its files: the network, its cost
    curves, the validation rows' accuracy (measured again, as training measured it), and
    with early stopping the iteration kept (the curves end there)."""
    table = _read_cost_table(cfg.paths.cost)
    validation = validation_set(cfg, data)
    return TrainingResult(
        network,
        table[:, 1],
        table[:, 2],
        table[:, 3] if table.shape[1] == 4 else None,
        len(table) if cfg.train.patience is not None else None,
        None if validation is None else trainer.accuracy(network, validation),
    )


def read_platform(path: str | Path) -> dict[str, str] | None:
    """The numeric platform a run recorded (platform.json); None if there is none that
    can be read: it is only ever compared with, never needed."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def write_cost_curve(path: str | Path, result: TrainingResult) -> None:
    """iteration,cost,classic_cost[,validation_cost], one row per iteration."""
    columns = [np.arange(1, len(result.cost_curve) + 1), result.cost_curve]
    columns.append(result.classic_cost_curve)
    header = ["iteration", "cost", "classic_cost"]
    if result.validation_cost_curve is not None:
        columns.append(result.validation_cost_curve)
        header.append("validation_cost")
    # repr() of a float round-trips exactly, so the CSV loses nothing.
    rows = ([int(row[0]), *(repr(float(v)) for v in row[1:])] for row in zip(*columns))
    write_csv(path, header, rows)


def read_cost_curve(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The cost and classic-cost columns of a cost curve CSV."""
    table = _read_cost_table(path)
    return table[:, 1], table[:, 2]


def _read_cost_table(path: str | Path) -> np.ndarray:
    """A cost curve CSV's rows, checked: iteration, cost, classic_cost[, validation_cost]."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing. Run `dvc repro train`, or `dvc checkout`.")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as error:
        raise ArtifactError(f"{path}: not a cost curve CSV ({error}).") from None
    if table.shape[1] not in (3, 4) or len(table) == 0:
        raise ArtifactError(f"{path}: expected rows of iteration,cost,classic_cost.")
    if not np.isfinite(table).all():
        raise ArtifactError(f"{path}: holds NaN or infinite costs.")
    return table
