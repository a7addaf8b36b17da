"""Evaluation of a trained network: the accuracies, on the right rows."""

from __future__ import annotations

import numpy as np

from digits_nn.core.forward import predict
from digits_nn.data.steps import without_validation
from digits_nn.pipeline.evaluation import evaluate
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare
from helpers import modern_config


def test_the_confusion_matrix_and_the_report_count_the_test_rows() -> None:
    cfg = modern_config(train={"iterations": 5})
    data = prepare(cfg)
    network = fit(cfg, data).network
    evaluation = evaluate(network, data.split)
    predicted = predict(network, data.split.X_test)
    np.testing.assert_array_equal(evaluation.test_predictions, predicted)
    assert evaluation.test_accuracy == float(np.mean(predicted == data.split.y_test))
    for actual in range(10):
        for guessed in range(10):
            count = np.sum((data.split.y_test == actual) & (predicted == guessed))
            assert evaluation.confusion[actual, guessed] == count
    assert sorted(evaluation.per_class) == [str(k) for k in range(10)]
    supports = [evaluation.per_class[str(k)]["support"] for k in range(10)]
    assert supports == np.bincount(data.split.y_test, minlength=10).tolist()


# Measured on the rows left after the validation carve, not on all training rows.
def test_train_accuracy_is_measured_on_the_rows_trained_on() -> None:
    from sklearn.model_selection import train_test_split

    cfg = modern_config(train={"validation_size": 0.5, "iterations": 30})
    data = prepare(cfg)
    split = data.split
    result = fit(cfg, data)
    fitted = without_validation(split, cfg.train.validation_size, cfg.seed)
    # The fit rows, found independently of the pipeline's helper.
    X_fit, X_val, y_fit, y_val = train_test_split(
        split.X_train, split.y_train, test_size=0.5, random_state=cfg.seed, stratify=split.y_train
    )
    np.testing.assert_array_equal(fitted.X_train, X_fit)
    evaluation = evaluate(result.network, fitted)
    on_fit = float(np.mean(predict(result.network, X_fit) == y_fit))
    on_val = float(np.mean(predict(result.network, X_val) == y_val))
    assert evaluation.train_accuracy == on_fit
    assert result.validation_accuracy == on_val
    assert on_fit != on_val  # else the test could not tell them apart
    np.testing.assert_array_equal(fitted.X_test, split.X_test)
