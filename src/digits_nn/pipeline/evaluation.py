"""Accuracy, confusion matrix and per-class precision and recall of a trained network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_nn.core.forward import predict
from digits_nn.core.network import Model
from digits_nn.data.digits import N_CLASSES
from digits_nn.data.steps import Split


@dataclass
class Evaluation:
    train_accuracy: float
    test_accuracy: float
    test_predictions: np.ndarray  # (n_test,) predicted labels
    confusion: np.ndarray  # (10, 10): rows are true labels, columns predictions
    per_class: dict[str, dict[str, float]]  # "0".."9" -> precision, recall, f1-score, support


def evaluate(network: Model, split: Split) -> Evaluation:
    return evaluate_predictions(
        split, predict(network, split.X_train), predict(network, split.X_test)
    )


def evaluate_predictions(
    split: Split, train_predictions: np.ndarray, test_predictions: np.ndarray
) -> Evaluation:
    """The figures of any model's predictions on a split's training and test rows."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    labels = list(range(N_CLASSES))
    report = classification_report(
        split.y_test, test_predictions, labels=labels, output_dict=True, zero_division=0
    )
    return Evaluation(
        train_accuracy=float(accuracy_score(split.y_train, train_predictions)),
        test_accuracy=float(accuracy_score(split.y_test, test_predictions)),
        test_predictions=test_predictions,
        confusion=confusion_matrix(split.y_test, test_predictions, labels=labels),
        per_class={str(k): report[str(k)] for k in labels},
    )
