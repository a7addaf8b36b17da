"""The sweep callback's side: the parent run's id sent to every job, the sweep's name,
grid and identity, its base config, and the runs a killed job left open."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict, read_write

from digits_nn.config import PathsConfig, TrackingConfig
from digits_nn.sweeps import callback, job
from digits_nn.sweeps.protocol import PARENT_RUN_ENV, SWEEP_JOB_TAG
from helpers import compose_config, sweep_config


def test_the_parent_run_id_travels_in_each_jobs_own_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A launcher recomposes each job from the sweep's Hydra overrides plus the job's own
    # (ConfigLoader.load_sweep_config), and Hydra sets hydra.job.env_set in the job's
    # environment, wherever it runs: no file on the launching machine's disk is needed.
    config = sweep_config(tmp_path)
    callback.send_to_jobs(config, "abc123")
    hydra_overrides = list(config.hydra.overrides.hydra)
    one_job = compose_config(*hydra_overrides, "train.alpha=1.0")
    assert dict(one_job.hydra.job.env_set) == {PARENT_RUN_ENV: "abc123"}
    assert "abc123" not in " ".join(one_job.hydra.overrides.task)  # not in the run's overrides
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)
    assert job.sweep_parent_run() is None
    monkeypatch.setenv(PARENT_RUN_ENV, "abc123")
    assert job.sweep_parent_run() == "abc123"


def launched_with(tmp_path: Path, *overrides: str):
    """A sweep's config as Hydra hands it to the callback: composed without the sweeps,
    which stay in ``hydra.overrides.task`` as typed."""
    single = [o for o in overrides if o.startswith("sweep=")]
    cfg = sweep_config(tmp_path, *single)
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.overrides.task = list(overrides)
    return cfg


def test_the_grid_holds_the_presets_and_the_command_lines_sweeps_only(tmp_path: Path) -> None:
    cfg = launched_with(
        tmp_path,
        "seed=0,1",
        "+train.note=range(3)",
        "train.alpha=choice(0.5,1.0)",
        "model.hidden_sizes=[100,50]",  # one list, not a sweep
        "++hydra.job.env_set.X='a,b'",  # one quoted string
        "train.l2=0.01",
    )
    assert callback.sweep_grid(cfg) == {
        "seed": "0,1",
        "train.note": "range(3)",
        "train.alpha": "choice(0.5,1.0)",
    }
    preset = launched_with(tmp_path, "sweep=grid", "seed=0,1")
    assert callback.sweep_grid(preset) == {
        "train.alpha": "0.05,0.25,1.0,2.5",
        "train.iterations": "500,1000,3000,10000",
        "model.hidden_size": "10,30,60,100",
        "seed": "0,1",
    }


# Hydra's sweeper lets the command line replace a preset's key: `sweep=seeds seed=3` runs
# seed 3 alone, so logging the preset's `seed: range(10)` on the parent run would be wrong.
def test_the_grid_is_what_ran_when_the_command_line_replaces_a_presets_key(
    tmp_path: Path,
) -> None:
    assert callback.sweep_grid(launched_with(tmp_path, "sweep=seeds", "seed=3")) == {"seed": "3"}
    replaced = launched_with(tmp_path, "sweep=seeds", "seed=1,2", "train.l2=0.5")
    assert callback.sweep_grid(replaced) == {"seed": "1,2"}


def test_a_sweep_is_named_after_its_preset_or_its_overrides(tmp_path: Path) -> None:
    assert callback.sweep_name(launched_with(tmp_path, "sweep=grid", "seed=1")) == "sweep grid"
    assert callback.sweep_name(launched_with(tmp_path, "seed=0,1", "train.l2=0.1")) == (
        "sweep seed=0,1 train.l2=0.1"
    )


def test_a_sweeps_identity_does_not_depend_on_the_order_of_its_overrides(tmp_path: Path) -> None:
    first = callback.sweep_identity(launched_with(tmp_path, "seed=0,1", "train.alpha=0.5,1.0"))
    again = callback.sweep_identity(launched_with(tmp_path, "train.alpha=0.5,1.0", "seed=0,1"))
    other = callback.sweep_identity(launched_with(tmp_path, "seed=0,1", "train.alpha=0.5,2.0"))
    assert first == again != other
    assert first == [
        "seed=0,1",
        "train.alpha=0.5,1.0",
        "seed=0,1",
        "train.alpha=0.5,1.0",
    ]


def test_an_invalid_base_config_still_gives_the_sweep_its_tracking_and_paths(
    tmp_path: Path,
) -> None:
    cfg = sweep_config(tmp_path, "train.alpha=-1", "tracking.experiment=kept")
    assert callback._task_config(cfg).tracking.experiment == "kept"
    # A broken tracking section leaves the defaults: the jobs report the error.
    broken = sweep_config(tmp_path, "tracking.accuracy_every=-5", "paths.model=m.npz")
    assert callback._task_config(broken).tracking == TrackingConfig()
    assert callback._task_config(broken).paths == PathsConfig()
    valid = sweep_config(tmp_path, "train.alpha=0.5")
    assert callback._task_config(valid).train.alpha == 0.5


def test_the_sweep_closes_as_killed_the_run_a_killed_job_left_running(store) -> None:
    """A job SIGKILLed cannot close its run: at the sweep's end its run is found by its
    sweep-job tag under the parent, and only the failed jobs' RUNNING runs are closed."""
    client = store.client
    parent = client.create_run(store.experiment_id).info.run_id

    def child(key: str, status: str | None, parent_id: str = parent) -> str:
        tags = {"mlflow.parentRunId": parent_id, SWEEP_JOB_TAG: key}
        run_id = client.create_run(store.experiment_id, tags=tags).info.run_id
        if status:
            client.set_terminated(run_id, status=status)
        return run_id

    killed = child("seed=0", None)  # SIGKILLed mid-training: still RUNNING
    finished = child("seed=1", "FINISHED")
    failed = child("seed=2", "FAILED")
    elsewhere = child("seed=0", None, client.create_run(store.experiment_id).info.run_id)

    rows = [{"key": "seed=0"}, {"key": "seed=2"}]
    assert callback.close_orphaned_runs(store, parent, rows) == [killed]

    status = {run_id: client.get_run(run_id).info.status for run_id in (killed, finished, failed)}
    assert status == {killed: "KILLED", finished: "FINISHED", failed: "FAILED"}
    assert client.get_run(elsewhere).info.status == "RUNNING"  # another sweep's


def test_a_sweep_that_ends_before_its_end_closes_its_runs_as_killed(store) -> None:
    """Ctrl-C, SIGTERM or a crash: Hydra calls no callback, so an exit handler closes
    the parent and every child still RUNNING as KILLED, once."""
    client = store.client
    sweep = callback.SweepCallback()
    sweep.close_interrupted()  # nothing opened yet: nothing to close
    sweep.store = store
    sweep.parent_run_id = client.create_run(store.experiment_id).info.run_id
    placed = {"mlflow.parentRunId": sweep.parent_run_id}
    running = client.create_run(store.experiment_id, tags=placed).info.run_id
    finished = client.create_run(store.experiment_id, tags=placed).info.run_id
    client.set_terminated(finished, status="FINISHED")
    other = client.create_run(store.experiment_id).info.run_id
    parent = sweep.parent_run_id
    sweep.close_interrupted()
    status = {r: client.get_run(r).info.status for r in (parent, running, finished, other)}
    assert status == {parent: "KILLED", running: "KILLED", finished: "FINISHED", other: "RUNNING"}
    assert sweep.parent_run_id is None
    sweep.close_interrupted()  # a second exit handler call finds nothing to do
