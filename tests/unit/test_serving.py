"""The served model: raw pixels in, the pipeline's labels out, whichever way a user holds
the digits (a numpy array, an unnamed frame, a named frame), and a caller's error in one
clear message for anything that is not 64 real pixel values from 0 to 16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from digits_nn.core.forward import predict
from digits_nn.core.network import initialise
from digits_nn.data import steps
from digits_nn.data.digits import N_PIXELS, PIXEL_COLUMNS
from digits_nn.data.model_file import write_model
from digits_nn.tracking.models import log_model, model_of
from digits_nn.tracking.runs import run
from helpers import saved_model


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The saved model, loaded as MLflow loads it."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(saved_model(tmp_path_factory.mktemp("served"))))


def refusal(model, data) -> str:
    """The message of the caller's error (HTTP 400) the model answers ``data`` with."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as refused:
        model.predict(data)
    assert refused.value.get_http_status_code() == 400
    return refused.value.message


# The digits as users hold them (numpy arrays, unnamed frames) are taken, not refused.
def test_the_model_takes_the_digits_as_a_numpy_array_or_a_frame_of_either_kind(served) -> None:
    digits = load_digits().data[:40]
    named = pd.DataFrame(digits, columns=list(PIXEL_COLUMNS))
    expected = served.predict(named)
    assert set(expected) <= set(range(10)) and len(expected) == 40
    reordered = named[list(reversed(PIXEL_COLUMNS))]  # a named frame goes by name
    holdings = {
        "float array": digits,
        "int array": digits.astype(np.int64),
        "uint8 array": digits.astype(np.uint8),
        "float32 array": digits.astype(np.float32),
        "unnamed frame": pd.DataFrame(digits),
        "unnamed int frame": pd.DataFrame(digits.astype(int)),
        "named frame, another order": reordered,
        "named int frame": named.astype(int),
        "scikit-learn's frame": load_digits(as_frame=True).data[:40],
        "scikit-learn's frame with its target last": load_digits(as_frame=True).frame[:40],
    }
    for name, data in holdings.items():
        assert served.predict(data) == expected, name


def test_the_signature_shows_the_64_inputs_and_the_digit_out(served) -> None:
    inputs = served.metadata.get_input_schema()
    assert inputs is not None and len(inputs.inputs) == N_PIXELS
    assert served.metadata.get_output_schema().input_names() == ["digit"]


# Whatever is not 64 real pixels from 0 to 16 is the caller's error, with a message
# saying what was wrong and what is allowed.
@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("63 columns", np.zeros((2, 63)), "64"),
        ("one image as a flat row", np.zeros(64), "64"),
        (
            "renamed columns",
            pd.DataFrame(np.zeros((2, 64)), columns=[f"p{i}" for i in range(64)]),
            "pixel_0",
        ),
        (
            "pixel names with a stranger",
            pd.DataFrame(np.zeros((2, 64)), columns=["x", *PIXEL_COLUMNS[1:]]),
            "pixel_0",
        ),
        ("text", pd.DataFrame(np.zeros((2, 64))).astype(str), "numbers"),
        ("booleans", np.zeros((2, 64), dtype=bool), "numbers"),
        ("complex", np.zeros((2, 64)) + 1j, "real"),
        ("NaN", np.where(np.eye(2, 64) > 0, np.nan, 1.0), "NaN"),
        ("infinity", np.where(np.eye(2, 64) > 0, np.inf, 1.0), "NaN or infinity"),
        ("0..255 pixels, as MNIST users send", load_digits().data[:5] * 16, "0 to 16"),
        ("negative", np.full((2, 64), -5.0), "0 to 16"),
        ("huge", np.full((2, 64), 1e308), "0 to 16"),
    ],
)
def test_anything_but_64_real_pixels_from_0_to_16_is_refused_in_one_line(
    served, name: str, data, said: str
) -> None:
    message = refusal(served, data)
    assert said in message, (name, message)


def test_an_out_of_range_pixel_is_named_with_its_row_and_column(served) -> None:
    digits = load_digits().data[:3].copy()
    digits[2, 5] = 255.0
    message = refusal(served, pd.DataFrame(digits, columns=list(PIXEL_COLUMNS)))
    assert "255" in message and "row 2" in message and "pixel_5" in message
    assert "\n" not in message


def logged_and_loaded(store, folder: Path, model, scaled: steps.Scaled):
    """``model`` logged by the pipeline's own log_model, then loaded as MLflow serves it."""
    import mlflow.artifacts
    import mlflow.pyfunc

    model_file = folder / "model.npz"
    write_model(model_file, model)
    with run(store, name="served") as logged:
        log_model(logged, model_file, scaled.mean, scaled.scale)
    # The run's logged model: its files are the logged model's, not the run's.
    model = store.client.get_logged_model(model_of(logged))
    local = mlflow.artifacts.download_artifacts(model.artifact_location, dst_path=str(folder))
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
    np.testing.assert_array_equal(np.asarray(model.predict(raw)), expected)


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
        "expected 64 pixel columns, one row per image: unnamed (taken in order) or named"
        " pixel_0..pixel_63 (taken by name); got 2 column(s), unexpected ['a', 'b'].": (
            pd.DataFrame({"a": [1], "b": [2]})
        ),
        "pixels must be real numbers (integers or floats from 0 to 16); got ['bool',"
        " 'str'].": frame.head(1).astype({"pixel_0": str, "pixel_2": bool}),
        "pixels must be finite numbers from 0 to 16; got NaN or infinity.": frame.head(1).replace(
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


def two_out_of_range() -> np.ndarray:
    """Three digits, the last with 255 in pixel_5 and -1 in pixel_9."""
    digits = load_digits().data[:3].copy()
    digits[2, 5], digits[2, 9] = 255.0, -1.0
    return digits


# pixels_of is what the scoring server calls: these call it directly, as its callers do.
def test_arrays_and_unnamed_frames_are_taken_by_position_as_float64_pixels() -> None:
    from digits_nn.serving import pixels_of

    digits = load_digits().data[:20].astype(np.int64)
    for name, data in {"int array": digits, "unnamed int frame": pd.DataFrame(digits)}.items():
        pixels = pixels_of(data)
        assert pixels.dtype == np.float64, name
        np.testing.assert_array_equal(pixels, digits, err_msg=name)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            np.zeros(64),
            "expected 64 pixel columns, one row per image; got shape (64,).",
            id="one image as a flat row",
        ),
        pytest.param(
            pd.DataFrame(np.zeros((2, 63)), columns=list(PIXEL_COLUMNS[:63])),
            "expected 64 pixel columns, one row per image: unnamed (taken in order) or named"
            " pixel_0..pixel_63 (taken by name); got 63 column(s).",
            id="63 pixel columns, none unexpected",
        ),
        pytest.param(
            pd.DataFrame(np.zeros((2, 7)), columns=list("abcdefg")),
            "expected 64 pixel columns, one row per image: unnamed (taken in order) or named"
            " pixel_0..pixel_63 (taken by name); got 7 column(s), unexpected ['a', 'b', 'c',"
            " 'd', 'e'].",
            id="the first five strangers",
        ),
        pytest.param(
            np.zeros((2, 64)) + 1j,
            "pixels must be real numbers (integers or floats from 0 to 16); got ['complex128'].",
            id="complex",
        ),
        pytest.param(
            two_out_of_range(),
            "pixels must be from 0 to 16 (the 8x8 digits count 0..16 per pixel); got 255 at"
            " row 2, pixel_5 (2 value(s) out of range).",
            id="the first of several out of range",
        ),
    ],
)
def test_each_refusal_says_what_was_wrong_and_what_is_allowed(data, message: str) -> None:
    from mlflow.exceptions import MlflowException

    from digits_nn.serving import pixels_of

    with pytest.raises(MlflowException) as refused:
        pixels_of(data)
    assert refused.value.message == message
    assert refused.value.get_http_status_code() == 400


def test_weights_for_another_input_width_are_refused_when_the_model_loads(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from digits_nn.data.files import write_npz
    from digits_nn.errors import ArtifactError
    from digits_nn.serving import DigitsClassifier

    weights, scaling = tmp_path / "model.npz", tmp_path / "scaling.npz"
    write_model(weights, initialise([32, 7, 10], "xavier", seed=0))
    write_npz(scaling, mean=np.zeros(64), scale=np.ones(64))
    context = SimpleNamespace(artifacts={"weights": str(weights), "scaling": str(scaling)})
    with pytest.raises(ArtifactError) as refused:
        DigitsClassifier().load_context(context)
    assert str(refused.value) == (
        f"{weights}: the model takes 32 inputs but the data has 64 columns;"
        " retrain it (`dvc repro train`)."
    )
