"""The served model: raw pixels in, the pipeline's labels out, and a caller's error for
anything that is not 64 finite pixel columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from digits_nn.core.forward import predict
from digits_nn.core.network import initialise
from digits_nn.data import steps
from digits_nn.data.digits import PIXEL_COLUMNS
from digits_nn.data.model_file import write_model
from digits_nn.tracking.models import log_model
from digits_nn.tracking.runs import run
from helpers import saved_model


# Review (issue 14), finding 7: integer pixels.
def test_the_model_takes_integer_and_float_pixels_and_refuses_bad_columns(tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(str(saved_model(tmp_path)))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 17, size=(20, 64))
    columns = list(PIXEL_COLUMNS)
    as_int = model.predict(pd.DataFrame(pixels, columns=columns))
    assert as_int == model.predict(pd.DataFrame(pixels.astype(float), columns=columns))
    assert set(as_int) <= set(range(10))
    bad_frames = {
        "63 columns": pd.DataFrame(pixels[:, :63], columns=columns[:63]),
        "65 columns": pd.DataFrame(pixels, columns=columns).assign(extra=1),
        "renamed": pd.DataFrame(pixels, columns=[f"p{i}" for i in range(64)]),
        "text": pd.DataFrame(pixels, columns=columns).astype(str),
        "NaN": pd.DataFrame(np.where(pixels > 15, np.nan, pixels), columns=columns),
    }
    for name, frame in bad_frames.items():
        with pytest.raises(MlflowException) as refused:
            model.predict(frame)
        assert refused.value.get_http_status_code() == 400, name


def test_the_served_model_scales_raw_pixels_as_the_pipeline_did(
    store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts
    import mlflow.pyfunc

    # The oracle: the network's labels for rows scaled by sklearn, from the raw pixels.
    raw = load_digits().data[:300]
    scaled = steps.standardise(steps.load_digits())
    network = initialise([64, 30, 10], "xavier", seed=4)
    expected = predict(network, scaled.X[:300])
    assert not np.array_equal(expected, predict(network, raw))  # scaling matters

    model_file = tmp_path / "model.npz"
    write_model(model_file, network)
    with run(store, name="served") as logged:
        log_model(logged, model_file, scaled.mean, scaled.scale)
    # The run's logged model, as runs:/<run_id>/model finds it: its files are the logged
    # model's, not the run's, and MLflow resolves a models:/ URI in the store the
    # environment names, as a user's shell does.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    local = mlflow.artifacts.download_artifacts(
        f"runs:/{logged.run_id}/model", dst_path=str(tmp_path)
    )
    model = mlflow.pyfunc.load_model(local)
    frame = pd.DataFrame(raw, columns=list(PIXEL_COLUMNS))
    np.testing.assert_array_equal(np.asarray(model.predict(frame)), expected)
