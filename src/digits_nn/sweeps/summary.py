"""A sweep's summary: its jobs ranked, as CSV, markdown and pictures, and the best job
as a ready-to-run preset. Drawn from the jobs' records alone (a job's own folder may be
on another machine)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from digits_nn.data.files import write_bytes
from digits_nn.pipeline import plots
from digits_nn.sweeps import halving

# The summary's columns before the swept keys, and after them.
LEADING = [
    "rank",
    "job",
    "status",
    "test_accuracy",
    "validation_accuracy",
    "duration_s",
    "shared_training",
]


TRAILING = ["overrides", "error"]
# Columns of sweeps that train by rungs (successive halving, a pruned search), shown
# when a record has them: where it stood, what the sweep decided, what it trained.
BY_RUNGS = ["rung", "outcome", "trial", "trained_iterations"]


def rank(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The jobs best first, failures last, and the accuracy they are ranked by.

    When every finished job held out validation rows, the ranking is by validation
    accuracy: the test rows then stay unseen by the choice, and the test accuracy is an
    honest estimate. Otherwise it can only be by test accuracy (for exploring).
    """
    finished = [r for r in records if r["status"] == "FINISHED"]
    validated = bool(finished) and all(r.get("validation_accuracy") is not None for r in finished)
    metric = "validation_accuracy" if validated else "test_accuracy"
    rows = [dict(r, job=r["key"]) for r in records]
    rows.sort(key=lambda r: (r["status"] != "FINISHED", -(r.get(metric) or 0.0)))
    for position, row in enumerate(rows, start=1):
        row["rank"] = position
        row |= swept_values(row)
    return rows, metric


def swept_values(row: dict[str, Any]) -> dict[str, str]:
    """A job's overrides as key -> value, the values exactly as the sweep gave them."""
    pairs = (o.partition("=") for o in row.get("overrides") or [])
    return {key.lstrip("+~"): value for key, _, value in pairs}


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every key the sweep varies: the overrides whose value differs between jobs."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for key, value in swept_values(row).items():
            values.setdefault(key, set()).add(value)
    return sorted(
        k for k, v in values.items() if len(v) > 1 or any(k not in swept_values(r) for r in rows)
    )


def columns(rows: list[dict[str, Any]]) -> list[str]:
    by_rungs = [c for c in BY_RUNGS if any(c in row for row in rows)]
    return [*LEADING, *by_rungs, *swept_keys(rows), *TRAILING]


def parent_metrics(rows: list[dict[str, Any]], metric: str) -> dict[str, float]:
    """The parent run's metrics, from the jobs' own records."""
    finished = [r for r in rows if r["status"] == "FINISHED"]
    values = {
        "jobs": len(rows),
        "failed_jobs": len(rows) - len(finished),
        "best_test_accuracy": max((r["test_accuracy"] for r in finished), default=math.nan),
    }
    if metric == "validation_accuracy":
        best = max(finished, key=lambda r: r[metric])
        values["best_validation_accuracy"] = best[metric]
        values["test_accuracy_of_best"] = best["test_accuracy"]
    return values


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns(rows), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "overrides": " ".join(row.get("overrides") or [])})
    return buffer.getvalue()


def ranking_note(metric: str) -> str:
    if metric == "validation_accuracy":
        return (
            "ranked by validation accuracy (rows held out of training); the test accuracy"
            " played no part in the choice, so it is an honest estimate for the best job."
        )
    return (
        "ranked by **test accuracy**: for exploration, not for choosing a model (choosing"
        " on the test rows makes its accuracy optimistic). Hold out validation rows"
        " (train.validation_size > 0, e.g. sweep=grid_validated) to choose a model."
    )


def to_markdown(rows: list[dict[str, Any]], title: str, metric: str, notes: list[str]) -> str:
    def cell(key: str, value: Any) -> str:
        if isinstance(value, list):
            value = " ".join(map(str, value))
        if isinstance(value, float):
            return f"{value:.4f}" if key.endswith("accuracy") else f"{value:g}"
        return "" if value is None else str(value).replace("|", "\\|")

    failed = [r for r in rows if r["status"] != "FINISHED"]
    shown = columns(rows)
    lines = [
        f"# {title}",
        "",
        f"{len(rows)} jobs, {len(rows) - len(failed)} finished, {len(failed)} failed;"
        f" {ranking_note(metric)}",
        *(f"\n{note}" for note in notes),
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    lines += ["| " + " | ".join(cell(c, row.get(c)) for c in shown) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_summary(
    sweep_dir: Path, rows: list[dict[str, Any]], name: str, metric: str
) -> list[Path]:
    """The summary files of a sweep, in its directory: CSV, markdown and two PNGs, all
    drawn from the jobs' records (a job's own folder may be on another machine)."""
    finished = [r for r in rows if r["status"] == "FINISHED"]
    files = [sweep_dir / "sweep_summary.csv", sweep_dir / "sweep_summary.md"]
    notes = halving.describe(rows)
    if finished and metric == "validation_accuracy":
        files.append(sweep_dir / "best_experiment.yaml")
        write_bytes(files[-1], best_experiment(rows[0], name).encode())
    if finished:
        heatmap = sweep_dir / "sweep_heatmap.png"
        panels = [k for k in swept_keys(rows) if k not in plots.HEATMAP_AXES]
        drawn = plots.save_sweep_heatmap(heatmap, finished, panels, metric)
        if drawn:
            files.append(heatmap)
        else:
            notes.append(f"No heatmap: one panel per value of {', '.join(panels)} is too many.")
        curves = {r["job"]: np.asarray(r["cost"]) for r in finished if r.get("cost")}
        files.append(sweep_dir / "sweep_cost_curves.png")
        plots.save_cost_curves(files[-1], curves)
    write_bytes(files[0], to_csv(rows).encode())
    write_bytes(files[1], to_markdown(rows, name.capitalize(), metric, notes).encode())
    return files


def best_experiment(best: dict[str, Any], name: str) -> str:
    """The best job by *validation* accuracy as a ready-to-run experiment preset: its
    whole composed model, train and data sections, from the job's record."""
    composed = OmegaConf.create({})
    for key, value in best["params"].items():
        if key.split(".")[0] in ("data", "model", "train"):
            OmegaConf.update(composed, key, value)
    header = [
        "# @package _global_",
        f"# Best job of {name}: validation accuracy {best['validation_accuracy']:.4f},"
        f" test accuracy {best['test_accuracy']:.4f}.",
        f"# Job {best['job']}: {' '.join(best['overrides'])}",
        "# Run it: cp this file conf/experiment/best.yaml &&"
        " python pipelines/run.py experiment=best",
    ]
    return "\n".join(header) + "\n" + OmegaConf.to_yaml(composed)


def failure_line(failed: list[dict[str, Any]]) -> str:
    names = "; ".join(f"job {' '.join(r['overrides'])}: {r.get('error')}" for r in failed)
    return f"{len(failed)} job(s) failed: {names}"
