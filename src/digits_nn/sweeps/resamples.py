"""A sweep over resamples (folds, repeats, seeds): its jobs grouped into configurations,
each with the spread of its accuracies and its paired comparison with the best.

A job's *resample* is what its values of :data:`RESAMPLING_KEYS` pick: the fold and
repeat of a k-fold (``sweep=cv``), or the seed of a train/test split (``sweep=seeds``).
Its *configuration* is everything else it overrides. Two configurations are compared
on the resamples they share, pair by pair (:mod:`digits_nn.sweeps.stats`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from digits_nn.data.digits import N_ROWS
from digits_nn.sweeps import stats
from digits_nn.sweeps.protocol import job_key

#: The overrides that pick a job's rows rather than its configuration.
RESAMPLING_KEYS = ("data.fold", "data.repeat", "seed")
#: The params that say which rows a job trained and tested on: its resample.
RESAMPLE_PARAMS = ("data.folds", "data.fold", "data.repeat", "seed", "data.test_size")
#: Overrides that name the sweep itself, the same for every job: no part of a configuration.
SWEEP_OVERRIDES = ("sweep",)

CONFIGURATION_COLUMNS = [
    "rank",
    "configuration",
    "resamples",
    "mean",
    "std",
    "ci95_low",
    "ci95_high",
    "vs_best",
    "p_vs_best",
]


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


def is_resampled(swept: list[str]) -> bool:
    """Whether the sweep varies the rows: then its jobs group into configurations."""
    return any(key in RESAMPLING_KEYS for key in swept)


def configuration_of(row: dict[str, Any], varied: list[str]) -> str:
    """The job's configuration, named by its values of the keys in ``varied`` (the swept
    keys that are not resampling keys); where none vary, by its overrides without those
    that pick its resample."""
    overrides = row.get("overrides") or []
    if varied:
        return job_key([o for o in overrides if _key(o) in varied])
    left_out = (*RESAMPLING_KEYS, *SWEEP_OVERRIDES)
    return job_key([o for o in overrides if _key(o) not in left_out])


def resample_of(row: dict[str, Any]) -> tuple[Any, ...]:
    """Which rows the job trained and tested on, from its params."""
    params = row.get("params") or {}
    return tuple(params.get(key) for key in RESAMPLE_PARAMS)


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def ratio_of(row: dict[str, Any]) -> float:
    """``n_test / n_train`` of the job's resample, from its params: ``1/(k-1)`` for a
    fold of a k-fold, ``test_size`` against the rest for a train/test split."""
    params = row.get("params") or {}
    folds = params.get("data.folds")
    if folds:
        return 1.0 / (int(folds) - 1)
    n_test = math.ceil(float(params.get("data.test_size", 0.4)) * N_ROWS)
    return stats.test_train_ratio(n_test, N_ROWS - n_test)


def accuracies(rows: list[dict[str, Any]], metric: str) -> dict[tuple[Any, ...], float]:
    """Resample -> the metric, for a configuration's finished jobs."""
    return {resample_of(r): float(r[metric]) for r in rows if r.get(metric) is not None}


def group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Configuration -> its finished jobs, in the sweep's order."""
    varied = [k for k in swept_keys(rows) if k not in RESAMPLING_KEYS]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "FINISHED":
            groups.setdefault(configuration_of(row, varied), []).append(row)
    return groups


def compare(a: dict[tuple[Any, ...], float], b: dict[tuple[Any, ...], float], ratio: float):
    """The paired test of B against A on the resamples both have, or None if fewer than 2."""
    shared = sorted(set(a) & set(b), key=repr)
    if len(shared) < 2:
        return None
    return stats.paired(np.array([a[s] for s in shared]), np.array([b[s] for s in shared]), ratio)


def configurations(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One row per configuration, best mean first: its spread over its resamples and
    whether it is distinguishable from the best (the paired corrected t-test)."""
    table = []
    for name, jobs in group(rows).items():
        values = accuracies(jobs, metric)
        spread = stats.spread(np.array(list(values.values())), ratio_of(jobs[0]))
        table.append(
            {
                "configuration": name,
                "resamples": spread.n,
                "mean": spread.mean,
                "std": spread.std,
                "ci95_low": spread.low,
                "ci95_high": spread.high,
                "accuracies": values,
                "ratio": ratio_of(jobs[0]),
                "example": jobs[0],
            }
        )
    table.sort(key=lambda c: -c["mean"])
    for position, row in enumerate(table, start=1):
        row["rank"] = position
        row |= _against_best(row, table[0])
    return table


def _against_best(row: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    if row is best:
        return {"vs_best": "best", "p_vs_best": None}
    result = compare(best["accuracies"], row["accuracies"], best["ratio"])
    if result is None:
        return {"vs_best": "too few shared resamples", "p_vs_best": None}
    verdict = "worse" if result.distinguishable else "indistinguishable"
    return {"vs_best": verdict, "p_vs_best": result.p}


def parent_metrics(table: list[dict[str, Any]]) -> dict[str, float]:
    """Per configuration, its mean, standard deviation and 95 % interval, under a name
    MLflow accepts (``<configuration>/mean``); the best configuration's also as
    ``best_mean``, ``best_std``, ``best_ci95_low`` and ``best_ci95_high``."""
    values: dict[str, float] = {"configurations": len(table)}
    for row in table:
        label = metric_label(row["configuration"])
        for figure in ("mean", "std", "ci95_low", "ci95_high"):
            if not math.isnan(row[figure]):
                values[f"{label}/{figure}"] = row[figure]
                if row["rank"] == 1:
                    values[f"best_{figure}"] = row[figure]
    return values


def metric_label(configuration: str) -> str:
    """A configuration as an MLflow metric name (letters, digits, ``_ - . : / space``)."""
    label = configuration.replace("=", ":").replace(",", " ")
    return "".join(c if c.isalnum() or c in "_-.:/ " else "_" for c in label)[:200]
