"""The trained network as an MLflow pyfunc model, logged with MLflow's *models from code*.

MLflow logs this file as the model's code, not a pickle. Loading it runs this file,
which reads the weights and the fitted scaling from two npz artifacts with
``allow_pickle=False``. Raw pixels (0..16, integers or floats) go in and digit labels
come out:

    model = mlflow.pyfunc.load_model("runs:/<run_id>/model")
    model.predict(frame_with_columns_pixel_0_to_pixel_63)

It needs only what the model declares (mlflow, numpy, pandas): it imports the one
forward pass of :mod:`digits_nn.core` and the model file's reader, never the training
code, the config schema, the tracking or sweep code, scipy or tqdm. The logged model
ships exactly those modules (:data:`digits_nn.tracking.models.SERVED_CODE`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from digits_nn.core.forward import predict
from digits_nn.data.digits import PIXEL_COLUMNS
from digits_nn.data.files import read_npz
from digits_nn.data.model_file import read_model


def pixels_of(frame: pd.DataFrame) -> np.ndarray:
    """The 64 pixel columns as float64, integers and floats alike; anything else is
    refused as the caller's error (a 400 from the scoring server).

    The logged signature declares the columns' names and no type: MLflow would refuse
    an int64 column for a double one, and integer pixels are what a user has."""
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    columns = [str(c) for c in frame.columns]
    if columns != list(PIXEL_COLUMNS):
        missing = [c for c in PIXEL_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in PIXEL_COLUMNS]
        raise MlflowException(
            f"expected exactly the {len(PIXEL_COLUMNS)} columns pixel_0..pixel_63 in order;"
            f" got {len(columns)} (missing {missing[:5] or 'none'},"
            f" unexpected {extra[:5] or 'none'}).",
            error_code=INVALID_PARAMETER_VALUE,
        )
    numeric = [
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes
    ]
    if not all(numeric):
        bad = [c for c, ok in zip(columns, numeric) if not ok]
        raise MlflowException(
            f"columns {bad[:5]} are not numbers; pixels must be integers or floats (0..16).",
            error_code=INVALID_PARAMETER_VALUE,
        )
    pixels = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(pixels).all():
        raise MlflowException(
            "pixels must be finite numbers (0..16); got NaN or infinity.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    return pixels


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
