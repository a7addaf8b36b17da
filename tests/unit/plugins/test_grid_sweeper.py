"""The project's grid sweeper, in Hydra's own multirun run in this process: each
configuration once, and a resumed sweep that reuses a record only for the configuration
and the store that made it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from digits_nn.sweeps import job
from helpers import ROOT, multirun


def children(root: Path, parent: str | None = None) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits-nn")
    everything = client.search_runs([experiment.experiment_id], max_results=1000)
    return [
        r
        for r in everything
        if "mlflow.parentRunId" in r.data.tags
        and (parent is None or r.data.tags["mlflow.parentRunId"] == parent)
    ]


def summary(sweep_dir: Path) -> list[dict]:
    keys = json.loads((sweep_dir / "sweep_jobs.json").read_text())
    return [json.loads((sweep_dir / key / "record.json").read_text()) for key in keys]


# A configuration listed twice (seed=0,0) would train twice into one folder, one run
# tagged "superseded: rerun by a resumed sweep" though nothing was resumed.
def test_a_configuration_listed_twice_trains_once(sweep_root: Path) -> None:
    multirun("seed=0,0,1", "hydra.sweep.dir=sweep", task=job.run)
    assert json.loads((sweep_root / "sweep/sweep_jobs.json").read_text()) == ["seed=0", "seed=1"]
    runs = children(sweep_root)
    assert sorted(r.data.tags["sweep_job"] for r in runs) == ["seed=0", "seed=1"]
    assert all("superseded" not in r.data.tags for r in runs)


# Reusing records regardless of configuration would, after train.alpha changes in
# conf/train/gd.yaml, train only the new seed of a rerun and rank it with two jobs
# trained at the other alpha.
def test_a_resumed_sweep_trains_again_what_another_configuration_recorded(
    sweep_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = sweep_root / "conf"
    shutil.copytree(ROOT / "conf", conf)
    multirun("seed=0,1", "hydra.sweep.dir=sweep", task=job.run, conf=conf)
    first = {r.info.run_id for r in children(sweep_root)}
    gd = conf / "train/gd.yaml"
    gd.write_text(gd.read_text().replace("alpha: 0.25", "alpha: 0.5"))
    capsys.readouterr()
    multirun("seed=0,1,2", "hydra.sweep.dir=sweep", task=job.run, conf=conf)
    said = capsys.readouterr()
    rows = summary(sweep_root / "sweep")
    assert [r["params"]["train.alpha"] for r in rows] == [0.5, 0.5, 0.5]
    assert (
        "2 finished configuration(s) trained again: their records were made with another"
        " configuration (train.alpha: 0.25 -> 0.5)" in said.out + said.err
    )
    assert {r["run_id"] for r in rows}.isdisjoint(first)  # three runs of this configuration
    # A third run of the same command reuses all three.
    multirun("seed=0,1,2", "hydra.sweep.dir=sweep", task=job.run, conf=conf)
    said = capsys.readouterr()
    assert "resuming: 3 of 3 configurations already finished" in said.out + said.err
    assert summary(sweep_root / "sweep") == rows


# Reusing records whose runs another store holds would end a validated sweep with
# "Callback SweepCallback.on_multirun_end raised MlflowException: Run with id=... not
# found", exit 0, a KILLED parent without children and no challenger.
def test_a_sweep_resumed_against_another_store_trains_again_into_it(
    sweep_root: Path, monkeypatch: pytest.MonkeyPatch, migrated_store: Path
) -> None:
    overrides = ("seed=0,1", "train.validation_size=0.2", "hydra.sweep.dir=sweep")
    multirun(*overrides, task=job.run)
    other = sweep_root / "other"
    other.mkdir()
    shutil.copyfile(migrated_store, other / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other / 'mlflow.db'}")
    multirun(*overrides, task=job.run)
    runs = children(other)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    [parent] = {r.data.tags["mlflow.parentRunId"] for r in runs}
    client = MlflowClient(tracking_uri=f"sqlite:///{other / 'mlflow.db'}")
    assert client.get_run(parent).info.status == "FINISHED"
    version = client.get_model_version_by_alias("digits-nn", "challenger")
    assert version.run_id in {r.info.run_id for r in runs}
