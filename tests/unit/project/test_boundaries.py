"""The packages' boundaries, read from their imports (anywhere in a file, inside
functions too): what each package's docstring says it may import, it does.

- the core imports only numpy, the standard library, itself and digits_nn.errors;
- the data modules (but the model file's) import no model, pipeline, tracking, sweep or
  stack code, so the data stages never rerun for a change to the network;
- digits_nn.errors and digits_nn.credentials import only the standard library;
- only the stack imports the stack, and the stack imports nothing else of the project;
- only the sweeps (and the entry points and plugins above them) import the sweeps;
- tracking imports neither the pipeline nor the sweeps;
- the names both sides of a sweep share (sweeps.protocol) import nothing of the project.

A failure names each module and the import that crosses the line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import ROOT, SOURCE, imported_modules, module_name

PACKAGE_DIR = SOURCE / "digits_nn"
STDLIB = set(sys.stdlib_module_names)


def modules_under(*parts: str) -> list[Path]:
    folder = PACKAGE_DIR.joinpath(*parts)
    found = sorted(folder.rglob("*.py"))
    assert found, f"{folder.relative_to(ROOT)}: no modules (the package is missing)"
    return found


def is_within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def crossings(paths: list[Path], forbidden: Callable[[str], bool]) -> list[str]:
    """``module:line imports name`` for every import of ``paths`` that ``forbidden``
    refuses."""
    return [
        f"{module_name(path) or path.relative_to(ROOT)}:{line} imports {name}"
        for path in paths
        for line, name in imported_modules(path)
        if forbidden(name)
    ]


def is_stdlib(name: str) -> bool:
    return name.split(".")[0] in STDLIB


def test_the_core_imports_only_numpy_the_standard_library_and_the_errors() -> None:
    def forbidden(name: str) -> bool:
        allowed = is_within(name, "numpy", "digits_nn.core", "digits_nn.errors")
        return not (allowed or is_stdlib(name))

    assert crossings(modules_under("core"), forbidden) == []


def test_the_data_modules_import_no_model_code() -> None:
    model_code = ("core", "pipeline", "tracking", "sweeps", "stack")
    paths = [p for p in modules_under("data") if p.name != "model_file.py"]
    forbidden = [f"digits_nn.{package}" for package in model_code]
    assert crossings(paths, lambda name: is_within(name, *forbidden)) == []


def test_the_errors_and_credentials_import_only_the_standard_library() -> None:
    paths = [PACKAGE_DIR / "errors.py", PACKAGE_DIR / "credentials.py"]
    assert crossings(paths, lambda name: not is_stdlib(name)) == []


def test_nothing_but_the_stack_imports_the_stack() -> None:
    """No run imports the local stack's services: the pipeline talks to whatever server
    and cluster the environment names; only people and tests start the stack."""
    stack = set(modules_under("stack"))
    everything = [*(SOURCE.rglob("*.py")), *((ROOT / "pipelines").glob("*.py"))]
    others = [p for p in everything if p not in stack]
    assert crossings(others, lambda name: is_within(name, "digits_nn.stack")) == []


def test_the_stack_imports_nothing_of_the_project_but_itself() -> None:
    def forbidden(name: str) -> bool:
        return is_within(name, "digits_nn", "hydra_plugins") and not is_within(
            name, "digits_nn.stack"
        )

    assert crossings(modules_under("stack"), forbidden) == []


@pytest.mark.parametrize("package", ["core", "data", "tracking", "pipeline"])
def test_the_run_packages_import_no_sweep_code(package: str) -> None:
    found = crossings(modules_under(package), lambda name: is_within(name, "digits_nn.sweeps"))
    assert found == []


def test_tracking_imports_neither_the_pipeline_nor_the_sweeps() -> None:
    forbidden = ("digits_nn.pipeline", "digits_nn.sweeps")
    found = crossings(modules_under("tracking"), lambda name: is_within(name, *forbidden))
    assert found == []


def test_the_names_both_sides_of_a_sweep_share_import_nothing_of_the_project() -> None:
    """The launching side imports them for a few strings: they bring no job code along."""
    paths = [PACKAGE_DIR / "sweeps" / "protocol.py"]
    found = crossings(paths, lambda name: is_within(name, "digits_nn", "hydra", "omegaconf"))
    assert found == []


def test_a_crossing_is_named_with_its_module_and_import(tmp_path: Path, monkeypatch) -> None:
    """The check itself: an import inside a function counts, and the failure says where."""
    import helpers

    package = tmp_path / "src" / "digits_nn" / "core"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lazy.py").write_text("import numpy\n\n\ndef f():\n    import mlflow\n")
    monkeypatch.setattr(helpers, "SOURCE", tmp_path / "src")
    paths = sorted(package.glob("*.py"))
    found = crossings(paths, lambda name: name == "mlflow")
    assert found == ["digits_nn.core.lazy:5 imports mlflow"]
