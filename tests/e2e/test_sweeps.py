"""End-to-end sweeps: Hydra multirun on joblib and its warm workers, DVC queued
experiments, Optuna, shared budgets, resuming, and the registry."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (
    dvc,
    free_port,
    interrupt_sweep,
    mlflow_runs,
    project_env,
    run,
    run_app,
    served_digits,
)

SUMMARY_FILES = {
    "sweep_summary.csv",
    "sweep_summary.md",
    "sweep_heatmap.png",
    "sweep_cost_curves.png",
}


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
    client, runs = mlflow_runs(clone)
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
    summary = summary_rows(sweep_dir)
    assert len(summary) == 4
    accuracies = [float(row["test_accuracy"]) for row in summary]
    assert accuracies == sorted(accuracies, reverse=True)
    # One MLflow 3 logged model per child run (issue 23).
    models = client.search_logged_models([parent.info.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(c.info.run_id for c in children)
    # The pictures: the best child's only (tracking.pictures=best), drawn at the sweep's end.
    assert pictured(client, children, sweep_dir) == {summary[0]["job"]}
    expected = sorted(c.data.metrics["test_accuracy"] for c in children)
    assert sorted(accuracies) == pytest.approx(expected, abs=1e-12)


def pictured(client, children, sweep_dir: Path) -> set[str]:
    """The jobs whose run logged pictures; each has them in its folder too."""
    logged = {
        c.data.tags["sweep_job"]
        for c in children
        if len(client.list_artifacts(c.info.run_id, "plots")) == 4
    }
    drawn = {p.parents[2].name for p in sweep_dir.glob("*/reports/plots/cost.png")}
    assert logged == drawn
    return logged


def test_with_tracking_pictures_all_every_child_run_draws_its_pictures(clone: Path) -> None:
    run_app(
        clone,
        "-m",
        "train.alpha=0.25,1.0",
        "train.iterations=30",
        "tracking.pictures=all",
        "hydra.sweep.dir=multirun/pictures",
    )
    client, runs = mlflow_runs(clone)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert pictured(client, children, clone / "multirun/pictures") == {
        c.data.tags["sweep_job"] for c in children
    }


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
    _, runs = mlflow_runs(clone)
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
    _, runs = mlflow_runs(reproduced)
    queued = [r for r in runs if "dvc_experiment" in r.data.tags]
    assert len(queued) == 2
    assert {r.data.params["train.alpha"] for r in queued} == {"0.25", "1.0"}
    assert all(r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics for r in queued)
    names = {exp["name"] for exp in experiments}
    assert {r.data.tags["dvc_experiment"] for r in queued} == names


def test_optuna_search_logs_each_trial_and_writes_a_runnable_best_preset(clone: Path) -> None:
    run_app(
        clone,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.budgets=null",
        "train.iterations=choice(3,6)",
        "hydra.sweep.dir=multirun/search",
    )
    client, runs = mlflow_runs(clone)
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


# ---- the summary: exactly this sweep's jobs, every swept key, whatever a job raised ----


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(sweep_dir / "sweep_summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_summary_describes_only_its_own_sweeps_jobs(clone: Path) -> None:
    # Issue 14.4: 2 jobs, then 2 others, then 1, into one folder: the last summary said
    # "2 jobs, 2 finished", one of them from the previous sweep.
    fixed = ["tracking.enabled=false", "train.iterations=3", "hydra.sweep.dir=multirun/same"]
    run_app(clone, "-m", "train.alpha=0.1,0.2", *fixed)
    run_app(clone, "-m", "train.alpha=0.3,0.4", *fixed)
    run_app(clone, "-m", "train.alpha=0.5", *fixed)
    rows = summary_rows(clone / "multirun/same")
    assert [row["overrides"] for row in rows] == [
        "train.alpha=0.5 tracking.enabled=False train.iterations=3"
    ]
    assert "1 jobs, 1 finished" in (clone / "multirun/same/sweep_summary.md").read_text()


def test_every_swept_key_has_a_column_of_its_own(clone: Path) -> None:
    # Issue 14.5: both rows showed model.hidden_size 30, and the heatmap their mean.
    run_app(
        clone,
        "-m",
        "model.hidden_sizes=[5],[60]",
        "train.iterations=3",
        "tracking.enabled=false",
        "hydra.sweep.dir=multirun/sizes",
    )
    rows = summary_rows(clone / "multirun/sizes")
    assert sorted(row["model.hidden_sizes"] for row in rows) == ["[5]", "[60]"]


def test_a_job_that_raises_still_leaves_the_summary(clone: Path) -> None:
    # Issue 14.8: validation_size=0.005 raised a ValueError that escaped the sweep after
    # both jobs, and no summary was written.
    result = run_app(
        clone,
        "-m",
        "train.validation_size=0.005,0.1",
        "train.iterations=3",
        "tracking.enabled=false",
        "hydra.sweep.dir=multirun/raised",
        check=False,
    )
    assert result.returncode == 1
    rows = summary_rows(clone / "multirun/raised")
    assert sorted(row["status"] for row in rows) == ["FAILED", "FINISHED"]
    failed = next(row for row in rows if row["status"] == "FAILED")
    assert "validation_size=0.005" in failed["overrides"] and failed["error"]


# ---- shared budgets, resume and the registry -------------------------------------------


def read_model(path: Path) -> dict:
    import numpy as np

    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


SHARED_E2E = {
    "classic kernel": [],
    "momentum, mini-batches": ["train.optimizer=momentum", "train.batch_size=64"],
    "early stopping (trained apart)": [
        "train.optimizer=sgd",
        "train.batch_size=128",
        "train.validation_size=0.2",
        "train.patience=2",
    ],
}


@pytest.mark.parametrize("options", SHARED_E2E.values(), ids=SHARED_E2E.keys())
def test_a_shared_budgets_child_run_equals_a_standalone_run(clone: Path, options: list) -> None:
    import numpy as np

    run_app(clone, "-m", "train.iterations=4,9", *options, "hydra.sweep.dir=multirun/shared")
    rows = {row["train.iterations"]: row for row in summary_rows(clone / "multirun/shared")}
    shared = "patience" not in " ".join(options)
    assert (rows["4"]["shared_training"] == rows["9"]["job"]) is shared
    client, runs = mlflow_runs(clone)
    for budget in ("4", "9"):
        alone = f"outputs/alone-{budget}"
        run_app(clone, f"train.iterations={budget}", *options, f"hydra.run.dir={alone}")
        in_sweep = clone / "multirun/shared" / rows[budget]["job"]
        for a, b in zip(
            read_model(clone / alone / "models/model.npz").items(),
            read_model(in_sweep / "models/model.npz").items(),
        ):
            assert a[0] == b[0] and np.array_equal(a[1], b[1])
        for name in ("reports/metrics.json", "reports/cost.csv", "reports/predictions.csv"):
            assert (clone / alone / name).read_bytes() == (in_sweep / name).read_bytes(), name
        child = next(r for r in runs if r.data.tags.get("sweep_job") == rows[budget]["job"])
        assert child.data.params["train.iterations"] == budget
        metrics = json.loads((clone / alone / "reports/metrics.json").read_text())
        assert child.data.metrics["test_accuracy"] == metrics["test_accuracy"]
        # The whole curve, one step per iteration, as far as the standalone run's (with
        # early stopping, up to the weights it kept).
        curve = (clone / alone / "reports/cost.csv").read_text().splitlines()[1:]
        history = client.get_metric_history(child.info.run_id, "train_cost")
        assert [m.step for m in history] == list(range(1, len(curve) + 1))
        assert len(curve) == int(budget) or "train.patience=2" in options


def test_an_interrupted_sweep_resumes_where_it_stopped(clone: Path) -> None:
    command = [
        sys.executable,
        "pipelines/run.py",
        "-m",
        "train.alpha=0.1,0.2,0.3",
        # Each alpha trains once, to 4000 iterations (a few seconds), then records both
        # budgets: the interruption below lands while a later alpha trains, even when
        # a busy machine delays this process by seconds.
        "train.iterations=20,4000",
        "hydra.sweep.dir=multirun/resume",
    ]
    sweep_dir = clone / "multirun/resume"
    stopped = interrupt_sweep(command, clone, records=2, within=300)
    assert stopped.returncode == 130, stopped.stdout
    finished = {
        path.parent.name: json.loads(path.read_text())["run_id"]
        for path in sweep_dir.glob("*/record.json")
    }
    assert 2 <= len(finished) < 6

    rerun = run(command, cwd=clone)
    said = rerun.stdout + rerun.stderr
    assert f"resuming: {len(finished)} of 6 configurations already finished" in said
    rows = summary_rows(sweep_dir)
    assert sorted(row["job"] for row in rows) == sorted(
        path.parent.name for path in sweep_dir.glob("*/record.json")
    )
    assert len(rows) == 6 and all(row["status"] == "FINISHED" for row in rows)
    for key, run_id in finished.items():  # not trained again
        assert json.loads((sweep_dir / key / "record.json").read_text())["run_id"] == run_id
    _, runs = mlflow_runs(clone)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # the same parent
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    finished_children = [r.data.tags["sweep_job"] for r in children if r.info.status == "FINISHED"]
    assert sorted(finished_children) == sorted(row["job"] for row in rows)

    summary = (sweep_dir / "sweep_summary.csv").read_bytes()
    again = run(command, cwd=clone)
    said = again.stdout + again.stderr
    assert "resuming: 6 of 6 configurations already finished" in said
    assert "one training to" not in said and "training 64-" not in said
    assert (sweep_dir / "sweep_summary.csv").read_bytes() == summary

    # A record cut short is not trusted: that configuration trains again, and its earlier
    # run gives way, leaving one FINISHED child per configuration.
    cut = sweep_dir / rows[0]["job"] / "record.json"
    cut.write_text(cut.read_text()[:40])
    third = run(command, cwd=clone)
    assert "resuming: 5 of 6 configurations already finished" in third.stdout + third.stderr
    assert json.loads(cut.read_text())["status"] == "FINISHED"
    _, runs = mlflow_runs(clone)
    finished_children = [
        r.data.tags["sweep_job"]
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") and r.info.status == "FINISHED"
    ]
    assert sorted(finished_children) == sorted(row["job"] for row in rows)


SERVE = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/digits-nn@challenger"]
SERVE += ["--env-manager", "local"]


def test_a_validated_sweep_registers_and_serves_its_best_model(clone: Path) -> None:

    import mlflow
    import numpy as np

    from digits_nn.data import steps
    from digits_nn.data.digits import PIXEL_COLUMNS

    run_app(
        clone,
        "-m",
        "train.validation_size=0.2",
        "train.alpha=0.5,2.0",
        "train.iterations=60",
        "hydra.sweep.dir=multirun/registry",
    )
    best = summary_rows(clone / "multirun/registry")[0]
    uri = f"sqlite:///{clone / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    version = client.get_model_version_by_alias("digits-nn", "challenger")
    assert version.tags["validation_accuracy"] == f"{float(best['validation_accuracy']):.6f}"
    assert version.tags["param.train.alpha"] == best["train.alpha"] and version.tags["data_md5"]
    assert client.get_run(version.run_id).data.tags["sweep_job"] == best["job"]
    # One MLflow 3 logged model per trained run; the version is the best run's.
    experiment = client.get_experiment_by_name("digits-nn").experiment_id
    models = client.search_logged_models([experiment])
    children = [
        r for r in client.search_runs([experiment]) if r.data.tags.get("mlflow.parentRunId")
    ]
    assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in children)
    [chosen] = [m for m in models if m.source_run_id == version.run_id]
    assert version.source == f"models:/{chosen.model_id}"

    digits = steps.load_digits()
    split = steps.split(digits.X, digits.y, 0.4, 0)  # the raw 0..16 pixels of the run's split
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/digits-nn@challenger")
    finally:
        mlflow.set_tracking_uri(None)
    frame = __import__("pandas").DataFrame(split.X_test, columns=list(PIXEL_COLUMNS))
    predicted = np.asarray(model.predict(frame)).ravel()
    assert float(np.mean(predicted == split.y_test)) == float(best["test_accuracy"])

    port = free_port()
    server = subprocess.Popen(
        [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
        cwd=clone,
        env=project_env(MLFLOW_TRACKING_URI=uri),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        served = served_digits(server, port, list(PIXEL_COLUMNS), split.X_test[:20].tolist())
        assert served == predicted[:20].tolist()
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---- joblib's workers ------------------------------------------------------------------

PROBE = """
import gc, json
from joblib import Parallel, delayed
from digits_nn.sweeps import workers

def probe(_):
    from threadpoolctl import threadpool_info
    import sys
    return {
        "threads": sorted({pool["num_threads"] for pool in threadpool_info()}),
        "frozen": gc.get_freeze_count(),
        "warm": "sklearn.datasets" in sys.modules and "matplotlib.pyplot" in sys.modules,
    }

if __name__ == "__main__":
    workers.start_fork_server(tracking_enabled=False)
    print(json.dumps(Parallel(n_jobs=2)(delayed(probe)(i) for i in range(2))))
"""


def test_joblib_workers_are_warm_one_thread_forks_of_the_server(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    )
    for worker in json.loads(result.stdout.strip().splitlines()[-1]):
        assert worker["threads"] == [1]  # BLAS and OpenMP: one thread per worker
        assert worker["frozen"] > 0  # forked from the server after its gc.freeze()
        assert worker["warm"]  # sklearn and matplotlib came with the fork
