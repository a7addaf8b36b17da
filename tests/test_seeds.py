"""The classic run's accuracy over seeds 0..9 matches the reference spread."""

import numpy as np
import pytest

from digits_nn import config, pipeline
from digits_nn.evaluate import evaluate


@pytest.mark.slow
def test_classic_accuracy_over_ten_seeds_matches_the_reference() -> None:
    accuracies = []
    for seed in range(10):
        cfg = config.parse({"seed": seed})
        _, split, onehot = pipeline.prepare_data(cfg)
        result = pipeline.fit(cfg, split, onehot, progress=False)
        accuracies.append(evaluate(result.network, split).test_accuracy)
    # Reference (shared/docs/reference-numbers.md): mean 0.884, min 0.873, max 0.905.
    assert 0.87 <= np.mean(accuracies) <= 0.90
    assert min(accuracies) >= 0.86 and max(accuracies) <= 0.92
