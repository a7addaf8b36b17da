"""docs/architecture.md shows the package tree as it is.

Each fenced block of docs/architecture.md whose first line is a folder under ``src/``
(``src/digits_nn/``) is a tree of that folder. A line of the tree whose first word ends
in ``.py`` or ``/`` is an entry; its indentation places it under the folder above it.
Every other line (a comment carried over) is read as text. Every .py file is listed,
``__init__.py`` included, so a folder without one (a namespace package) shows as such.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "architecture.md"
PACKAGE = "src/digits_nn/"
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ENTRY = re.compile(r"[A-Za-z_][\w.-]*(?:\.py|/)")


def fenced_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced code block, fences left out."""
    blocks: list[list[str]] = []
    fence = ""
    for line in text.splitlines():
        opening = FENCE.match(line)
        if not fence:
            if opening:
                fence = opening.group(1)
                blocks.append([])
        elif opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
            fence = ""
        else:
            blocks[-1].append(line)
    return blocks


def trees(text: str) -> dict[str, list[str]]:
    """Each tree block by the folder it shows (``src/digits_nn/``), without that line."""
    found: dict[str, list[str]] = {}
    for block in fenced_blocks(text):
        lines = [line for line in block if line.strip()]
        if lines:
            first = lines[0].split()[0]
            if re.fullmatch(r"src/[\w/]+/", first) and not lines[0].startswith(" "):
                found[first] = lines[1:]
    return found


def listed_files(lines: list[str]) -> tuple[set[str], list[str]]:
    """The .py files a tree lists, relative to its folder, and what is wrong in it."""
    files: set[str] = set()
    problems: list[str] = []
    parents: list[tuple[int, str]] = [(-1, "")]
    for line in lines:
        name = line.split()[0]
        if not ENTRY.fullmatch(name):
            continue  # a comment's continuation
        indent = len(line) - len(line.lstrip(" "))
        while parents[-1][0] >= indent:
            parents.pop()
        parent = parents[-1][1]
        if parent.endswith(".py"):
            problems.append(f"{name} is indented under the file {parent}")
            continue
        path = parent + name
        if path in files:
            problems.append(f"{path} is listed twice")
        elif name.endswith(".py"):
            files.add(path)
        parents.append((indent, path))
    return files, problems


def files_on_disk(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def differences(folder: str, lines: list[str], present: set[str]) -> list[str]:
    """What to add to or remove from the tree of ``folder`` so that it lists ``present``."""
    listed, problems = listed_files(lines)
    return (
        problems
        + [
            f"add {folder}{path} (it exists, the tree does not list it)"
            for path in sorted(present - listed)
        ]
        + [
            f"remove {folder}{path} (the tree lists it, it does not exist)"
            for path in sorted(listed - present)
        ]
    )


def test_architecture_doc_shows_the_package_tree() -> None:
    assert DOC.is_file(), "docs/architecture.md is missing: it must show the tree of src/digits_nn"
    found = trees(DOC.read_text(encoding="utf-8"))
    assert PACKAGE in found, (
        f"docs/architecture.md has no tree of {PACKAGE}: a fenced block whose first line is "
        f"{PACKAGE}, then one indented line per file or folder"
    )


def test_every_tree_in_the_architecture_doc_lists_exactly_the_files_that_exist() -> None:
    assert DOC.is_file(), "docs/architecture.md is missing"
    wrong = []
    for folder, lines in trees(DOC.read_text(encoding="utf-8")).items():
        wrong += differences(folder, lines, files_on_disk(ROOT / folder))
    assert not wrong, "docs/architecture.md's tree is out of date:\n  " + "\n  ".join(wrong)


def test_the_tree_reader_names_what_to_add_and_what_to_remove() -> None:
    # The check itself: a tree with a file too many and one missing must say so.
    lines = [
        "  __init__.py     the package",
        "  cli.py          entry points",
        "  core/           numpy only",
        "    __init__.py",
        "    network.py    the network,",
        "                  continued on a line of its own",
        "    gone.py       a module that was removed",
        "  serving.py      the served model",
    ]
    listed, problems = listed_files(lines)
    assert not problems
    assert listed == {
        "__init__.py",
        "cli.py",
        "core/__init__.py",
        "core/network.py",
        "core/gone.py",
        "serving.py",
    }
    present = {"__init__.py", "cli.py", "core/__init__.py", "core/network.py", "errors.py"}
    assert differences("src/pkg/", lines, present) == [
        "add src/pkg/errors.py (it exists, the tree does not list it)",
        "remove src/pkg/core/gone.py (the tree lists it, it does not exist)",
        "remove src/pkg/serving.py (the tree lists it, it does not exist)",
    ]


def test_a_file_indented_under_a_file_or_listed_twice_is_named() -> None:
    lines = ["  a.py", "    b.py", "  c.py", "  c.py"]
    assert listed_files(lines)[1] == [
        "b.py is indented under the file a.py",
        "c.py is listed twice",
    ]
