"""The README and docs/ hold together: every relative link leads somewhere.

Every relative link and image in README.md and docs/*.md (markdown, reference-style or
HTML ``src``/``href``) names a file or folder of the repository, and a ``#anchor`` into
a markdown file names one of its headings. Links in code are not links. External
addresses (``https:``, ``mailto:``) are not fetched.

The README also stays a short entry point: under 12 KB, with the run and test commands
and the expected result on its first screen, and a link to every page of docs/.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
README_LIMIT = 12_000  # bytes
FIRST_SCREEN = 50  # lines

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|//)")


def outside_code_blocks(text: str) -> list[tuple[int, str]]:
    """The numbered lines outside fenced code blocks."""
    lines = []
    fence = ""
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
        elif opening:
            fence = opening.group(1)
        else:
            lines.append((number, line))
    return lines


def targets(text: str) -> list[tuple[int, str]]:
    """Every link target in the prose of a markdown text, with its line number."""
    found = []
    for number, line in outside_code_blocks(text):
        line = CODE_SPAN.sub("``", line)  # a link in code is not a link
        for pattern in (INLINE, REFERENCE, HTML):
            for match in pattern.finditer(line):
                found.append((number, match.group(1).strip("<>")))
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a markdown text: its headings' (numbered when repeated) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_code_blocks(text):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(HTML_ANCHOR.findall(line))
    return found


def resolve(root: Path, page: Path, target: str) -> tuple[Path, str]:
    """The file a link on ``page`` leads to, and its anchor ('' for none)."""
    path, _, anchor = target.partition("#")
    path = unquote(path)
    if not path:
        return page, anchor
    base = root if path.startswith("/") else page.parent
    return (base / path.lstrip("/")).resolve(), anchor


def broken_links(root: Path, pages: list[Path]) -> list[str]:
    """One line per link of ``pages`` that leads nowhere, naming the page, line and link."""
    root = root.resolve()
    broken = []
    for page in pages:
        where = page.relative_to(root).as_posix()
        for number, target in targets(page.read_text(encoding="utf-8")):
            if EXTERNAL.match(target):
                continue
            path, anchor = resolve(root, page.resolve(), target)
            if not path.is_relative_to(root):
                broken.append(f"{where}:{number}: {target} leads outside the repository")
            elif not path.exists():
                broken.append(f"{where}:{number}: {target}: no such file")
            elif (
                anchor
                and path.suffix == ".md"
                and anchor not in anchors(path.read_text(encoding="utf-8"))
            ):
                name = path.relative_to(root).as_posix()
                broken.append(f"{where}:{number}: {target}: {name} has no heading #{anchor}")
    return broken


def linked_pages(root: Path, page: Path) -> set[Path]:
    """The files the relative links of ``page`` lead to."""
    root, page = root.resolve(), page.resolve()
    text = page.read_text(encoding="utf-8")
    return {
        resolve(root, page, target)[0] for _, target in targets(text) if not EXTERNAL.match(target)
    }


def doc_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file_or_heading() -> None:
    broken = broken_links(ROOT, doc_pages())
    assert not broken, "links that lead nowhere:\n  " + "\n  ".join(broken)


def test_the_readme_links_every_page_of_docs() -> None:
    linked = linked_pages(ROOT, README)
    unlinked = [
        page.relative_to(ROOT).as_posix()
        for page in sorted((ROOT / "docs").glob("*.md"))
        if page.resolve() not in linked
    ]
    assert not unlinked, f"README.md links no page {unlinked}: link each from its list of docs"


def test_the_readme_stays_under_12_kb() -> None:
    size = len(README.read_bytes())
    assert size < README_LIMIT, (
        f"README.md is {size} bytes, over {README_LIMIT}: move a section into a page of docs/"
    )


def test_the_readmes_first_screen_has_the_commands_and_the_expected_result() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN])
    for needed in ("pip install -e .", "dvc repro", "make test", "0.8901", "!["):
        assert needed in first_screen, (
            f"{needed!r} is not in the README's first {FIRST_SCREEN} lines"
        )


def test_the_link_checker_reports_exactly_the_links_that_lead_nowhere(
    tmp_path: Path,
) -> None:
    # The check itself, on a small tree: a missing file, a missing heading and a path out of
    # the repository are reported; links in code, external links and good ones are not.
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / "docs" / "img" / "a.png").write_bytes(b"")
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## Run it: `make test`\n\n## Run it: `make test`\n\n"
        "[back](../README.md#the-readme) [top](#guide) ![a](img/a.png)\n"
    )
    (tmp_path / "README.md").write_text(
        "# The README\n\n"
        "[guide](docs/guide.md) [run](docs/guide.md#run-it-make-test-1)\n"
        '![pic](docs/img/a.png) <img src="docs/img/a.png"> [web](https://example.org/x)\n'
        "`[in code](docs/nowhere.md)`\n\n"
        "```\n[in a block](docs/nowhere.md)\n```\n\n"
        "[gone](docs/gone.md) [no heading](docs/guide.md#nowhere) [up](../outside.md)\n"
        "[ref]: docs/guide.md\n"
    )
    pages = [tmp_path / "README.md", tmp_path / "docs" / "guide.md"]
    assert broken_links(tmp_path, pages) == [
        "README.md:11: docs/gone.md: no such file",
        "README.md:11: docs/guide.md#nowhere: docs/guide.md has no heading #nowhere",
        "README.md:11: ../outside.md leads outside the repository",
    ]
