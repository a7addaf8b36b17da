"""The slow marker and the e2e folder agree: every test in tests/e2e/ is slow (its
conftest marks them) and no other test is, so `-m 'not slow'` is exactly tests/unit/."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from helpers import ROOT

TESTS = ROOT / "tests"
E2E = TESTS / "e2e"


def marks_slow(node: ast.AST) -> bool:
    """``pytest.mark.slow``, however it is spelled (``mark.slow``, in a list, called)."""
    return any(
        isinstance(sub, ast.Attribute) and sub.attr == "slow" and "mark" in ast.unparse(sub)
        for sub in ast.walk(node)
    )


def test_no_test_outside_e2e_is_marked_slow() -> None:
    outside = [p for p in TESTS.rglob("*.py") if not p.is_relative_to(E2E)]
    assert len(outside) > 30
    marked = []
    for path in outside:
        for node in ast.walk(ast.parse(path.read_text())):
            decorators = getattr(node, "decorator_list", [])
            is_pytestmark = isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
            )
            if any(marks_slow(d) for d in decorators) or (is_pytestmark and marks_slow(node)):
                marked.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert marked == [], f"slow tests belong in tests/e2e/: {marked}"


def test_the_e2e_conftest_marks_every_test_in_its_folder_and_no_other() -> None:
    spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    class Item:
        def __init__(self, path: Path) -> None:
            self.path, self.markers = path, []

        def add_marker(self, marker) -> None:
            self.markers.append(marker.name)

    inside, outside = Item(E2E / "test_any.py"), Item(TESTS / "unit" / "test_any.py")
    conftest.pytest_collection_modifyitems([inside, outside])
    assert (inside.markers, outside.markers) == (["slow"], [])


def test_the_collected_tests_are_slow_exactly_in_e2e(request: pytest.FixtureRequest) -> None:
    """What pytest itself collected in this session: a test in tests/e2e/ left unmarked
    would be selected by `-m 'not slow'`, and fail here."""
    wrong = [
        item.nodeid
        for item in request.session.items
        if item.path.is_relative_to(E2E) != (item.get_closest_marker("slow") is not None)
    ]
    assert wrong == []


def test_the_longest_first_order_names_test_files_that_exist() -> None:
    """tests/conftest.py hands the longest modules out first, by file name: a name left
    behind by a move would quietly order nothing."""
    tree = ast.parse((TESTS / "conftest.py").read_text())
    [order] = [
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "LONGEST_FIRST"
    ]
    existing = {p.name for p in TESTS.rglob("test_*.py")}
    assert [name for name in order if name not in existing] == []
