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

from digits_nn.data.digits import N_CLASSES
from digits_nn.data.files import write_bytes
from digits_nn.pipeline import plots
from digits_nn.sweeps import halving, resamples, stats
from digits_nn.sweeps.resamples import swept_keys, swept_values

# A job's params that pick its resample, never part of a preset.
RESAMPLE_PARAMS = ("data.folds", "data.fold", "data.repeat")

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

# What a ready-to-run preset of a job holds: all that makes its result, none of where it
# is recorded or written (tracking, paths).
PRESET_KEYS = ("seed", "data", "model", "train")


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
    # Ties on the accuracy go to the job with less training, then by name: never to the
    # order in which the grid happens to list them (TIE_RULE; the summary says so).
    rows.sort(
        key=lambda r: (
            r["status"] != "FINISHED",
            -(r.get(metric) or 0.0),
            training_work(r.get("params") or {}),
            r["key"],
        )
    )
    for position, row in enumerate(rows, start=1):
        row["rank"] = position
        row |= swept_values(row)
    return rows, metric


TIE_RULE = (
    "Ties are broken by less training (iterations × hidden and output units), then by the"
    " job's name."
)


def training_work(params: dict[str, Any]) -> float:
    """Iterations times hidden and output units, from a job's params: the simpler of two
    equally accurate jobs is preferred."""
    hidden = params.get("model.hidden_sizes") or [params.get("model.hidden_size") or 0]
    return float(params.get("train.iterations") or 0) * (sum(hidden) + N_CLASSES)


def tie_note(rows: list[dict[str, Any]], metric: str) -> str | None:
    """Which jobs tie at the best accuracy and which one the rule put first, if any do."""
    finished = [r for r in rows if r["status"] == "FINISHED"]
    tied = [r for r in finished if r.get(metric) == finished[0].get(metric)] if finished else []
    if len(tied) < 2:
        return None
    return (
        f"{len(tied)} jobs tie at the best {metric} ({tied[0][metric]:.4f}): job"
        f" {tied[0]['job']} ranks first by the tie rule."
    )


def columns(rows: list[dict[str, Any]]) -> list[str]:
    by_rungs = [c for c in BY_RUNGS if any(c in row for row in rows)]
    return [*LEADING, *by_rungs, *swept_keys(rows), *TRAILING]


def parent_metrics(rows: list[dict[str, Any]], metric: str) -> dict[str, float]:
    """The parent run's metrics, from the jobs' own records."""
    finished = [r for r in rows if r["status"] == "FINISHED"]
    values: dict[str, float] = {"jobs": len(rows), "failed_jobs": len(rows) - len(finished)}
    if metric == "validation_accuracy":
        # The chosen job's test accuracy only: the best over all jobs would be a figure
        # chosen on the test rows, optimistic.
        best = rows[0]
        values["best_validation_accuracy"] = best[metric]
        values["test_accuracy_of_best"] = best["test_accuracy"]
    else:
        values["best_test_accuracy"] = max((r["test_accuracy"] for r in finished), default=math.nan)
    if resamples.is_resampled(swept_keys(rows)):
        values |= resamples.parent_metrics(resamples.configurations(rows, metric))
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
            f" {TIE_RULE}"
        )
    return (
        "ranked by **test accuracy**: for exploration, not for choosing a model (choosing"
        " on the test rows makes its accuracy optimistic). Hold out validation rows"
        " (train.validation_size > 0, e.g. sweep=grid_validated) to choose a model."
        f" {TIE_RULE}"
    )


def to_markdown(rows: list[dict[str, Any]], title: str, metric: str, notes: list[str]) -> str:
    def cell(key: str, value: Any) -> str:
        if isinstance(value, list):
            value = " ".join(map(str, value))
        if isinstance(value, float):
            return f"{value:.4f}" if key.endswith("accuracy") else f"{value:g}"
        # A cell is one line of the table: a line break inside it (an error's traceback)
        # would end the row.
        text = "" if value is None else str(value).replace("|", "\\|")
        return "<br>".join(text.splitlines())

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
    if note := tie_note(rows, metric):
        notes.append(note)
    best = rows[0] if finished else None
    if finished and resamples.is_resampled(swept_keys(rows)):
        table = resamples.configurations(rows, metric)
        files.append(sweep_dir / "sweep_configurations.csv")
        write_bytes(files[-1], configurations_csv(table).encode())
        notes.append(configurations_markdown(table, metric))
        best = table[0]["example"]
    if best is not None and metric == "validation_accuracy":
        files.append(sweep_dir / "best_experiment.yaml")
        write_bytes(files[-1], best_experiment(best, name).encode())
    if finished:
        heatmap = sweep_dir / "sweep_heatmap.png"
        resampling = (*plots.HEATMAP_AXES, *resamples.RESAMPLING_KEYS)
        panels = [k for k in swept_keys(rows) if k not in resampling]
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
    seed (which draws the split and the weights) and its whole composed model, train and
    data sections, from the job's record."""
    composed = OmegaConf.create({})
    for key, value in best["params"].items():
        # The preset is a configuration, not one of its resamples: it keeps no fold.
        if key.split(".")[0] in PRESET_KEYS and key not in RESAMPLE_PARAMS:
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


def configurations_csv(table: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, resamples.CONFIGURATION_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


def configurations_markdown(table: list[dict[str, Any]], metric: str) -> str:
    """The configurations, best first: the spread of ``metric`` over their resamples, and
    whether each is distinguishable from the best."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4f}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = [
        f"## Configurations: {metric.replace('_', ' ')} over their resamples",
        "",
        "Mean and standard deviation over each configuration's resamples (folds, repeats,"
        " seeds), and the 95 % interval of the mean with Nadeau and Bengio's correction for"
        " overlapping training rows. `vs_best`: the corrected paired t-test against the"
        f" best on the resamples both have; indistinguishable when p >= {stats.ALPHA}.",
        "",
        "| " + " | ".join(resamples.CONFIGURATION_COLUMNS) + " |",
        "|" + "---|" * len(resamples.CONFIGURATION_COLUMNS),
    ]
    lines += [
        "| " + " | ".join(cell(row.get(c)) for c in resamples.CONFIGURATION_COLUMNS) + " |"
        for row in table
    ]
    return "\n".join(lines) + "\n\n## Jobs"


def failure_line(failed: list[dict[str, Any]]) -> str:
    names = "; ".join(f"job {' '.join(r['overrides'])}: {r.get('error')}" for r in failed)
    return f"{len(failed)} job(s) failed: {names}"
