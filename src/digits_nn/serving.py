"""The trained network as an MLflow pyfunc model, logged with MLflow's *models from code*.

MLflow logs this file as the model's code, not a pickle. Loading it runs this file,
which reads the weights and the fitted scaling from two npz artifacts with
``allow_pickle=False``. Raw pixels (0..16) go in and digit labels come out:

    model = mlflow.pyfunc.load_model("runs:/<run_id>/model")
    model.predict(frame_with_columns_pixel_0_to_pixel_63)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from digits_nn.artifacts import read_model, read_npz
from digits_nn.modern import predict

PIXEL_COLUMNS = [f"pixel_{i}" for i in range(64)]


class DigitsClassifier(PythonModel):
    def load_context(self, context) -> None:
        self.network = read_model(context.artifacts["weights"], n_inputs=len(PIXEL_COLUMNS))
        scaling = read_npz(context.artifacts["scaling"], {"mean": ("f", 1), "scale": ("f", 1)})
        self.mean, self.scale = scaling["mean"], scaling["scale"]

    # The type hints keep MLflow from asking for them; the signature logged with the
    # model (64 named double columns in, one long column out) is what it validates.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[int]:
        pixels = np.asarray(model_input[PIXEL_COLUMNS], dtype=np.float64)
        return predict(self.network, (pixels - self.mean) / self.scale).tolist()


set_model(DigitsClassifier())
