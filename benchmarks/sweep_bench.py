"""Section s: the reference grid (`sweep=grid`, 64 jobs) with shared budgets on and off.

Both on joblib with 2 workers, tracking on, in the same run and the same temporary copy.
The floor is the two-core compute of the trainings that cannot be avoided: one training
to 10000 iterations per (alpha, hidden size) pair, timed here in this process on one
BLAS thread, halved for two cores. The profile splits the shared sweep's wall time into
that training and the rest (process start-up, data, evaluation, pictures, logging).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from pipeline_bench import Clone, python
from timing import table

ALPHAS = (0.05, 0.25, 1.0, 2.5)
HIDDEN = (10, 30, 60, 100)
LARGEST = 10000


def _grid(clone: Clone, share: bool, out: Path) -> tuple[float, list[dict]]:
    shutil.rmtree(out, ignore_errors=True)
    command = [python(), "pipelines/run.py", "sweep=grid", "hydra.launcher.n_jobs=2"]
    command += [f"hydra.sweeper.share_budgets={str(share).lower()}", f"hydra.sweep.dir={out}"]
    start = time.perf_counter()
    clone.run(command)
    wall = time.perf_counter() - start
    records = [json.loads(p.read_text()) for p in out.glob("*/record.json")]
    if len(records) != 64 or any(r["status"] != "FINISHED" for r in records):
        raise RuntimeError(f"sweep=grid (share={share}) did not finish its 64 jobs")
    return wall, records


def _floor(iterations: int) -> float:
    """Seconds of one-thread compute for one training per (alpha, hidden size) pair."""
    from digits_nn import config, pipeline

    total = 0.0
    for alpha in ALPHAS:
        for hidden in HIDDEN:
            cfg = config.parse(
                {
                    "train": {"alpha": alpha, "iterations": iterations},
                    "model": {"hidden_size": hidden},
                }
            )
            _, split, onehot = pipeline.prepare_data(cfg)
            start = time.perf_counter()
            pipeline.fit(cfg, split, onehot, False)
            total += time.perf_counter() - start
    return total


def section_grid(clone: Clone) -> tuple[str, dict]:
    out = clone.path / "bench-grid"
    walls, records = {}, {}
    for share in (True, False):
        walls[share], records[share] = _grid(clone, share, out)
    accuracies = {
        share: {r["key"]: r["test_accuracy"] for r in rows} for share, rows in records.items()
    }
    same = accuracies[True] == accuracies[False]
    training = _floor(LARGEST)
    floor = training / 2
    speedup = walls[False] / walls[True]
    rows = [
        ["shared budgets (default)", f"{walls[True]:.1f}", f"{walls[True] / floor:.2f}"],
        ["share_budgets=false", f"{walls[False]:.1f}", f"{walls[False] / floor:.2f}"],
        ["floor: 16 trainings to 10000 iterations / 2 cores", f"{floor:.1f}", "1.00"],
    ]
    rest = 2 * walls[True] - training
    text = [
        "### s. The reference grid, `sweep=grid` (64 jobs), joblib with 2 workers\n",
        table(["", "wall s", "/ floor"], rows),
        "",
        f"**Shared budgets are {speedup:.2f}× faster than unshared** (target >= 1.6, aim 2)."
        f" Same 64 test accuracies either way: {same}.\n",
        f"Where the shared sweep's {2 * walls[True]:.0f} core-seconds go: training"
        f" {training:.0f} s ({training / (2 * walls[True]) * 100:.0f} %); everything else"
        f" (start-up, data, evaluation, pictures, logging) {rest:.0f} s, i.e."
        f" {rest / 64:.2f} s per child run.\n",
    ]
    return "\n".join(text), {"share speedup": speedup, "same accuracies": same}
