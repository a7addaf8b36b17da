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


def logged_and_loaded(store, folder: Path, model, scaled: steps.Scaled):
    """``model`` logged by the pipeline's own log_model, then loaded as MLflow serves it."""
    import mlflow.pyfunc

    model_file = folder / "model.npz"
    write_model(model_file, model)
    with run(store, name="served") as logged:
        log_model(logged, model_file, scaled.mean, scaled.scale)
    local = store.client.download_artifacts(logged.run_id, "model", str(folder))
    return mlflow.pyfunc.load_model(local)


def test_the_served_model_scales_raw_pixels_as_the_pipeline_did(store, tmp_path: Path) -> None:
    # The oracle: the network's labels for rows scaled by sklearn, from the raw pixels.
    raw = load_digits().data[:300]
    scaled = steps.standardise(steps.load_digits())
    network = initialise([64, 30, 10], "xavier", seed=4)
    expected = predict(network, scaled.X[:300])
    assert not np.array_equal(expected, predict(network, raw))  # scaling matters

    model = logged_and_loaded(store, tmp_path, network, scaled)
    frame = pd.DataFrame(raw, columns=list(PIXEL_COLUMNS))
    np.testing.assert_array_equal(np.asarray(model.predict(frame)), expected)


def test_the_served_model_in_this_process_scales_and_refuses_as_when_served(
    tmp_path: Path,
) -> None:
    """digits_nn.serving itself, not the copy a logged model ships: its artifacts read
    back, raw pixels scaled by the fitted scaling, and each refusal's words."""
    from types import SimpleNamespace

    from mlflow.exceptions import MlflowException

    from digits_nn import serving
    from digits_nn.data.files import write_npz

    scaled = steps.standardise(steps.load_digits())
    network = initialise([64, 7, 10], "xavier", seed=2)
    write_model(tmp_path / "model.npz", network)
    write_npz(tmp_path / "scaling.npz", mean=scaled.mean, scale=scaled.scale)
    weights, scaling = str(tmp_path / "model.npz"), str(tmp_path / "scaling.npz")
    model = serving.DigitsClassifier()
    model.load_context(SimpleNamespace(artifacts={"weights": weights, "scaling": scaling}))
    raw = load_digits().data[:50]
    frame = pd.DataFrame(raw.astype(int), columns=list(PIXEL_COLUMNS))
    assert model.predict(None, frame) == predict(network, scaled.X[:50]).tolist()
    refusals = {
        "expected exactly the 64 columns pixel_0..pixel_63 in order; got 2 (missing"
        " ['pixel_0', 'pixel_1', 'pixel_2', 'pixel_3', 'pixel_4'], unexpected ['a', 'b']).": (
            pd.DataFrame({"a": [1], "b": [2]})
        ),
        "columns ['pixel_0', 'pixel_2'] are not numbers; pixels must be integers or floats"
        " (0..16).": frame.head(1).astype({"pixel_0": str, "pixel_2": bool}),
        "pixels must be finite numbers (0..16); got NaN or infinity.": frame.head(1).replace(
            {0: np.inf}
        ),
    }
    for message, bad in refusals.items():
        with pytest.raises(MlflowException) as refused:
            serving.pixels_of(bad)
        assert refused.value.message == message
        assert refused.value.get_http_status_code() == 400


def test_an_ensemble_is_served_as_one_model_voting_on_its_mean_probabilities(
    store, tmp_path: Path
) -> None:
    from digits_nn.core.forward import probabilities
    from digits_nn.core.network import Ensemble, Network

    scaled = steps.standardise(steps.load_digits(), how="global")
    nets = [initialise([64, 12, 10], "he", seed=s, dtype="float32") for s in range(3)]
    ensemble = Ensemble([Network(n.weights, n.biases, "relu", "softmax") for n in nets])
    X = scaled.X[:400]
    expected = probabilities(ensemble, X).argmax(axis=1)
    # Each member alone would label some of these rows otherwise: the vote matters.
    assert any(not np.array_equal(predict(n, X), expected) for n in ensemble.members)

    model = logged_and_loaded(store, tmp_path, ensemble, scaled)
    frame = pd.DataFrame(load_digits().data[:400], columns=list(PIXEL_COLUMNS))
    np.testing.assert_array_equal(np.asarray(model.predict(frame)), expected)
