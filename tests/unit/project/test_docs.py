"""The docs name real things: every test cited in docs/reliability.md exists."""

import re

from helpers import ROOT


def test_every_test_named_in_the_reliability_table_exists() -> None:
    table = (ROOT / "docs/reliability.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)", table)
    cited += [(None, name) for name in re.findall(r"`::(test_\w+)", table)]
    assert len(cited) >= 30
    # Test files are found by their name anywhere under tests/ (names are unique there).
    sources = {p.name: p.read_text() for p in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for file, name in cited:
        prefix = name.rstrip("*")
        where = [sources.get(file, "")] if file else sources.values()
        if not any(re.search(rf"def {prefix}", text) for text in where):
            missing.append(f"{file or ''}::{name}")
    assert missing == [], f"docs/reliability.md cites tests that do not exist: {missing}"


def test_test_file_names_are_unique_across_folders() -> None:
    """pytest imports test files by their name: two alike would clash, and a citation by
    name would be ambiguous."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(names) == sorted(set(names))
