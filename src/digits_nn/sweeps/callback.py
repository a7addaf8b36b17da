"""The sweep callback: the MLflow parent run around a Hydra multirun, and its end.

:class:`SweepCallback` is registered in ``conf/config.yaml`` (``hydra.callbacks``) and
runs in the launching process. Before any job starts, it starts the fork server that
joblib's workers come from, creates (and migrates) the store, opens the parent run and
sends its id to the jobs. When every job has ended, it writes the summary, logs it to
the parent run, registers the best model, and exits non-zero naming the jobs that failed.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from digits_nn import config
from digits_nn.data.files import write_json
from digits_nn.errors import DigitsNNError
from digits_nn.pipeline import plots
from digits_nn.sweeps import pictures, registry, summary, workers
from digits_nn.sweeps.protocol import PARENT_RUN_ENV, SWEEP_JOB_TAG
from digits_nn.sweeps.records import sweep_records
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store, open_store

log = logging.getLogger(__name__)

PARENT_FILE = "parent_run.json"


class SweepCallback(Callback):
    """Opens the parent MLflow run of a multirun and summarises the sweep at its end."""

    def __init__(self) -> None:
        self.store: Store | None = None
        self.parent_run_id: str | None = None
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        tracking_cfg = _task_config(config).tracking
        parallel = workers.uses_joblib(config)
        if parallel:
            # First, so that the workers warm up while this process opens the store.
            workers.start_fork_server(tracking_cfg.enabled)
        # Before any worker starts: a fresh SQLite store must be created and migrated
        # by one process, or racing migrations corrupt it.
        self.store = open_store(tracking_cfg)
        if self.store is None:
            return
        name = sweep_name(config)
        self.parent_run_id = open_parent_run(self.store, config, name)
        RunLog(self.store, self.parent_run_id).params(sweep_grid(config))
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
        rows, metric = summary.rank(sweep_records(sweep_dir))
        name = sweep_name(config)
        written = summary.write_summary(sweep_dir, rows, name, metric)
        failed = [r for r in rows if r["status"] != "FINISHED"]
        if failed:  # first: the tracking server may be the reason, and gone
            log.error("%s", summary.failure_line(failed))
        if rows and rows[0]["status"] == "FINISHED":
            self.draw_best_pictures(config, rows[0])
        # Hydra turns a callback's exception into a warning and exits 0: the exit status
        # must not depend on the tracking server, which may be why jobs failed.
        try:
            if self.store is not None and self.parent_run_id is not None:
                client = self.store.client
                close_orphaned_runs(self.store, self.parent_run_id, failed)
                parent = RunLog(self.store, self.parent_run_id)
                parent.files(written)
                values = summary.parent_metrics(rows, metric)
                values["duration_s"] = time.perf_counter() - self.started
                parent.metrics(values)
                retire_superseded(self.store, self.parent_run_id, rows)
                if rows and rows[0]["status"] == "FINISHED" and metric == "validation_accuracy":
                    version = registry.register_best(self.store, rows[0])
                    log.info(
                        "registered %s version %s as @%s",
                        registry.REGISTERED_MODEL,
                        version,
                        registry.ALIAS,
                    )
                    client.set_tag(self.parent_run_id, "registered_version", version)
                elif rows and rows[0]["status"] == "FINISHED":
                    log.info("no model registered: the ranking is by test accuracy (see summary)")
                if failed:
                    client.set_tag(self.parent_run_id, "error", summary.failure_line(failed))
                client.set_terminated(self.parent_run_id, status="FAILED" if failed else "FINISHED")
                atexit.unregister(self.close_interrupted)
                self.parent_run_id = None
        finally:
            log.info("sweep summary: %s", sweep_dir / "sweep_summary.md")
            for row in rows[:5]:
                log.info("  #%s %s  %s=%s", row["rank"], row["job"], metric, row.get(metric))
            if failed:
                sys.exit(1)

    def draw_best_pictures(self, config: DictConfig, best: dict[str, Any]) -> None:
        """The best run's pictures, unless every child run drew its own
        (``tracking.pictures``); a failure to draw them is a warning, not the sweep's."""
        if _task_config(config).tracking.pictures != "best":
            return
        try:
            drawn = pictures.draw_best(Path(config.hydra.sweep.dir), best, self.store)
        except Exception as error:
            log.warning("the best run's pictures were not drawn: %s", error)
        else:
            if drawn:
                log.info("the best run's pictures: %s", drawn[0].parent)

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
    store: Store, parent_run_id: str, failed: list[dict[str, Any]]
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
            f" and tags.{SWEEP_JOB_TAG} = '{row['key']}'"
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


def retire_superseded(store: Store, parent_run_id: str, rows: list[dict[str, Any]]) -> None:
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
        key = child.data.tags.get(SWEEP_JOB_TAG)
        if key in keys and child.info.run_id not in kept:
            client.set_tag(child.info.run_id, "superseded", "rerun by a resumed sweep")
            client.delete_run(child.info.run_id)


def open_parent_run(store: Store, config: DictConfig, name: str) -> str:
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
    write_json(sweep_dir / PARENT_FILE, {"run_id": run_id, "sweep": identity})
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


def sweep_name(config: DictConfig) -> str:
    preset = OmegaConf.select(config, "hydra.runtime.choices.sweep", default=None)
    if preset:
        return f"sweep {preset}"
    return "sweep " + " ".join(OmegaConf.select(config, "hydra.overrides.task", default=[]))


def sweep_grid(config: DictConfig) -> dict[str, str]:
    """The swept keys and the values that ran, from a preset and from the command line.

    As Hydra's sweeper does, a command-line override of a preset's key replaces the
    preset's values, even with a single value (``sweep=seeds seed=3`` runs seed 3 alone).
    """
    grid = {str(k): str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    # Hydra's own parser tells a sweep (a,b, range(), choice(), glob()) from a single
    # value that merely holds a comma, such as the list model.hidden_sizes=[100,50].
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        if override.is_sweep_override() or override.key_or_group in grid:
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
