"""Every DVC stage depends on all the project code it runs, so `dvc repro` never keeps a
result that a code change would alter; and the data stages run no model code, so that
a change to the network never reruns them.

A stage's code is its script in pipelines/ and every `digits_nn` module that script
imports, directly or through other modules, at the top of a file or inside a function
(the code imports mlflow-heavy modules lazily). The import closure is derived from the
source, statically (helpers.code_closure), and compared with the stage's `deps` in
dvc.yaml: a module that is missing, or listed but never imported, fails the test with
the exact paths to change. tests/e2e/test_stale_stages.py checks DVC's own view.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import helpers
from helpers import PACKAGE, ROOT, code_closure, relative, stage_script, stages

DATA_STAGES = ("load", "scale", "split", "onehot")


def declared_code(stage: dict) -> set[str]:
    return {dep for dep in stage.get("deps", []) if dep.endswith(".py")}


def test_every_stage_runs_a_script_in_pipelines() -> None:
    for name, stage in stages().items():
        assert stage_script(stage).parent == ROOT / "pipelines", name


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_are_exactly_the_code_the_stage_imports(name: str) -> None:
    stage = stages()[name]
    needed = relative(code_closure(stage_script(stage)))
    declared = declared_code(stage)
    missing, extra = sorted(needed - declared), sorted(declared - needed)
    assert not missing and not extra, (
        f"dvc.yaml, stage {name!r}: its deps must list the code it runs."
        + (f"\n  add to deps:      {', '.join(missing)}" if missing else "")
        + (f"\n  remove from deps: {', '.join(extra)}" if extra else "")
    )


def data_stage_code(name: str) -> set[str]:
    """What a data stage may run: its script, the entry point's modules (config and the
    credentials it refuses, errors, the package's own __init__) and the data package, all
    but the model file."""
    allowed = {f"pipelines/{name}.py"}
    entry = ("__init__", "cli", "config", "credentials", "errors")
    allowed |= {f"src/digits_nn/{m}.py" for m in entry}
    allowed |= relative(set((ROOT / "src/digits_nn/data").glob("*.py")))
    return allowed - {"src/digits_nn/data/model_file.py"}


@pytest.mark.parametrize("name", DATA_STAGES)
def test_the_data_stages_depend_on_no_model_code(name: str) -> None:
    """No network, training, model file, pipeline step, tracking or sweep code in the
    deps of load, scale, split and onehot: a change there reruns only the
    stages that use it."""
    model_code = sorted(declared_code(stages()[name]) - data_stage_code(name))
    assert not model_code, f"dvc.yaml, stage {name!r} depends on model code: {model_code}"
    assert f"pipelines/{name}.py" in declared_code(stages()[name])


def test_closure_follows_imports_inside_functions_and_relative_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk itself: a lazy import inside a function, a `from package import module`,
    and a relative import are all followed; third-party imports are not."""
    package = tmp_path / "src" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import numpy\n\ndef f():\n    from digits_nn import b\n")
    (package / "b.py").write_text("from .c import thing\n")
    (package / "c.py").write_text("thing = 1\n")
    (package / "unused.py").write_text("")
    script = tmp_path / "stage.py"
    script.write_text("from digits_nn.a import f\n")

    monkeypatch.setattr(helpers, "SOURCE", tmp_path / "src")
    assert relative(code_closure(script), tmp_path) == {
        "stage.py",
        "src/digits_nn/__init__.py",
        "src/digits_nn/a.py",
        "src/digits_nn/b.py",
        "src/digits_nn/c.py",
    }
