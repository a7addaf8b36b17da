"""DVC's own view of the stage deps, in a reproduced clone: a change to any module makes
exactly the stages that import it stale (tests/unit/project/test_stage_deps.py derives
who imports what), and a change to the network reruns only train and evaluate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import code_closure, dvc, relative, run, stage_script, stages

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


def test_appending_a_comment_to_any_imported_module_makes_its_stages_stale(
    reproduced: Path,
) -> None:
    closures = {
        name: relative(code_closure(stage_script(stage))) for name, stage in stages().items()
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
    assert {"src/digits_nn/core/trainer.py", "src/digits_nn/pipeline/steps.py"} <= set(modules)
    assert wrong == {}, wrong
    assert json.loads(dvc("status", "--json", cwd=reproduced).stdout) == {}


def test_changing_the_network_reruns_only_train_and_evaluate(reproduced: Path) -> None:
    """The data stages do not depend on the network: changing it reruns only train and evaluate."""
    network = reproduced / "src/digits_nn/core/network.py"
    network.write_text(network.read_text() + "\n# a comment: the network changed\n")
    stale = json.loads(dvc("status", "--json", cwd=reproduced).stdout)
    assert sorted(stale) == ["evaluate", "train"]
