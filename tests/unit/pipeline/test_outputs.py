"""The files a run writes: the cost curve round-trips exactly, and a damaged one is
refused naming the file; the evaluate step's files, a network's and a peer's, each
named and holding exactly what it should."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from digits_nn.config import PathsConfig
from digits_nn.core.network import Ensemble, initialise
from digits_nn.core.training import TrainingResult
from digits_nn.data import steps
from digits_nn.pipeline import numeric_platform, plots
from digits_nn.pipeline.evaluation import Evaluation, evaluate_predictions
from digits_nn.pipeline.outputs import (
    read_cost_curve,
    save_evaluation,
    save_peer_evaluation,
    write_cost_curve,
)
from digits_nn.pipeline.prepared import PreparedData
from helpers import assert_artifact_error


def curves(cost, classic, validation=None) -> TrainingResult:
    return TrainingResult(initialise([2, 2], "uniform", 0), cost, classic, validation)


def test_cost_curve_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    cost = rng.random(50) * 10.0 ** rng.integers(-300, 3, size=50)
    classic = np.array([1 / 3, np.pi, 5e-324, 1e308, 0.1, *rng.random(45)])
    path = tmp_path / "cost.csv"
    write_cost_curve(path, curves(cost, classic))

    lines = path.read_text().splitlines()
    assert lines[0] == "iteration,cost,classic_cost"
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in range(1, 51)]
    back_cost, back_classic = read_cost_curve(path)
    np.testing.assert_array_equal(back_cost, cost)
    np.testing.assert_array_equal(back_classic, classic)


def test_single_row_cost_curve_reads_as_one_value(tmp_path):
    path = tmp_path / "cost.csv"
    write_cost_curve(path, curves(np.array([0.5]), np.array([0.75])))
    cost, classic = read_cost_curve(path)
    np.testing.assert_array_equal(cost, [0.5])
    np.testing.assert_array_equal(classic, [0.75])


def test_a_validation_curve_is_a_fourth_column(tmp_path):
    path = tmp_path / "cost.csv"
    write_cost_curve(path, curves(np.array([0.5, 0.25]), np.array([0.75, 0.5]), np.ones(2)))
    assert path.read_text().splitlines() == [
        "iteration,cost,classic_cost,validation_cost",
        "1,0.5,0.75,1.0",
        "2,0.25,0.5,1.0",
    ]
    cost, classic = read_cost_curve(path)
    np.testing.assert_array_equal(cost, [0.5, 0.25])
    np.testing.assert_array_equal(classic, [0.75, 0.5])


@pytest.mark.filterwarnings("ignore:loadtxt")
@pytest.mark.parametrize(
    "text",
    ["iteration,cost,classic_cost\n1,abc,2\n", "iteration,cost\n1,2\n", "iteration,cost,c\n"],
    ids=["not-a-number", "two-columns", "no-rows"],
)
def test_malformed_cost_curve_is_refused(tmp_path, text):
    path = tmp_path / "cost.csv"
    path.write_text(text)
    assert_artifact_error(read_cost_curve, path)


# With only final_cost, test_accuracy and train_accuracy in reports/metrics.json,
# `dvc exp show` and `dvc metrics diff` offer nothing else to choose validated
# experiments on.
def test_the_metrics_hold_validation_accuracy_and_best_iteration_where_they_exist(
    tmp_path,
) -> None:
    import dataclasses

    from digits_nn.config import parse
    from digits_nn.data.model_file import read_model
    from digits_nn.data.steps import without_validation
    from digits_nn.pipeline import outputs
    from digits_nn.pipeline.evaluation import evaluate
    from digits_nn.pipeline.fit import fit
    from digits_nn.pipeline.prepared import prepare
    from helpers import modern_config

    cfg = modern_config(train={"validation_size": 0.2, "patience": 2, "iterations": 30})
    cfg = dataclasses.replace(cfg, paths=cfg.paths.under(tmp_path))
    data = prepare(cfg)
    result = fit(cfg, data)
    evaluation = evaluate(result.network, without_validation(data.split, 0.2, cfg.seed))
    metrics = outputs.metrics_file(evaluation, result)
    assert metrics["validation_accuracy"] == result.validation_accuracy is not None
    assert metrics["best_iteration"] == result.best_iteration is not None
    # The evaluate stage reads the same figures back from the train stage's files.
    outputs.save_training(cfg.paths, result)
    again = outputs.read_training(cfg, read_model(cfg.paths.model), data)
    assert outputs.metrics_file(evaluation, again) == metrics
    # Without validation rows: the three figures of the classic metrics.json, no more.
    plain = parse({"train": {"iterations": 3}})
    unvalidated = fit(plain, data)
    assert set(outputs.metrics_file(evaluation, unvalidated)) == {
        "test_accuracy",
        "train_accuracy",
        "final_cost",
    }


# ---- the evaluate step's files -------------------------------------------------------------


@pytest.fixture(scope="module")
def few_rows() -> PreparedData:
    """Twenty training rows and ten test rows (the digits 0 to 9, in order) of the real
    digits, scaled on every row: few enough to spell out every file's contents."""
    scaled = steps.standardise(steps.load_digits())
    split = steps.take(scaled.X, scaled.y, (np.arange(10, 30), np.arange(10)))
    assert split.y_test.tolist() == list(range(10))
    return PreparedData(scaled, split, steps.one_hot_split(split))


@pytest.fixture(scope="module")
def scored(few_rows: PreparedData) -> Evaluation:
    """Test rows 8 and 9 predicted as each other (accuracy 0.8) and one training row
    wrong (0.95): a file or picture given the other accuracy, or the columns swapped,
    shows it."""
    train = few_rows.split.y_train.copy()
    train[0] = 7
    return evaluate_predictions(few_rows.split, train, np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 8]))


PREDICTIONS_CSV = "actual,predicted\n0,0\n1,1\n2,2\n3,3\n4,4\n5,5\n6,6\n7,7\n8,9\n9,8\n"
# Digits 8 and 9 are never predicted right (each predicted once, as the other); the
# rest always are. One test row of each digit.
PER_CLASS = {
    str(digit): dict.fromkeys(["precision", "recall", "f1-score"], float(digit < 8))
    | {"support": 1.0}
    for digit in range(10)
}


def drawn(folder: Path, draw: Callable[..., None], *args: object) -> bytes:
    """The PNG bytes ``draw`` (one of :mod:`plots`' functions) writes for ``args``."""
    path = folder / f"{draw.__name__}.png"
    draw(path, *args)
    return path.read_bytes()


def test_a_peers_evaluation_writes_its_figures_reports_and_two_pictures(
    tmp_path: Path, few_rows: PreparedData, scored: Evaluation
) -> None:
    paths = PathsConfig().under(tmp_path / "run")
    figures = {"test_accuracy": 0.8, "train_accuracy": 0.95, "validation_accuracy": 0.5}
    reports = tmp_path / "run/reports"

    files = save_peer_evaluation(paths, scored, few_rows, figures)

    assert files == [
        reports / "metrics.json",
        reports / "classes.json",
        reports / "predictions.csv",
        reports / "plots/confusion.png",
        reports / "plots/misclassified.png",
    ]
    # No platform.json, cost curve or weights: a peer has no network to describe.
    assert sorted(tmp_path.rglob("*.*")) == sorted(files)
    assert (reports / "metrics.json").read_text() == (
        '{\n  "test_accuracy": 0.8,\n  "train_accuracy": 0.95,\n  "validation_accuracy": 0.5\n}\n'
    )
    assert json.loads((reports / "classes.json").read_text()) == PER_CLASS
    assert (reports / "predictions.csv").read_text() == PREDICTIONS_CSV
    # The pictures are the test rows' confusion at the test accuracy and the two test
    # digits got wrong, byte for byte (plots' PNGs carry no timestamp).
    expected = tmp_path / "expected"
    y_test = few_rows.split.y_test
    confusion = drawn(expected, plots.save_confusion_matrix, scored.confusion, 0.8)
    assert (reports / "plots/confusion.png").read_bytes() == confusion
    wrong = drawn(
        expected, plots.save_misclassified, few_rows.test_pixels, y_test, scored.test_predictions
    )
    assert (reports / "plots/misclassified.png").read_bytes() == wrong


def test_a_networks_evaluation_writes_its_metrics_platform_reports_and_four_pictures(
    tmp_path: Path, few_rows: PreparedData, scored: Evaluation
) -> None:
    # An ensemble of two: its weights picture is its first member's.
    first, second = initialise([64, 4, 10], "uniform", 0), initialise([64, 4, 10], "uniform", 1)
    cost, classic = np.array([2.0, 0.5]), np.array([3.0, 1.5])
    result = TrainingResult(
        Ensemble([first, second]), cost, classic, best_iteration=2, validation_accuracy=0.75
    )
    paths = PathsConfig().under(tmp_path / "run")
    reports = tmp_path / "run/reports"

    files = save_evaluation(paths, scored, result, few_rows)

    assert files == [
        reports / "metrics.json",
        reports / "classes.json",
        reports / "predictions.csv",
        reports / "platform.json",
        reports / "plots/cost.png",
        reports / "plots/confusion.png",
        reports / "plots/misclassified.png",
        reports / "plots/weights.png",
    ]
    assert sorted(tmp_path.rglob("*.*")) == sorted(files)
    assert json.loads((reports / "metrics.json").read_text()) == {
        "test_accuracy": 0.8,
        "train_accuracy": 0.95,
        "final_cost": 0.5,
        "validation_accuracy": 0.75,
        "best_iteration": 2,
    }
    assert json.loads((reports / "classes.json").read_text()) == PER_CLASS
    assert (reports / "predictions.csv").read_text() == PREDICTIONS_CSV
    platform = numeric_platform.recorded(numeric_platform.describe())
    assert json.loads((reports / "platform.json").read_text()) == platform
    expected = tmp_path / "expected"
    pictures = {
        "cost": drawn(expected, plots.save_cost_curve, cost, classic),
        "confusion": drawn(expected, plots.save_confusion_matrix, scored.confusion, 0.8),
        "misclassified": drawn(
            expected,
            plots.save_misclassified,
            few_rows.test_pixels,
            few_rows.split.y_test,
            scored.test_predictions,
        ),
        "weights": drawn(expected, plots.save_first_layer_weights, first.weights[0]),
    }
    for name, png in pictures.items():
        assert (reports / f"plots/{name}.png").read_bytes() == png, name
    # The second member's weights draw another picture: the check above can tell them apart.
    other = drawn(tmp_path / "other", plots.save_first_layer_weights, second.weights[0])
    assert other != pictures["weights"]


# ---- what the evaluate stage reads back -----------------------------------------------------


@pytest.mark.parametrize("validated", [True, False], ids=["validation-rows", "none"])
def test_the_evaluate_stage_reads_the_training_as_the_train_stage_left_it(
    tmp_path: Path, few_rows: PreparedData, validated: bool
) -> None:
    """Every figure from its own column of the cost curve: with validation rows and
    early stopping, the validation curve, the iteration kept (the curve's last) and the
    validation rows' accuracy measured again; without them, none of the three."""
    import dataclasses

    from digits_nn.config import parse
    from digits_nn.core import trainer
    from digits_nn.pipeline.fit import validation_set
    from digits_nn.pipeline.outputs import read_training

    train = {"validation_size": 0.5, "patience": 2} if validated else {}
    cfg = parse({"train": train})
    cfg = dataclasses.replace(cfg, paths=cfg.paths.under(tmp_path))
    network = initialise([64, 4, 10], "uniform", 0)
    cost, classic, validation = [2.0, 1.0, 0.5], [3.0, 2.0, 1.5], [2.5, 1.25, 0.75]
    written = TrainingResult(network, np.array(cost), np.array(classic))
    if validated:
        written = dataclasses.replace(written, validation_cost_curve=np.array(validation))
    write_cost_curve(cfg.paths.cost, written)

    back = read_training(cfg, network, few_rows)

    assert back.network is network
    np.testing.assert_array_equal(back.cost_curve, cost)
    np.testing.assert_array_equal(back.classic_cost_curve, classic)
    if validated:
        np.testing.assert_array_equal(back.validation_cost_curve, validation)
        assert back.best_iteration == 3
        rows = validation_set(cfg, few_rows)
        assert rows is not None and len(rows.X) == 10
        assert back.validation_accuracy == trainer.accuracy(network, rows)
    else:
        assert back.validation_cost_curve is None
        assert back.best_iteration is None
        assert back.validation_accuracy is None


@pytest.mark.parametrize("cost", ["nan", "inf", "-inf"])
def test_a_cost_curve_holding_a_non_finite_cost_is_refused_in_one_line(
    tmp_path: Path, cost: str
) -> None:
    path = tmp_path / "cost.csv"
    path.write_text(f"iteration,cost,classic_cost\n1,0.5,0.75\n2,{cost},0.5\n")
    message = assert_artifact_error(read_cost_curve, path)
    assert message == f"{path}: holds NaN or infinite costs."


@pytest.mark.parametrize(
    "text", ['["not", "a", "mapping"]', '"numpy 2.0"', "7"], ids=["list", "string", "number"]
)
def test_a_recorded_platform_that_is_not_a_mapping_reads_as_none(tmp_path: Path, text) -> None:
    """platform.json is only ever compared with: one that cannot be read is no platform."""
    from digits_nn.pipeline.outputs import read_platform

    path = tmp_path / "platform.json"
    path.write_text(text)
    assert read_platform(path) is None
    path.write_text('{"numpy": "2.0", "threads": 1}')
    assert read_platform(path) == {"numpy": "2.0", "threads": "1"}
