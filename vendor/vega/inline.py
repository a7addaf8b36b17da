"""Write dvc-plots.html: template.html with every vendored script inlined.

`make vega-page` runs it; tests/unit/project/test_plots_page.py checks that the committed
page is what it writes. A page whose scripts are inlined needs no file beside it and no
network, so `dvc plots show -o ANY/DIR` renders offline.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE, PAGE = HERE / "template.html", HERE / "dvc-plots.html"
SCRIPT_TAG = re.compile(r'<script src="(?P<name>[\w.-]+\.js)"></script>')
# Text that would end or disturb a <script> element, or that DVC would fill in.
UNSAFE = re.compile(r"</script|<!--|\{(plot_divs|scripts|refresh_tag)\}", re.IGNORECASE)


def inline_script(match: re.Match[str]) -> str:
    name = match["name"]
    code = (HERE / name).read_text(encoding="utf-8")
    if found := UNSAFE.search(code):
        raise ValueError(f"{name} contains {found[0]!r}, which cannot be inlined in a page")
    return f"<script>/* {name}, vendored unmodified */\n{code.strip()}\n</script>"


def build() -> str:
    """The self-contained page, from template.html and the scripts it names."""
    return SCRIPT_TAG.sub(inline_script, TEMPLATE.read_text(encoding="utf-8"))


if __name__ == "__main__":
    PAGE.write_text(build(), encoding="utf-8")
    print(f"wrote {PAGE} ({PAGE.stat().st_size} bytes)", file=sys.stderr)
