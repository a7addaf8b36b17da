"""The trained network as an MLflow pyfunc model, logged with MLflow's *models from code*.

MLflow logs this file as the model's code, not a pickle. Loading it runs this file,
which reads the weights and the fitted scaling from two npz artifacts with
``allow_pickle=False``. Raw pixels (0..16, integers or floats) go in, one row of 64 per
image, and digit labels come out:

    model = mlflow.pyfunc.load_model("runs:/<run_id>/model")
    model.predict(load_digits().data)      # an array, or a frame: unnamed or pixel_0..63

It needs only what the model declares (mlflow, numpy, pandas): it imports the one
forward pass of :mod:`digits_nn.core` and the model file's reader, never the training
code, the config schema, the tracking or sweep code, scipy or tqdm. The logged model
ships exactly those modules (:data:`digits_nn.tracking.models.SERVED_CODE`).
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from digits_nn.core.forward import predict
from digits_nn.data.digits import N_PIXELS, PIXEL_COLUMNS, PIXEL_MAX, SKLEARN_PIXEL_COLUMNS
from digits_nn.data.files import read_npz
from digits_nn.data.model_file import read_model


def pixels_of(model_input) -> np.ndarray:
    """The 64 pixels of each row as float64, from a 2-D array or a frame; anything else
    is refused as the caller's error (a 400 from the scoring server).

    An unnamed input (an array, a frame with columns 0..63) is taken by position, a named
    frame by the names pixel_0..pixel_63. Integers and floats are both pixels; booleans,
    complex numbers, text, NaN and values outside 0..16 are not."""
    frame = model_input
    if not isinstance(frame, pd.DataFrame):
        shape = np.shape(frame)
        if len(shape) != 2:
            refuse(f"expected {N_PIXELS} pixel columns, one row per image; got shape {shape}.")
        frame = pd.DataFrame(frame)
    frame = in_pixel_order(frame).infer_objects()
    bad = sorted({str(t) for t in frame.dtypes if not is_real_number(t)})
    if bad:
        refuse(
            f"pixels must be real numbers (integers or floats from 0 to {PIXEL_MAX}); got {bad}."
        )
    pixels = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(pixels).all():
        refuse(f"pixels must be finite numbers from 0 to {PIXEL_MAX}; got NaN or infinity.")
    outside = np.argwhere((pixels < 0) | (pixels > PIXEL_MAX))
    if len(outside):
        row, column = outside[0]
        refuse(
            f"pixels must be from 0 to {PIXEL_MAX} (the 8x8 digits count 0..{PIXEL_MAX} per"
            f" pixel); got {pixels[row, column]:g} at row {row}, {PIXEL_COLUMNS[column]}"
            f" ({len(outside)} value(s) out of range)."
        )
    return pixels


def is_real_number(dtype) -> bool:
    types = pd.api.types
    return types.is_numeric_dtype(dtype) and not (
        types.is_bool_dtype(dtype) or types.is_complex_dtype(dtype)
    )


def in_pixel_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's 64 pixel columns in order: by name if named pixel_0..pixel_63 (or
    scikit-learn's pixel_0_0..pixel_7_7), by position if unnamed (columns 0..63)."""
    names = [str(c) for c in frame.columns]
    for columns in (PIXEL_COLUMNS, SKLEARN_PIXEL_COLUMNS):
        if sorted(names) == sorted(columns):
            return frame.set_axis(names, axis=1)[list(columns)]
    if names == [str(i) for i in range(N_PIXELS)]:
        return frame
    unexpected = [c for c in names if not (c in PIXEL_COLUMNS or c.isdigit())]
    refuse(
        f"expected {N_PIXELS} pixel columns, one row per image: unnamed (taken in order)"
        f" or named pixel_0..pixel_63 (taken by name); got {len(names)} column(s)"
        f"{f', unexpected {unexpected[:5]}' if unexpected else ''}."
    )


def refuse(message: str) -> NoReturn:
    """The caller's error: MLflow's scoring server answers it with HTTP 400."""
    raise MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class DigitsClassifier(PythonModel):
    def load_context(self, context) -> None:
        self.network = read_model(context.artifacts["weights"], n_inputs=len(PIXEL_COLUMNS))
        scaling = read_npz(context.artifacts["scaling"], {"mean": ("f", 1), "scale": ("f", 1)})
        self.mean, self.scale = scaling["mean"], scaling["scale"]

    # The type hints keep MLflow from asking for them; the columns are checked here.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[int]:
        pixels = pixels_of(model_input)
        return predict(self.network, (pixels - self.mean) / self.scale).tolist()


set_model(DigitsClassifier())
