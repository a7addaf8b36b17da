"""The files a run writes: the model and its cost curve (train), the metrics, reports and
pictures (evaluate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_nn.config import PathsConfig
from digits_nn.core.training import TrainingResult
from digits_nn.data.files import write_csv, write_json
from digits_nn.data.model_file import write_model
from digits_nn.errors import ArtifactError
from digits_nn.pipeline import plots
from digits_nn.pipeline.evaluation import Evaluation
from digits_nn.pipeline.prepared import PreparedData

PICTURES = ("cost", "confusion", "misclassified", "weights")


def save_training(paths: PathsConfig, result: TrainingResult) -> list[Path]:
    write_model(paths.model, result.network)
    write_cost_curve(paths.cost, result)
    return [Path(paths.model), Path(paths.cost)]


def save_evaluation(
    paths: PathsConfig, evaluation: Evaluation, result: TrainingResult, data: PreparedData
) -> list[Path]:
    """metrics.json, per-class report, test predictions and the PNGs; returns the paths."""
    return [
        *save_reports(paths, evaluation, result, data),
        *save_pictures(paths, evaluation, result, data),
    ]


def save_reports(
    paths: PathsConfig, evaluation: Evaluation, result: TrainingResult, data: PreparedData
) -> list[Path]:
    """metrics.json, per-class report and test predictions; returns the paths."""
    write_json(paths.metrics, metrics(evaluation, result))
    write_json(paths.classes, evaluation.per_class)
    write_csv(
        paths.predictions,
        ["actual", "predicted"],
        zip(data.split.y_test.tolist(), evaluation.test_predictions.tolist()),
    )
    return [Path(paths.metrics), Path(paths.classes), Path(paths.predictions)]


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
    plots.save_first_layer_weights(pictures["weights"], result.network.weights[0])
    return list(pictures.values())


def metrics(evaluation: Evaluation, result: TrainingResult) -> dict[str, float]:
    return {
        "test_accuracy": evaluation.test_accuracy,
        "train_accuracy": evaluation.train_accuracy,
        "final_cost": result.final_cost,
    }


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
    return table[:, 1], table[:, 2]
