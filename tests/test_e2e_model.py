"""The trained model as MLflow serves it: raw pixels in, the pipeline's digits out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import mlflow_runs, run

pytestmark = pytest.mark.slow


def raw_test_pixels(repo: Path):
    import pandas as pd

    from digits_nn import artifacts

    split = artifacts.read_split(repo / "data/processed/split.npz")
    scaled = artifacts.read_scaled(repo / "data/interim/scaled.npz")
    pixels = split.X_test * scaled.scale + scaled.mean  # back to the 0..16 the user has
    return pd.DataFrame(pixels, columns=[f"pixel_{i}" for i in range(64)])


def test_logged_model_predicts_what_the_pipeline_evaluated(reproduced: Path, tmp_path) -> None:
    import mlflow.pyfunc

    client, runs = mlflow_runs(reproduced)
    run_id = runs[0].info.run_id
    uri = f"runs:/{run_id}/model"
    mlflow.set_tracking_uri(f"sqlite:///{reproduced / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(uri)
    # No input schema: MLflow would refuse integer pixels for double columns; the
    # model's own code checks the 64 columns (test_review.py, test_e2e_review.py).
    assert model.metadata.get_input_schema() is None
    assert model.metadata.get_output_schema().input_names() == ["digit"]
    frame = raw_test_pixels(reproduced)
    expected = np.loadtxt(reproduced / "reports/predictions.csv", delimiter=",", skiprows=1)
    predicted = np.asarray(model.predict(frame))
    assert np.array_equal(predicted, expected[:, 1])
    # Loading ran the model's code, not a pickle: no pickle file travels with it.
    files = {a.path for a in client.list_artifacts(run_id, "model/artifacts")}
    assert files == {"model/artifacts/model.npz", "model/artifacts/scaling.npz"}

    # The command-line route a user would take.
    frame.to_csv(tmp_path / "digits.csv", index=False)
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", uri]
    command += ["-i", str(tmp_path / "digits.csv"), "-t", "csv", "--env-manager", "local"]
    command += ["-o", str(tmp_path / "predictions.json")]
    run(command, cwd=reproduced, MLFLOW_TRACKING_URI=f"sqlite:///{reproduced / 'mlflow.db'}")
    served = json.loads((tmp_path / "predictions.json").read_text())["predictions"]
    assert served == expected[:, 1].astype(int).tolist()
