"""The DVC plots template (vendor/vega/dvc-plots.html) is self-contained and current.

tests/e2e/test_browser.py proves in Chromium that the page renders offline; these fast checks
guard what makes that true: the committed page is exactly what `make vega-page` writes
from template.html and the vendored scripts, it loads nothing from elsewhere, and DVC
uses it.
"""

from __future__ import annotations

import configparser
import re
import runpy
from pathlib import Path

import pytest

from helpers import ROOT

VEGA = ROOT / "vendor" / "vega"


@pytest.fixture
def inline() -> dict:
    return runpy.run_path(str(VEGA / "inline.py"))


def test_committed_page_is_the_template_with_the_vendored_scripts_inlined(inline) -> None:
    page = (VEGA / "dvc-plots.html").read_text(encoding="utf-8")
    assert page == inline["build"](), "vendor/vega/dvc-plots.html is stale: run make vega-page"
    for script in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        assert (VEGA / script).read_text(encoding="utf-8").strip() in page


def test_page_loads_nothing_from_anywhere_else() -> None:
    page = (VEGA / "dvc-plots.html").read_text(encoding="utf-8")
    # The page's own markup, the inlined code left out (vega's code holds HTML strings).
    markup = re.sub(r"<script>.*?</script>", "<script></script>", page, flags=re.DOTALL)
    assert markup.count("<script") == 3
    assert re.findall(r"<[a-z]+\b[^>]*\b(?:src|href)=", markup) == []
    # DVC adds its CDN script tags only where a template has a scripts placeholder.
    assert "{scripts}" not in page
    assert page.count("{plot_divs}") == 1


def test_dvc_uses_the_self_contained_page() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".dvc" / "config")
    template = (ROOT / ".dvc" / parser["plots"]["html_template"]).resolve()
    assert template == VEGA / "dvc-plots.html"


def test_a_script_that_would_break_the_page_is_refused(inline, tmp_path: Path) -> None:
    bad = tmp_path / "bad.js"
    bad.write_text('document.write("</script>")')
    match = re.match(inline["SCRIPT_TAG"], '<script src="bad.js"></script>')
    inline["inline_script"].__globals__["HERE"] = tmp_path
    with pytest.raises(ValueError, match=r"bad\.js contains '</script'"):
        inline["inline_script"](match)
