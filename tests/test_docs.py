"""The docs name real things: every test cited in docs/reliability.md exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_reliability_table_exists() -> None:
    table = (ROOT / "docs/reliability.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)", table)
    cited += [(None, name) for name in re.findall(r"`::(test_\w+)", table)]
    assert len(cited) >= 30
    sources = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    for file, name in cited:
        prefix = name.rstrip("*")
        where = [sources[file]] if file else sources.values()
        assert any(re.search(rf"def {prefix}", text) for text in where), (file, name)
