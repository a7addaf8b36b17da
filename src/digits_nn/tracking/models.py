"""The trained network as an MLflow model: saving and logging it, with only the code
serving needs."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from digits_nn.data.digits import N_PIXELS
from digits_nn.data.files import write_npz
from digits_nn.tracking.runs import RunLog

if TYPE_CHECKING:
    from mlflow.models import Model

# The logged model's name: ``runs:/<run_id>/model`` resolves to the run's logged model
# of this name. Its type groups the project's networks in searches of logged models.
MODEL_NAME, MODEL_TYPE = "model", "digits-nn-mlp"

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


def log_model(
    run: RunLog,
    model_file: Path,
    mean: np.ndarray,
    scale: np.ndarray,
    params: Mapping[str, Any] | None = None,
) -> str | None:
    """Log the network as the run's MLflow 3 logged model ``model``; returns its id.

    The logged model is created for the run named by its id (MLflow's fluent
    ``log_model`` would use the process's active run and global tracking URI), recorded
    as the run's output, and finalized READY once its files are stored, or FAILED.
    ``runs:/<run_id>/model`` still finds it. ``params`` (the run's configuration) are
    shown beside it in the experiment's Models tab.
    """
    if not run.enabled:
        return None
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    client = run.store.client  # type: ignore[union-attr]
    logged = client.create_logged_model(
        run.store.experiment_id,  # type: ignore[union-attr]
        name=MODEL_NAME,
        source_run_id=run.run_id,
        params={key: str(value) for key, value in (params or {}).items()},
        model_type=MODEL_TYPE,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            described = Model(
                artifact_path=logged.artifact_location,
                run_id=run.run_id,
                model_uuid=logged.model_id,
                model_id=logged.model_id,
            )
            saved = save_model(Path(tmp) / MODEL_NAME, model_file, mean, scale, described)
            client.log_model_artifacts(logged.model_id, str(saved))
        client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step=0)])
    except BaseException:
        with contextlib.suppress(Exception):
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id


def model_of(run: RunLog) -> str | None:
    """The id of the logged model the run produced (its last model output), if any."""
    if not run.enabled:
        return None
    outputs = run.store.client.get_run(run.run_id).outputs  # type: ignore[union-attr]
    models = outputs.model_outputs if outputs is not None else []
    return models[-1].model_id if models else None


def save_model(
    target: Path,
    model_file: Path,
    mean: np.ndarray,
    scale: np.ndarray,
    described: Model | None = None,
) -> Path:
    """Write the MLflow model of ``model_file`` into the new folder ``target``.

    The code is :mod:`digits_nn.serving` with the modules it imports (``SERVED_CODE``);
    the weights and the fitted scaling travel as npz artifacts, so loading the model
    unpickles nothing. The requirements are declared, not inferred: inference would
    import and run the model, and serving needs only mlflow, numpy and pandas.
    ``described`` names the logged model the folder is saved for (its id and run).
    """
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
    requirements = serving_requirements()
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
            mlflow_model=described,
        )
    return target


@functools.cache
def _pinned(name: str) -> str:
    from importlib import metadata

    return f"{name}=={metadata.version(name)}"


def serving_requirements() -> list[str]:
    """``SERVING_REQUIREMENTS`` pinned to the installed versions, read once per process (a
    sweep's worker logs a model per run)."""
    return [_pinned(name) for name in SERVING_REQUIREMENTS]


def served_package(folder: Path) -> Path:
    """A copy of the package under ``folder`` holding only ``SERVED_CODE``."""
    source = Path(__file__).resolve().parents[1]
    package = folder / source.name
    for name in SERVED_CODE:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, package / name)
    return package
