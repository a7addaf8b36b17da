"""The trained network as an MLflow model: saving and logging it, with only the code
serving needs."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from digits_nn.data.digits import N_PIXELS
from digits_nn.data.files import write_npz
from digits_nn.tracking.runs import RunLog

# What the served model imports (digits_nn.serving and what it loads): its declared
# requirements, pinned to the versions installed here.
SERVING_REQUIREMENTS = ("mlflow", "numpy", "pandas")
# The package's files the served model runs, and nothing else: no training, tracking,
# sweep or stack code travels with a model (a test derives this list from the imports).
SERVED_CODE = (
    "__init__.py",
    "errors.py",
    "serving.py",
    "core/__init__.py",
    "core/activations.py",
    "core/forward.py",
    "core/network.py",
    "data/__init__.py",
    "data/digits.py",
    "data/files.py",
    "data/model_file.py",
)


def log_model(run: RunLog, model_file: Path, mean: np.ndarray, scale: np.ndarray) -> None:
    """Log the network as the run's ``model``: an MLflow pyfunc model from code."""
    if not run.enabled:
        return
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_model(Path(tmp) / "model", model_file, mean, scale)
        run.store.client.log_artifacts(run.run_id, str(saved), "model")  # type: ignore[union-attr]


def save_model(target: Path, model_file: Path, mean: np.ndarray, scale: np.ndarray) -> Path:
    """Write the MLflow model of ``model_file`` into the new folder ``target``.

    The code is :mod:`digits_nn.serving` with the modules it imports (``SERVED_CODE``);
    the weights and the fitted scaling travel as npz artifacts, so loading the model
    unpickles nothing. The requirements are declared, not inferred: inference would
    import and run the model, and serving needs only mlflow, numpy and pandas.
    """
    from importlib import metadata

    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    # The 64 pixels, unnamed: MLflow then passes the model an array or an unnamed frame
    # by position, and a frame named pixel_0..pixel_63 with its names, which
    # serving.pixels_of puts in order. Their type is Any: a pixel is an integer or a
    # float, which MLflow cannot declare (a double column refuses int64 before the model
    # sees it), and serving.pixels_of refuses what is not a real number from 0 to 16.
    pixels = Schema([ColSpec(AnyType()) for _ in range(N_PIXELS)])
    signature = ModelSignature(inputs=pixels, outputs=Schema([ColSpec("long", "digit")]))
    requirements = [f"{name}=={metadata.version(name)}" for name in SERVING_REQUIREMENTS]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow suggests an input example, whose check would load and run the model.
        warnings.simplefilter("ignore", UserWarning)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        scaling = Path(tmp) / "scaling.npz"
        write_npz(scaling, mean=mean, scale=scale)
        code = served_package(Path(tmp) / "code")
        mlflow.pyfunc.save_model(
            path=target,
            python_model=str(code / "serving.py"),
            artifacts={"weights": str(model_file), "scaling": str(scaling)},
            code_paths=[str(code)],
            signature=signature,
            pip_requirements=requirements,
        )
    return target


def served_package(folder: Path) -> Path:
    """A copy of the package under ``folder`` holding only ``SERVED_CODE``."""
    source = Path(__file__).resolve().parents[1]
    package = folder / source.name
    for name in SERVED_CODE:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, package / name)
    return package
