"""`experiment=best`, reduced to seconds, end to end: `dvc exp run` scales the pixels
globally, trains an ensemble on augmented rows, and logs it as one model that MLflow
serves with the pipeline's own predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_nn.core.network import Ensemble
from digits_nn.data import artifacts
from digits_nn.data.digits import PIXEL_COLUMNS
from digits_nn.data.model_file import read_model
from helpers import dvc, md5, mlflow_runs

# The preset with a narrow network, few passes, few copies and three members.
REDUCED = [
    "experiment=best",
    "model.hidden_size=32",
    "train.iterations=4",
    "data.augment.copies=2",
    "model.members=3",
]


def test_a_reduced_best_preset_trains_an_ensemble_logged_and_served_as_one_model(
    reproduced: Path,
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    raw_before = md5(reproduced / "data/raw/digits.npz")
    result = dvc("exp", "run", *(f"-S={o}" for o in REDUCED), cwd=reproduced)
    assert "Running stage 'load'" not in result.stdout  # the raw digits stay cached
    assert md5(reproduced / "data/raw/digits.npz") == raw_before
    for stage in ("scale", "train", "evaluate"):
        assert f"Running stage '{stage}'" in result.stdout, stage

    # One scale for every pixel; the model is three networks in float32.
    scaled = artifacts.read_scaled(reproduced / "data/interim/scaled.npz")
    assert np.unique(scaled.mean).size == 1 and np.unique(scaled.scale).size == 1
    model = read_model(reproduced / "models/model.npz", n_inputs=64)
    assert isinstance(model, Ensemble) and len(model.members) == 3
    assert model.layer_sizes == [64, 32, 10] and model.dtype == np.float32
    cost = np.loadtxt(reproduced / "reports/cost.csv", delimiter=",", skiprows=1)
    assert len(cost) == 4  # the members' mean cost, one point per pass

    _, runs = mlflow_runs(reproduced)
    newest = runs[0]
    assert newest.info.status == "FINISHED"
    assert newest.info.run_name == "h32-a0.05-i4-aug2-m3-s0"
    params = newest.data.params
    assert (params["model.members"], params["data.augment.copies"]) == ("3", "2")
    assert params["data.scaling"] == "global"
    assert newest.data.metrics["test_accuracy"] > 0.8

    # The logged model: the raw test pixels in, the evaluated labels out.
    split = artifacts.read_split(reproduced / "data/processed/split.npz")
    pixels = split.X_test * scaled.scale + scaled.mean
    frame = pd.DataFrame(pixels, columns=list(PIXEL_COLUMNS))
    mlflow.set_tracking_uri(f"sqlite:///{reproduced / 'mlflow.db'}")
    try:
        served = mlflow.pyfunc.load_model(f"runs:/{newest.info.run_id}/model")
        predicted = np.asarray(served.predict(frame))
    finally:
        mlflow.set_tracking_uri(None)
    evaluated = np.loadtxt(reproduced / "reports/predictions.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(predicted, evaluated[:, 1])
    assert np.mean(predicted == split.y_test) == newest.data.metrics["test_accuracy"]
