"""Successive halving end to end: every run it reaches equals a standalone run, it resumes
after Ctrl-C training nothing twice, on joblib and on submitit's local launcher."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import interrupt_sweep, mlflow_runs, run, run_app

# Momentum on mini-batches, so that the velocities and the shuffles' generator matter; the
# test accuracy measured every 2 iterations, so that its curve does too.
OPTIONS = [
    "train.optimizer=momentum",
    "train.batch_size=128",
    "tracking.accuracy_every=2",
]
SPACE = ["train.alpha=0.5,1.0,2.0", "model.hidden_size=10,20", "train.iterations=3,7,12"]


def records(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/record.json")}


def compared_outputs(folder: Path) -> dict[str, bytes]:
    names = ("models/model.npz", "reports/cost.csv", "reports/metrics.json")
    return {name: (folder / name).read_bytes() for name in (*names, "reports/predictions.csv")}


def histories(client, run_id: str) -> dict:
    keys = ("train_cost", "validation_cost", "test_accuracy_curve")
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in keys}


def assert_equals_standalone(clone: Path, record: dict, client) -> None:
    """The record's run (its folder and its MLflow run) equals a standalone run of the
    same overrides: model bytes, curves, metrics."""
    own = [o for o in record["overrides"] if not o.startswith("sweep=")]
    folder = f"outputs/alone-{record['run_id']}"
    run_app(clone, "train.validation_size=0.15", *own, f"hydra.run.dir={folder}")
    in_sweep = clone / "multirun/halving" / record["key"]
    assert compared_outputs(clone / folder) == compared_outputs(in_sweep), record["key"]
    alone = client.search_runs(
        [client.get_run(record["run_id"]).info.experiment_id],
        filter_string=f"tags.overrides = '{' '.join(['train.validation_size=0.15', *own])}'",
    )[0]
    assert histories(client, alone.info.run_id) == histories(client, record["run_id"])
    assert alone.data.metrics == client.get_run(record["run_id"]).data.metrics
    assert alone.data.params == client.get_run(record["run_id"]).data.params


def test_a_stopped_and_a_promoted_configurations_runs_equal_standalone_runs(clone: Path) -> None:
    run_app(
        clone,
        "sweep=halving",
        *SPACE,
        *OPTIONS,
        "hydra.sweeper.eta=2",
        "hydra.sweep.dir=multirun/halving",
    )
    found = records(clone / "multirun/halving")
    assert sorted(r["rung"] for r in found.values()) == [0] * 6 + [1] * 3 + [2]
    (top,) = [r for r in found.values() if r["rung"] == 2]
    assert top["outcome"] == "reached the top rung"
    assert top["trained_iterations"] == 5 and top["started_at"] == 7  # went on from rung 1
    stopped = next(r for r in found.values() if r["outcome"].startswith("stopped at rung 1"))
    configuration = [o for o in top["overrides"] if not o.startswith("train.iterations=")]
    promoted = [r for r in found.values() if all(o in r["overrides"] for o in configuration)]
    assert len(promoted) == 3
    client, _ = mlflow_runs(clone)
    for record in [stopped, *promoted]:
        assert_equals_standalone(clone, record, client)
    summary = (clone / "multirun/halving/sweep_summary.md").read_text()
    assert "| 0 | 3 | 6 | 3 |" in summary and "| 1 | 7 | 3 | 2 |" in summary
    run_tags = client.get_run(stopped["run_id"]).data.tags
    assert run_tags["halving.outcome"] == stopped["outcome"] and run_tags["halving.rung"] == "1"


def test_halving_without_validation_rows_is_refused_before_any_training(clone: Path) -> None:
    result = run_app(
        clone,
        "sweep=halving",
        "train.validation_size=0",
        "hydra.sweep.dir=multirun/refused",
        check=False,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 2, said
    assert "sweep=halving ranks configurations on validation rows" in said
    assert "Traceback" not in said and "training 64-" not in said


def test_an_interrupted_halving_resumes_training_nothing_twice(clone: Path) -> None:
    command = [
        sys.executable,
        "pipelines/run.py",
        "sweep=halving",
        "train.alpha=0.5,1.0,2.0",
        "model.hidden_size=10,20",
        # Rung 1 goes on for a few seconds: the interruption below lands there, even when
        # a busy machine delays this process by seconds.
        "train.iterations=20,3000,6000",
        "hydra.sweeper.eta=2",
        "hydra.sweep.dir=multirun/resume",
    ]
    sweep_dir = clone / "multirun/resume"
    stopped = interrupt_sweep(command, clone, records=6)
    output = stopped.stdout
    assert stopped.returncode == 130, output
    before = {key: r["run_id"] for key, r in records(sweep_dir).items() if "run_id" in r}
    assert 6 <= len(before) < 10, output

    rerun = run(command, cwd=clone)
    said = rerun.stdout + rerun.stderr
    assert "resuming: 6 of 6 already finished" in said
    after = records(sweep_dir)
    assert len(after) == 10 and all(r["status"] == "FINISHED" for r in after.values())
    for key, run_id in before.items():  # not trained again
        assert after[key]["run_id"] == run_id
    for record in after.values():  # each went on from the rung below
        expected = {0: 0, 1: 20, 2: 3000}[record["rung"]]
        assert record["started_at"] == expected, record["key"]
    _, runs = mlflow_runs(clone)
    finished = [
        r.data.tags["sweep_job"]
        for r in runs
        if "sweep_job" in r.data.tags and r.info.status == "FINISHED"
    ]
    assert sorted(finished) == sorted(after)  # one finished run per (configuration, rung)


def test_halving_on_submitit_goes_on_from_each_rung(clone: Path) -> None:
    run_app(
        clone,
        "sweep=halving",
        "hydra/launcher=submitit_local",
        "train.alpha=0.5,2.0",
        "model.hidden_size=10",
        "train.iterations=3,7",
        *OPTIONS,
        "hydra.sweeper.eta=2",
        "hydra.sweep.dir=multirun/halving",
    )
    found = records(clone / "multirun/halving")
    (top,) = [r for r in found.values() if r["rung"] == 1]
    assert top["started_at"] == 3 and top["trained_iterations"] == 4
    client, _ = mlflow_runs(clone)
    assert_equals_standalone(clone, top, client)
