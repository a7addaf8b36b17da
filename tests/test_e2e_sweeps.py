"""End-to-end sweeps: Hydra multirun on joblib, DVC queued experiments, and run.py vs DVC."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from conftest import dvc, mlflow_runs, run

pytestmark = pytest.mark.slow

SUMMARY_FILES = {
    "sweep_summary.csv",
    "sweep_summary.md",
    "sweep_heatmap.png",
    "sweep_cost_curves.png",
}


def runs_of(repo: Path):
    return mlflow_runs(repo)


def run_app(repo: Path, *overrides: str, check: bool = True):
    return run([sys.executable, "pipelines/run.py", *overrides], cwd=repo, check=check)


@pytest.mark.parametrize("repeat", range(3))
def test_joblib_multirun_logs_one_parent_four_children_and_a_summary(
    clone: Path, repeat: int
) -> None:
    assert not (clone / "mlflow.db").exists()  # a fresh store, created by the sweep
    result = run_app(
        clone,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "train.alpha=0.25,1.0",
        "model.hidden_size=10,30",
        "train.iterations=60",
    )
    client, runs = runs_of(clone)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4, result.stderr
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["train.alpha"] == "0.25,1.0"
    assert parent.data.params["model.hidden_size"] == "10,30"
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        history = client.get_metric_history(child.info.run_id, "train_cost")
        assert [m.step for m in history] == list(range(1, 61))
        assert 0.0 <= child.data.metrics["test_accuracy"] <= 1.0
    logged = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert logged >= SUMMARY_FILES
    # The summary ranks every job by test accuracy.
    sweep_dir = Path(parent.data.tags["sweep_dir"])
    sweep_dir = sweep_dir if sweep_dir.is_absolute() else clone / sweep_dir
    summary = (sweep_dir / "sweep_summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 4
    accuracies = [float(line.split(",")[3]) for line in summary[1:]]
    assert accuracies == sorted(accuracies, reverse=True)
    expected = sorted(c.data.metrics["test_accuracy"] for c in children)
    assert sorted(accuracies) == pytest.approx(expected, abs=1e-12)


def test_a_failing_job_is_isolated_recorded_and_named(clone: Path) -> None:
    result = run_app(
        clone,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "train.alpha=1.0,-1",
        "train.iterations=40",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "1 job(s) failed" in output and "train.alpha=-1" in output
    assert "Traceback" not in output
    _, runs = runs_of(clone)
    children = {r.data.tags["overrides"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert children["train.alpha=1.0 train.iterations=40"].info.status == "FINISHED"
    failed = children["train.alpha=-1 train.iterations=40"]
    assert failed.info.status == "FAILED"
    assert "train.alpha" in failed.data.tags["error"]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FAILED"
    sweep_dir = Path(parent.data.tags["sweep_dir"])
    sweep_dir = sweep_dir if sweep_dir.is_absolute() else clone / sweep_dir
    summary = (sweep_dir / "sweep_summary.md").read_text()
    assert "FAILED" in summary and "1 failed" in summary
    assert all(r.info.status != "RUNNING" for r in runs)


def test_dvc_queue_lands_its_runs_in_the_main_store(reproduced: Path) -> None:
    dvc(
        "exp",
        "run",
        "--queue",
        "-S",
        "train.alpha=0.25,1.0",
        "-S",
        "train.iterations=200",
        cwd=reproduced,
    )
    dvc("queue", "start", "-j", "2", cwd=reproduced)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        status = dvc("queue", "status", cwd=reproduced).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    shown = json.loads(dvc("exp", "show", "--json", cwd=reproduced).stdout)
    experiments = [
        exp
        for baseline in shown
        for exp in (baseline.get("experiments") or [])
        if exp.get("revs") and exp["revs"][0]["data"].get("metrics")
    ]
    assert len(experiments) == 2
    for exp in experiments:
        metrics = exp["revs"][0]["data"]["metrics"]["reports/metrics.json"]["data"]
        assert 0.0 < metrics["test_accuracy"] <= 1.0
    _, runs = runs_of(reproduced)
    queued = [r for r in runs if "dvc_experiment" in r.data.tags]
    assert len(queued) == 2
    assert {r.data.params["train.alpha"] for r in queued} == {"0.25", "1.0"}
    assert all(r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics for r in queued)
    names = {exp["name"] for exp in experiments}
    assert {r.data.tags["dvc_experiment"] for r in queued} == names


def test_run_py_gives_the_same_metrics_as_dvc_repro(reproduced: Path) -> None:
    before = (reproduced / "reports/metrics.json").read_bytes()
    run_app(reproduced, "hydra.run.dir=outputs/same-config")
    assert (reproduced / "reports/metrics.json").read_bytes() == before  # DVC's outputs untouched
    dvc_metrics = json.loads(before)
    app_metrics = json.loads((reproduced / "outputs/same-config/reports/metrics.json").read_text())
    assert app_metrics.keys() == dvc_metrics.keys()
    for key, value in dvc_metrics.items():
        assert app_metrics[key] == pytest.approx(value, abs=1e-12), key
    _, runs = runs_of(reproduced)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["data_md5"] for r in runs}) == 1  # trained on the same bytes


def test_optuna_search_logs_each_trial_and_writes_a_runnable_best_preset(clone: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    run_app(
        clone,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "train.iterations=choice(3,6)",
        "hydra.sweep.dir=multirun/search",
    )
    client, runs = runs_of(clone)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    for child in children:
        assert 0.0 < child.data.metrics["validation_accuracy"] <= 1.0
        assert child.data.params["train.validation_size"] == "0.15"
    top = max(r.data.metrics["validation_accuracy"] for r in children)
    best = [r for r in children if r.data.metrics["validation_accuracy"] == top]  # ties happen
    preset = (clone / "multirun/search/best_experiment.yaml").read_text()
    assert preset.startswith("# @package _global_")
    assert any(f"alpha: {r.data.params['train.alpha']}" in preset for r in best)
    assert "best_experiment.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    # Ready to run: copied into conf/experiment/, it composes and trains.
    (clone / "conf/experiment/best.yaml").write_text(preset)
    result = run_app(clone, "experiment=best", "tracking.enabled=false")
    assert "test accuracy" in result.stderr + result.stdout
