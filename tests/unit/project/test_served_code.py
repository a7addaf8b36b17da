"""The logged model ships only what serving needs: the code it declares is exactly the
import closure of src/digits_nn/serving.py (no training, tracking, sweep, pipeline or
stack module), and loading it in a fresh interpreter imports nothing else of ours and
no package it does not declare."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from digits_nn.tracking.models import SERVED_CODE
from helpers import SOURCE, code_closure, relative, saved_model

PACKAGE_DIR = SOURCE / "digits_nn"
# The packages that never travel with a model.
SERVER_SIDE = ("sweeps", "tracking", "stack", "pipeline")


def test_the_served_code_is_the_import_closure_of_serving() -> None:
    closure = relative(code_closure(PACKAGE_DIR / "serving.py"), PACKAGE_DIR)
    assert sorted(SERVED_CODE) == sorted(closure), (
        "tracking.models.SERVED_CODE must list what serving.py imports:"
        f"\n  add:    {sorted(closure - set(SERVED_CODE))}"
        f"\n  remove: {sorted(set(SERVED_CODE) - closure)}"
    )


def test_the_served_code_holds_no_training_tracking_sweep_pipeline_or_stack_module() -> None:
    shipped = [name for name in SERVED_CODE if name.split("/")[0] in SERVER_SIDE]
    assert shipped == []
    assert not {"core/kernel.py", "core/trainer.py", "core/training.py"} & set(SERVED_CODE)


def test_the_saved_model_carries_exactly_the_served_code(tmp_path: Path) -> None:
    model_dir = saved_model(tmp_path)
    code = model_dir / "code" / "digits_nn"
    carried = {p.relative_to(code).as_posix() for p in code.rglob("*.py")}
    assert carried == set(SERVED_CODE)
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == ["mlflow", "numpy", "pandas"]


# Prints the modules that loading the model and predicting added to those of MLflow's
# own import (which brings scipy and tqdm, its declared dependencies, itself).
SERVE_AND_LIST_MODULES = textwrap.dedent(
    """
    import sys
    import mlflow.pyfunc
    import pandas as pd
    before = set(sys.modules)
    model = mlflow.pyfunc.load_model(sys.argv[1])
    pixels = pd.DataFrame([[0] * 64, [16] * 64], columns=[f"pixel_{i}" for i in range(64)])
    print(model.predict(pixels))
    print(" ".join(sorted(set(sys.modules) - before)))
    """
)


# The served model's import path: what a serving environment must install.
def test_serving_imports_neither_training_code_nor_undeclared_packages(tmp_path: Path) -> None:
    model_dir = saved_model(tmp_path)
    listed = subprocess.run(
        [sys.executable, "-c", SERVE_AND_LIST_MODULES, str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.splitlines()
    added = set(listed[-1].split())
    ours = {name for name in added if name.startswith("digits_nn")}
    assert "digits_nn.core.forward" in ours  # the model ran our code...
    served = {name.removesuffix(".py").removesuffix("/__init__") for name in SERVED_CODE}
    allowed = {"digits_nn", *(f"digits_nn.{name.replace('/', '.')}" for name in served)}
    assert ours <= allowed  # ...and only it
    third_party = {name.split(".")[0] for name in added} - set(sys.stdlib_module_names)
    assert not third_party & {"omegaconf", "scipy", "tqdm", "sklearn", "hydra", "matplotlib"}
