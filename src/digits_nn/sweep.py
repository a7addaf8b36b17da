"""Sweeps: the MLflow parent run around a Hydra multirun, and the summary at its end.

:class:`SweepCallback` is registered in ``conf/config.yaml`` (``hydra.callbacks``). It
runs in the launching process. Before any job starts, it starts the fork server that
joblib's workers come from, creates (and migrates) the store, opens the parent run and
writes its id into the sweep directory for the jobs. When every job has ended, it ranks
the jobs, draws the heatmap and the overlaid cost curves, logs them to the parent run,
and exits non-zero naming the jobs that failed.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from digits_nn import artifacts, config, plots, runner, sweeper, tracking
from digits_nn.errors import DigitsNNError
from digits_nn.runner import PARENT_RUN_ENV

log = logging.getLogger(__name__)

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
    return [*LEADING, *swept_keys(rows), *TRAILING]


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


class SweepCallback(Callback):
    """Opens the parent MLflow run of a multirun and summarises the sweep at its end."""

    def __init__(self) -> None:
        self.store: tracking.Store | None = None
        self.parent_run_id: str | None = None
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        tracking_cfg = _task_config(config).tracking
        parallel = uses_joblib(config)
        if parallel:
            # First, so that the workers warm up while this process opens the store.
            start_fork_server(tracking_cfg.enabled)
        if not tracking_cfg.enabled:
            return
        # Before any worker starts: a fresh SQLite store must be created and migrated
        # by one process, or racing migrations corrupt it.
        self.store = tracking.open_store(tracking_cfg)
        name = sweep_name(config)
        self.parent_run_id = open_parent_run(self.store, config, name)
        tracking.log_params(self.store, self.parent_run_id, sweep_grid(config))
        send_to_jobs(config, self.parent_run_id)
        if parallel:
            # The summary draws with matplotlib: import it now, while the workers start,
            # rather than after the last job (the basic launcher's jobs import it here).
            plots.pyplot()
        # Hydra has no callback for an interrupted sweep: close the runs at exit instead.
        atexit.register(self.close_interrupted)
        log.info("sweep %s: parent MLflow run %s", name, self.parent_run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows, metric = rank(sweeper.sweep_records(sweep_dir))
        name = sweep_name(config)
        written = write_summary(sweep_dir, rows, name, metric)
        failed = [r for r in rows if r["status"] != "FINISHED"]
        if failed:  # first: the tracking server may be the reason, and gone
            log.error("%s", _failure_line(failed))
        # Hydra turns a callback's exception into a warning and exits 0: the exit status
        # must not depend on the tracking server, which may be why jobs failed.
        try:
            if self.store is not None and self.parent_run_id is not None:
                client = self.store.client
                close_orphaned_runs(self.store, self.parent_run_id, failed)
                tracking.log_artifacts(self.store, self.parent_run_id, written)
                values = parent_metrics(rows, metric)
                values["duration_s"] = time.perf_counter() - self.started
                tracking.log_metrics(self.store, self.parent_run_id, values)
                retire_superseded(self.store, self.parent_run_id, rows)
                if rows and rows[0]["status"] == "FINISHED" and metric == "validation_accuracy":
                    version = register_best(self.store, rows[0])
                    log.info("registered %s version %s as @challenger", REGISTERED_MODEL, version)
                    client.set_tag(self.parent_run_id, "registered_version", version)
                elif rows and rows[0]["status"] == "FINISHED":
                    log.info("no model registered: the ranking is by test accuracy (see summary)")
                if failed:
                    client.set_tag(self.parent_run_id, "error", _failure_line(failed))
                client.set_terminated(self.parent_run_id, status="FAILED" if failed else "FINISHED")
                atexit.unregister(self.close_interrupted)
                self.parent_run_id = None
        finally:
            log.info("sweep summary: %s", sweep_dir / "sweep_summary.md")
            for row in rows[:5]:
                log.info("  #%s %s  %s=%s", row["rank"], row["job"], metric, row.get(metric))
            if failed:
                sys.exit(1)

    def close_interrupted(self) -> None:
        """The sweep ended before on_multirun_end (Ctrl-C, SIGTERM, a crash): close the
        parent and every child still RUNNING as KILLED, so that no run stays open."""
        if self.store is None or self.parent_run_id is None:
            return
        client = self.store.client
        running = client.search_runs(
            [self.store.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'"
            " and attributes.status = 'RUNNING'",
        )
        for child in running:
            client.set_terminated(child.info.run_id, status="KILLED")
        client.set_terminated(self.parent_run_id, status="KILLED")
        self.parent_run_id = None


def close_orphaned_runs(
    store: tracking.Store, parent_run_id: str, failed: list[dict[str, Any]]
) -> list[str]:
    """Close as KILLED the child runs that failed jobs left RUNNING; their ids.

    A job closes its own run however it ends, unless it is killed outright: SIGKILL
    after the cluster's grace period (SLURM's KillWait), a lost node, the OOM killer.
    When the sweep ends every job has ended, so such a run is found by its job's key
    (the sweep-job tag, set when the run starts) under the parent run.
    """
    client, closed = store.client, []
    for row in failed:
        running = client.search_runs(
            [store.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
            f" and tags.{runner.SWEEP_JOB_TAG} = '{row['key']}'"
            " and attributes.status = 'RUNNING'",
        )
        for child in running:
            log.warning(
                "job %s ended without closing its run %s: closed as KILLED",
                row["key"],
                child.info.run_id,
            )
            client.set_terminated(child.info.run_id, status="KILLED")
            closed.append(child.info.run_id)
    return closed


PARENT_FILE = "parent_run.json"
REGISTERED_MODEL, ALIAS = "digits-nn", "challenger"


def retire_superseded(
    store: tracking.Store, parent_run_id: str, rows: list[dict[str, Any]]
) -> None:
    """Leave one FINISHED child run per configuration after a resumed sweep.

    A job killed after its run finished but before its record was whole is rerun; its
    earlier run is then superseded by the one its record names. It is tagged so and
    deleted (MLflow's soft delete: ``mlflow gc`` or the UI can still restore it).
    """
    client = store.client
    kept = {r["run_id"] for r in rows if r.get("run_id")}
    keys = {r["key"] for r in rows}
    children = client.search_runs(
        [store.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
        " and attributes.status = 'FINISHED'",
        max_results=5000,
    )
    for child in children:
        key = child.data.tags.get(runner.SWEEP_JOB_TAG)
        if key in keys and child.info.run_id not in kept:
            client.set_tag(child.info.run_id, "superseded", "rerun by a resumed sweep")
            client.delete_run(child.info.run_id)


def register_best(store: tracking.Store, best: dict[str, Any]) -> str:
    """Register the best job's model as a new version of ``digits-nn``, aliased
    ``challenger``, carrying the run, its params, the data md5 and both accuracies.

    Only for a sweep ranked on validation accuracy: a model chosen on the test rows
    would come with an optimistic test accuracy.
    """
    client = store.client
    run = client.get_run(best["run_id"])
    if not client.search_registered_models(filter_string=f"name = '{REGISTERED_MODEL}'"):
        client.create_registered_model(REGISTERED_MODEL)
    tags = {f"param.{k}": str(v) for k, v in best["params"].items()}
    tags |= {
        "data_md5": run.data.tags.get("data_md5", ""),
        "test_accuracy": f"{best['test_accuracy']:.6f}",
        "validation_accuracy": f"{best['validation_accuracy']:.6f}",
    }
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags=tags,
        description=f"Best of a sweep by validation accuracy: {' '.join(best['overrides'])}",
    ).version
    client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version)
    return str(version)


def open_parent_run(store: tracking.Store, config: DictConfig, name: str) -> str:
    """The sweep's parent run: the one an earlier, interrupted run of this same sweep
    (same command, same ``hydra.sweep.dir``) opened, reopened; otherwise a new one.

    The sweep directory keeps the run's id alone (never the store's URI, which may hold
    credentials), with what identifies the sweep: its grid and its fixed overrides.
    """
    sweep_dir = Path(config.hydra.sweep.dir)
    identity = sweep_identity(config)
    try:
        kept = json.loads((sweep_dir / PARENT_FILE).read_text())
        run = store.client.get_run(kept["run_id"])
        if kept["sweep"] == identity and run.info.experiment_id == store.experiment_id:
            store.client.update_run(run.info.run_id, status="RUNNING")
            log.info("resuming the sweep's parent MLflow run %s", run.info.run_id)
            return run.info.run_id
    except Exception:  # no file, another sweep's, or a run the store no longer has
        pass
    run_id = store.client.create_run(
        store.experiment_id,
        run_name=name,
        tags={"sweep_dir": str(sweep_dir), "mlflow.note.content": name},
    ).info.run_id
    artifacts.write_json(sweep_dir / PARENT_FILE, {"run_id": run_id, "sweep": identity})
    return run_id


def sweep_identity(config: DictConfig) -> list[str]:
    """What makes two runs of a sweep the same sweep: its grid and its overrides."""
    grid = [f"{k}={v}" for k, v in sorted(sweep_grid(config).items())]
    return grid + sorted(OmegaConf.select(config, "hydra.overrides.task", default=[]))


def send_to_jobs(config: DictConfig, parent_run_id: str) -> None:
    """Make the parent run's id travel with every job, on any launcher.

    Each launcher recomposes a job's config from the sweep's Hydra overrides plus the
    job's own, and Hydra sets ``hydra.job.env_set`` in the job's environment before the
    task runs: in a forked joblib worker, a SLURM job or a Ray worker alike, none of which
    may see this machine's disk or environment. The id alone travels (a tracking URI may
    carry credentials), and as a Hydra override it stays out of the job's own overrides.
    """
    with open_dict(config), read_write(config):
        config.hydra.overrides.hydra.append(f"++hydra.job.env_set.{PARENT_RUN_ENV}={parent_run_id}")


# What a job imports, loaded once by the fork server instead of by every worker.
JOB_MODULES = [
    "digits_nn.runner",
    "hydra_plugins.hydra_joblib_launcher._core",
    "sklearn.datasets",
    "sklearn.model_selection",
    "matplotlib.pyplot",
]
TRACKING_MODULES = ["mlflow", "mlflow.store.tracking.sqlalchemy_store", "mlflow.pyfunc"]


def uses_joblib(config: DictConfig) -> bool:
    target = OmegaConf.select(config, "hydra.launcher._target_", default="")
    return target.endswith(".JoblibLauncher")


def start_fork_server(tracking_enabled: bool) -> None:
    """Have joblib's workers start warm, as forks of a server that imported a job's modules.

    By default loky starts each worker as a new interpreter, which then imports sklearn,
    matplotlib and mlflow itself: about 3 s per worker before its first job, where a
    classic job takes 2.5 s. The fork server imports them once, and starts now, while this
    process is busy opening the store. Forking it is safe where forking this process is
    not: it is a fresh interpreter that only imports, with no database connection open.
    """
    import multiprocessing
    from multiprocessing import forkserver

    from joblib.externals.loky.backend import context

    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return
    modules = (
        JOB_MODULES + (TRACKING_MODULES if tracking_enabled else []) + ["digits_nn.fork_server"]
    )
    multiprocessing.set_forkserver_preload(modules)
    context.set_start_method("forkserver", force=True)
    forkserver.ensure_running()


def write_summary(
    sweep_dir: Path, rows: list[dict[str, Any]], name: str, metric: str
) -> list[Path]:
    """The summary files of a sweep, in its directory: CSV, markdown and two PNGs, all
    drawn from the jobs' records (a job's own folder may be on another machine)."""
    finished = [r for r in rows if r["status"] == "FINISHED"]
    files = [sweep_dir / "sweep_summary.csv", sweep_dir / "sweep_summary.md"]
    notes = []
    if finished and metric == "validation_accuracy":
        files.append(sweep_dir / "best_experiment.yaml")
        artifacts.write_bytes(files[-1], best_experiment(rows[0], name).encode())
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
    artifacts.write_bytes(files[0], to_csv(rows).encode())
    artifacts.write_bytes(files[1], to_markdown(rows, name.capitalize(), metric, notes).encode())
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


def sweep_name(config: DictConfig) -> str:
    preset = OmegaConf.select(config, "hydra.runtime.choices.sweep", default=None)
    if preset:
        return f"sweep {preset}"
    return "sweep " + " ".join(OmegaConf.select(config, "hydra.overrides.task", default=[]))


def sweep_grid(config: DictConfig) -> dict[str, str]:
    """The swept keys and their values, from a preset and from the command line."""
    grid = {str(k): str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    # Hydra's own parser tells a sweep (a,b, range(), choice(), glob()) from a single
    # value that merely holds a comma, such as the list model.hidden_sizes=[100,50].
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        if override.is_sweep_override():
            grid[override.key_or_group] = override.input_line.partition("=")[2]
    return grid


def _task_config(config_with_hydra: DictConfig) -> config.Config:
    """The sweep's base config (without the swept values), for its tracking and paths.

    If the base itself is invalid, each job reports that; the sweep still needs to know
    where to record and where the jobs write, so those two sections are tried alone.
    """
    task = OmegaConf.masked_copy(config_with_hydra, [k for k in config_with_hydra if k != "hydra"])
    for candidate in (task, OmegaConf.masked_copy(task, ["tracking", "paths"]), {}):
        try:
            return config.parse(candidate)
        except DigitsNNError:
            continue
    raise AssertionError("unreachable: the defaults are valid")


def _failure_line(failed: list[dict[str, Any]]) -> str:
    names = "; ".join(f"job {' '.join(r['overrides'])}: {r.get('error')}" for r in failed)
    return f"{len(failed)} job(s) failed: {names}"
