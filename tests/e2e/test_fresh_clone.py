"""The committed results belong to the committed code: a `git clone` of HEAD followed by
`dvc repro` changes no tracked file, dvc.lock included. A stale lock (code or params
changed, lock not regenerated) fails here, and so fails the README's test command and CI.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import ROOT, dvc, run


def test_a_fresh_clone_reproduces_to_the_committed_lock(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    # The clone's own code, not this checkout's (which the editable install points at).
    dvc("repro", cwd=clone, PYTHONPATH=str(clone / "src"))
    changed = run(["git", "status", "--porcelain"], cwd=clone).stdout
    diff = run(["git", "diff", "--", "dvc.lock"], cwd=clone).stdout
    assert changed == "", (
        "`dvc repro` on a fresh clone of HEAD changed tracked files: the committed dvc.lock"
        " does not match the committed code and params. Run `dvc repro` and commit"
        f" dvc.lock.\n{changed}\n{diff[:4000]}"
    )
