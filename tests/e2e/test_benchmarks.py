"""The benchmark suite runs end to end at tiny sizes and writes every table (no timings
are asserted: they depend on the machine)."""

import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT


def test_benchmark_suite_writes_every_section_and_the_scaling_plot(tmp_path):
    out = tmp_path / "docs" / "benchmarks.md"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    text = out.read_text()
    for heading in ("## The targets of issue 5", "### a.", "### b.", "### c.", "### d.",
                    "### e.", "### f.", "### g.", "### v.", "### p."):  # fmt: skip
        assert heading in text
    for row in ("| float64 | sklearn |", "| float64 | per-sample |", "| train |",
                "dvc repro --force / run.py", "| joblib, 2 workers |",
                "| best | `experiment=best`", "| SVC, pixels / 16 |"):  # fmt: skip
        assert row in text
    assert (out.parent / "img" / "bench-scaling.png").stat().st_size > 0
