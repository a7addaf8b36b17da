"""The accuracies the models reach over seeds, against the reference figures."""

from __future__ import annotations

import numpy as np

from digits_nn.config import parse
from digits_nn.pipeline.evaluation import evaluate
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare
from helpers import task_config


def test_classic_accuracy_over_ten_seeds_matches_the_reference() -> None:
    accuracies = []
    for seed in range(10):
        cfg = parse({"seed": seed})
        data = prepare(cfg)
        result = fit(cfg, data)
        accuracies.append(evaluate(result.network, data.split).test_accuracy)
    # Reference (shared/docs/reference-numbers.md): mean 0.884, min 0.873, max 0.905.
    assert 0.87 <= np.mean(accuracies) <= 0.90
    assert min(accuracies) >= 0.86 and max(accuracies) <= 0.92


def modern_preset(seed: int, dtype: str):
    """conf/experiment/modern.yaml at ``seed`` in ``dtype``."""
    return parse(task_config("experiment=modern", f"seed={seed}", f"train.dtype={dtype}"))


# float32 is an option only if it reaches float64's accuracy.
def test_float32_reaches_the_float64_test_accuracy_on_the_modern_preset_seeds_0_to_4() -> None:
    for seed in range(5):
        accuracy = {}
        for dtype in ("float64", "float32"):
            cfg = modern_preset(seed, dtype)
            data = prepare(cfg)
            result = fit(cfg, data)
            assert result.network.weights[0].dtype == np.dtype(dtype)
            assert np.isfinite(result.cost_curve).all()
            accuracy[dtype] = evaluate(result.network, data.split).test_accuracy
        assert abs(accuracy["float32"] - accuracy["float64"]) <= 0.005, (seed, accuracy)
