"""The committed results belong to the committed code, on any x86-64 machine:
a `git clone` of HEAD followed by `dvc repro` reproduces the committed outputs bit for
bit on the numeric platform that computed them, and within the stated tolerances on
another, which the train stage announces in one line. A stale lock (code or params
changed, lock not regenerated) fails here, and so fails the README's test command and CI.

Another platform is simulated on one machine by turning numpy's AVX-512 paths off
(NPY_DISABLE_CPU_FEATURES), never by touching OpenBLAS's variables. Each case says in the
CI log which check it made (bits or tolerances): see tests/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from digits_nn.pipeline import numeric_platform as platform_
from helpers import ROOT, check_reproduced, committed, dvc

PLATFORMS = {
    "native": {},
    "numpy without AVX-512": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"},
}
NOTICE = "platform: the committed outputs"


@pytest.mark.parametrize("name", list(PLATFORMS))
def test_a_fresh_clone_reproduces_the_committed_results(
    name: str, tmp_path: Path, record_property
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    steering = PLATFORMS[name]
    # The clone's own code, not this checkout's (which the editable install points at).
    done = dvc("repro", cwd=clone, PYTHONPATH=str(clone / "src"), **steering)
    recorded = json.loads(committed(clone, "reports/platform.json"))
    current = json.loads((clone / "reports/platform.json").read_text())
    same = platform_.same_bits(recorded, current)
    notices = [line for line in (done.stdout + done.stderr).splitlines() if NOTICE in line]
    assert len(notices) == (0 if same else 1), notices
    if steering:
        assert not same, "a platform steered by NPY_DISABLE_CPU_FEATURES was recorded as the same"
        assert current["npy_disable_cpu_features"] == steering["NPY_DISABLE_CPU_FEATURES"]

    verdict = check_reproduced(clone)
    assert verdict.startswith("bits" if same else "tolerances")
    record_property("reproduction", f"{name}: {verdict}")

    # Committed figures to compare with: the fresh clone's `dvc metrics diff` has them.
    diff = json.loads(dvc("metrics", "diff", "--all", "--json", cwd=clone).stdout)
    figures = json.loads(committed(clone, "reports/metrics.json"))
    metrics = diff["reports/metrics.json"]
    assert {key: metrics[key]["old"] for key in figures} == figures
    if not same:
        platform_diff = diff["reports/platform.json"]
        assert any(entry["old"] != entry["new"] for entry in platform_diff.values())
