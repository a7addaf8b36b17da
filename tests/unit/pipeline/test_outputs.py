"""The files a run writes: the cost curve round-trips exactly, and a damaged one is
refused naming the file."""

import numpy as np
import pytest

from digits_nn.core.network import initialise
from digits_nn.core.training import TrainingResult
from digits_nn.pipeline.outputs import read_cost_curve, write_cost_curve
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
