"""Every DVC stage depends on all the project code it runs, so `dvc repro` never keeps a
result that a code change would alter.

A stage's code is its script in pipelines/ and every `digits_nn` module that script
imports, directly or through other modules, at the top of a file or inside a function
(the code imports mlflow-heavy modules lazily). The import closure is derived from the
source, statically, and compared with the stage's `deps` in dvc.yaml: a module that is
missing, or listed but never imported, fails the test with the exact paths to change.
"""

from __future__ import annotations

import ast
import json
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from conftest import dvc, run

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = "digits_nn"


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(module: str) -> Path | None:
    """The file that defines ``module`` (a module or a package), if it is the project's."""
    base = SOURCE.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str | None:
    """``digits_nn.x`` for src/digits_nn/x.py; None for a script outside the package."""
    if not path.is_relative_to(SOURCE):
        return None
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every dotted name that ``path`` imports anywhere in its body, relative imports
    resolved: ``from a import b`` yields both ``a`` and ``a.b`` (b may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path) or ""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = own.split(".")[: len(own.split(".")) - node.level + is_package]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def project_files(module: str) -> list[Path]:
    """The files Python runs to import ``module``: each enclosing package's __init__.py,
    then the module itself. Empty for a module that is not the project's."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return []
    prefixes = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return [file for file in map(module_file, prefixes) if file is not None]


def code_closure(script: Path) -> set[Path]:
    """``script`` and every project file it imports, transitively."""
    seen: set[Path] = set()
    pending = [script]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            pending.extend(project_files(name))
    return seen


def stage_script(stage: dict) -> Path:
    [script] = [word for word in shlex.split(stage["cmd"]) if word.endswith(".py")]
    return ROOT / script


def declared_code(stage: dict) -> set[str]:
    return {dep for dep in stage.get("deps", []) if dep.endswith(".py")}


def test_every_stage_runs_a_script_in_pipelines() -> None:
    for name, stage in stages().items():
        assert stage_script(stage).parent == ROOT / "pipelines", name


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_are_exactly_the_code_the_stage_imports(name: str) -> None:
    stage = stages()[name]
    needed = {p.relative_to(ROOT).as_posix() for p in code_closure(stage_script(stage))}
    declared = declared_code(stage)
    missing, extra = sorted(needed - declared), sorted(declared - needed)
    assert not missing and not extra, (
        f"dvc.yaml, stage {name!r}: its deps must list the code it runs."
        + (f"\n  add to deps:      {', '.join(missing)}" if missing else "")
        + (f"\n  remove from deps: {', '.join(extra)}" if extra else "")
    )


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

    monkeypatch.setitem(globals(), "SOURCE", tmp_path / "src")
    names = {p.relative_to(tmp_path).as_posix() for p in code_closure(script)}
    assert names == {
        "stage.py",
        "src/digits_nn/__init__.py",
        "src/digits_nn/a.py",
        "src/digits_nn/b.py",
        "src/digits_nn/c.py",
    }


# Each module in turn: append a comment, run `dvc status --json` through DVC's own
# command-line entry point, restore the module. One process instead of one per module;
# each status prints its JSON line after a line naming the module touched.
TOUCH_EACH_THEN_STATUS = """
import sys
from pathlib import Path
from dvc.cli import main
for module in sys.argv[1:]:
    path = Path(module)
    original = path.read_bytes()
    path.write_bytes(original + b"\\n# touched\\n")
    print("touched", module, flush=True)
    try:
        code = main(["status", "--json"])
    finally:
        path.write_bytes(original)
    sys.stdout.flush()
    if code != 0:
        raise SystemExit(f"dvc status --json exited {code} with {module} touched")
"""


def stale_after_touching(repo: Path, modules: list[str]) -> dict[str, set[str]]:
    """The stages `dvc status --json` lists with each module touched, alone."""
    lines = run([sys.executable, "-c", TOUCH_EACH_THEN_STATUS, *modules], cwd=repo).stdout
    lines = [line for line in lines.splitlines() if line.strip()]
    found = {}
    for line, following in zip(lines, [*lines[1:], ""]):
        if line.startswith("touched "):
            found[line.removeprefix("touched ")] = set(json.loads(following))
    return found


@pytest.mark.slow
def test_appending_a_comment_to_any_imported_module_makes_its_stages_stale(
    reproduced: Path,
) -> None:
    closures = {
        name: {p.relative_to(ROOT).as_posix() for p in code_closure(stage_script(stage))}
        for name, stage in stages().items()
    }
    modules = sorted(set().union(*closures.values()) - {f"pipelines/{n}.py" for n in closures})
    stale_after = stale_after_touching(reproduced, modules)
    assert sorted(stale_after) == modules
    wrong = {}
    for module in modules:
        stale = stale_after[module]
        importers = {name for name, closure in closures.items() if module in closure}
        if stale != importers:
            wrong[module] = {"stale": sorted(stale), "importers": sorted(importers)}
    assert "src/digits_nn/modern.py" in modules and "src/digits_nn/pipeline.py" in modules
    assert wrong == {}, wrong
    assert json.loads(dvc("status", "--json", cwd=reproduced).stdout) == {}
