"""No function takes more than five parameters: a longer list is a concept
waiting for a name (a run context, the prepared data, the core's options). Only the
maths kernels of the core may take more, named here one by one."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

LIMIT = 5
FOLDERS = ("src", "pipelines", "benchmarks")
# "src/digits_nn/core/<module>.py:<function>" that may take more than LIMIT: the
# maths needs its arrays. None does.
MATHS_KERNELS: frozenset[str] = frozenset()


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    """Its named parameters, positional and keyword-only; ``self`` and ``cls`` not
    counted (nor ``*args`` and ``**kwargs``, which pass a list on rather than make one)."""
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def long_signatures(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            names = parameters(node)
            name = getattr(node, "name", "<lambda>")
            if len(names) > LIMIT and f"{where}:{name}" not in MATHS_KERNELS:
                found.append(f"{where}:{node.lineno} {name}({', '.join(names)})")
    return found


def test_no_function_takes_more_than_five_parameters() -> None:
    files = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))
    assert len(files) > 50
    found = [line for path in files for line in long_signatures(path)]
    assert found == [], "more than five parameters:\n" + "\n".join(found)


def test_only_the_cores_maths_kernels_are_exempt() -> None:
    assert all(name.startswith("src/digits_nn/core/") for name in MATHS_KERNELS)


def test_the_count_leaves_out_self_and_counts_keyword_only_parameters(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "class A:\n"
        "    def method(self, a, b, c, d, e): ...\n"
        "def six(a, b, c, d, e, *, f): ...\n"
        "def spread(a, *args, **kwargs): ...\n"
    )
    tree = ast.parse(source.read_text())
    counts = {
        node.name: len(parameters(node))
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }
    assert counts == {"method": 5, "six": 6, "spread": 1}
