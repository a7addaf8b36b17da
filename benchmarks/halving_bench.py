"""Section w: successive halving (`sweep=halving`) against the exhaustive sweep of the same
space (`sweep=halving hydra.sweeper.eta=null`, every budget of every configuration,
budgets shared), in one run and one temporary copy, joblib with 2 workers, tracking on.

For each: its wall time and its process tree's CPU seconds, its child runs, the
iterations it trained, its pick (the best run by validation accuracy, what it registers)
and that pick's test accuracy. The targets: halving's pick within 0.005 of the
exhaustive best's validation accuracy, for at most 1/3 of its CPU time.

    python benchmarks/bench.py --only w    # this section alone, into docs/benchmarks.md
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
from pathlib import Path

from pipeline_bench import Clone, python
from sweep_bench import _run_measured
from timing import table

# What the targets ask of halving against the exhaustive sweep.
MAX_GAP, MAX_CPU_SHARE = 0.005, 1 / 3


def _sweep(clone: Clone, out: Path, *overrides: str) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    command = [python(), "pipelines/run.py", "sweep=halving", "hydra.launcher.n_jobs=2"]
    return _run_measured(clone, [*command, *overrides, f"hydra.sweep.dir={out}"])


def _summary(out: Path) -> list[dict[str, str]]:
    with open(out / "sweep_summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _trained(out: Path, rows: list[dict[str, str]]) -> int:
    """Iterations the sweep's trainings ran: each job's own for halving; one training
    to the largest budget per configuration when budgets are shared."""
    records = [json.loads((out / r["job"] / "record.json").read_text()) for r in rows]
    if all("trained_iterations" in r for r in records):
        return sum(int(r["trained_iterations"]) for r in records)
    largest: dict[str, int] = {}
    for record in records:
        group = record.get("shared_training") or record["key"]
        largest[group] = max(largest.get(group, 0), _budget(record))
    return sum(largest.values())


def _budget(record: dict) -> int:
    return next(
        int(o.partition("=")[2]) for o in record["overrides"] if o.startswith("train.iterations=")
    )


def _row(name: str, wall: float, cpu: float, rows: list[dict[str, str]], trained: int) -> list:
    best = rows[0]
    pick = ", ".join(
        f"{key.split('.')[-1]} {best[key]}"
        for key in ("train.alpha", "model.hidden_size", "train.iterations")
    )
    return [
        name,
        len(rows),
        f"{trained:,}",
        f"{wall:.0f}",
        f"{cpu:.0f}",
        pick,
        f"{float(best['validation_accuracy']):.4f}",
        f"{float(best['test_accuracy']):.4f}",
    ]


def section_halving(clone: Clone) -> tuple[str, dict]:
    load = os.getloadavg()[0]
    exhaustive_dir, halving_dir = clone.path / "bench-exhaustive", clone.path / "bench-halving"
    exhaustive = _sweep(clone, exhaustive_dir, "hydra.sweeper.eta=null")
    halving = _sweep(clone, halving_dir)
    load_after = os.getloadavg()[0]
    rows = {name: _summary(out) for name, out in (("e", exhaustive_dir), ("h", halving_dir))}
    trained = {"e": _trained(exhaustive_dir, rows["e"]), "h": _trained(halving_dir, rows["h"])}
    best = {name: float(found[0]["validation_accuracy"]) for name, found in rows.items()}
    gap = best["e"] - best["h"]
    share = halving[1] / exhaustive[1]
    met = gap <= MAX_GAP and share <= MAX_CPU_SHARE
    rungs = (halving_dir / "sweep_summary.md").read_text().split("Successive halving, rung")[1]
    # The rung table only: the first block of table rows after its heading.
    rung_lines = rungs.strip("\n").splitlines()[1:]
    rows_from = next(i for i, line in enumerate(rung_lines) if line.startswith("|"))
    rung_table = "\n".join(
        itertools.takewhile(lambda row: row.startswith("|"), rung_lines[rows_from:])
    )
    text = [
        "### w. Successive halving against the exhaustive sweep of the same space"
        " (`sweep=halving`: 8 alphas × 6 hidden sizes, rungs 370, 1111, 3333, 10000,"
        " eta 3), joblib with 2 workers\n",
        "Both in this run, in the same temporary copy, the exhaustive sweep first"
        " (`hydra.sweeper.eta=null`: every configuration to every rung, the budgets of each"
        " shared in one training). *CPU s*: user + system seconds of the sweep's whole"
        " process tree. The pick is each sweep's best run by validation accuracy (what it"
        f" registers); its test accuracy played no part in the choice. Load average"
        f" {load:.1f} before, {load_after:.1f} after (2 cores).\n",
        table(
            [
                "sweep",
                "child runs",
                "iterations trained",
                "wall s",
                "CPU s",
                "pick",
                "validation accuracy",
                "test accuracy",
            ],
            [
                _row("exhaustive", *exhaustive, rows["e"], trained["e"]),
                _row("successive halving", *halving, rows["h"], trained["h"]),
            ],
        ),
        "",
        f"**Halving's pick is {gap:.4f} below the exhaustive best in validation accuracy"
        f" (target <= {MAX_GAP}), for {share:.2f} of its CPU time (target <= 1/3)**:"
        f" {'met' if met else 'not met'}. It trained"
        f" {trained['h'] / trained['e']:.2f} of the iterations and recorded"
        f" {len(rows['h'])} child runs against {len(rows['e'])}.\n",
        "Halving's rungs:\n",
        rung_table,
        "",
    ]
    found = {"gap": gap, "cpu share": share, "met": met}
    return "\n".join(text), found
