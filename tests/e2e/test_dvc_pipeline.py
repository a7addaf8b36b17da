"""End-to-end: the DVC pipeline, its experiments and its MLflow runs, as a user runs them."""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import dvc, md5, run

STAGES = ["load", "scale", "split", "onehot", "train", "evaluate"]
DATA_OUTPUTS = [
    "data/raw/digits.npz",
    "data/interim/scaled.npz",
    "data/processed/split.npz",
    "data/processed/onehot.npz",
]
ALL_OUTPUTS = [*DATA_OUTPUTS, "models/model.npz", "reports/cost.csv", "reports/metrics.json"]


def client_for(repo: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


def all_runs(repo: Path):
    client = client_for(repo)
    experiment = client.get_experiment_by_name("digits-nn")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], max_results=1000)


def ran_stages(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def test_dag_chains_the_six_stages_in_order(clone: Path) -> None:
    listed = dvc("stage", "list", "--name-only", cwd=clone).stdout.split()
    assert listed == STAGES
    edges = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    for stage in STAGES:
        assert edges[stage]["cmd"] == f"python pipelines/{stage}.py"
    dag = dvc("dag", "--dot", cwd=clone).stdout
    for upstream, downstream in itertools.pairwise(STAGES):
        assert f'"{upstream}" -> "{downstream}"' in dag


def test_repro_runs_every_stage_then_nothing(reproduced_once: Path) -> None:
    for output in ALL_OUTPUTS:
        assert (reproduced_once / output).is_file(), output
    second = dvc("repro", cwd=reproduced_once)
    assert ran_stages(second.stdout) == []
    assert "up to date" in second.stdout


def test_metrics_agree_with_an_independent_recomputation(reproduced_once: Path) -> None:
    metrics = json.loads((reproduced_once / "reports/metrics.json").read_text())
    assert set(metrics) >= {"test_accuracy", "train_accuracy", "final_cost"}
    assert 0.86 <= metrics["test_accuracy"] <= 0.92

    with np.load(reproduced_once / "models/model.npz", allow_pickle=False) as model:
        layers = [(model["W1"], model["b1"]), (model["W2"], model["b2"])]
        assert model["W1"].shape == (30, 64) and model["W2"].shape == (10, 30)
    with np.load(reproduced_once / "data/processed/split.npz", allow_pickle=False) as split:
        X_test, y_test = split["X_test"], split["y_test"]
        X_train, y_train = split["X_train"], split["y_train"]
    assert len(X_train) == 1078 and len(X_test) == 719

    def accuracy(X: np.ndarray, y: np.ndarray) -> float:
        h = X
        for W, b in layers:
            h = 1.0 / (1.0 + np.exp(-(h @ W.T + b)))
        return float(np.mean(h.argmax(axis=1) == y))

    assert metrics["test_accuracy"] == pytest.approx(accuracy(X_test, y_test), abs=1e-12)
    assert metrics["train_accuracy"] == pytest.approx(accuracy(X_train, y_train), abs=1e-12)
    cost = np.loadtxt(reproduced_once / "reports/cost.csv", delimiter=",", skiprows=1)
    assert cost.shape == (3000, 3)
    assert metrics["final_cost"] == cost[-1, 1]


def test_dvc_shows_metrics_and_plots(reproduced: Path) -> None:
    shown = dvc("metrics", "show", "--json", cwd=reproduced).stdout
    assert "test_accuracy" in shown
    plots = json.loads(dvc("plots", "show", "--json", cwd=reproduced).stdout)["data"]
    cost_points = plots["Cost curve"][0]["content"]["data"]["values"]
    assert len(cost_points) == 2 * 3000  # cost and classic_cost, one point per iteration
    assert len(plots["Confusion matrix"][0]["content"]["data"]["values"]) == 719
    for png in ("reports/plots/cost.png", "reports/plots/confusion.png"):
        assert (reproduced / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_run_holds_the_model_curve_and_accuracy(reproduced_once: Path) -> None:
    runs = all_runs(reproduced_once)
    assert [r.info.status for r in runs] == ["FINISHED"]
    run_ = runs[0]
    client = client_for(reproduced_once)
    history = client.get_metric_history(run_.info.run_id, "train_cost")
    assert [m.step for m in history] == list(range(1, 3001))
    metrics = json.loads((reproduced_once / "reports/metrics.json").read_text())
    assert run_.data.metrics["test_accuracy"] == metrics["test_accuracy"]
    assert run_.data.metrics["train_accuracy"] == metrics["train_accuracy"]
    params = run_.data.params
    assert params["train.alpha"] == "0.25" and params["model.hidden_size"] == "30"
    assert params["seed"] == "0" and params["data.test_size"] == "0.4"
    tags = run_.data.tags
    assert len(tags["git_commit"]) == 40 and tags["git_dirty"] in {"true", "false"}
    assert tags["data_md5"] == md5(reproduced_once / "data/processed/split.npz")
    assert run_.info.run_name == "h30-a0.25-i3000-s0"
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
    assert {"model.npz", "params.yaml", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run_.info.run_id, "plots")}
    pictures = ("cost", "confusion", "misclassified", "weights")
    assert plots == {f"plots/{name}.png" for name in pictures}
    accuracy_curve = client.get_metric_history(run_.info.run_id, "test_accuracy_curve")
    assert [m.step for m in accuracy_curve] == list(range(100, 3001, 100))
    assert accuracy_curve[-1].value == metrics["test_accuracy"]
    experiment = client.get_experiment_by_name("digits-nn")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_mlflow_server_serves_the_full_cost_curve(reproduced: Path, mlflow_server) -> None:
    url = mlflow_server(f"sqlite:///{reproduced / 'mlflow.db'}", cwd=reproduced)
    run_id = all_runs(reproduced)[0].info.run_id
    query = urllib.parse.urlencode(
        {"run_id": run_id, "metric_key": "train_cost", "max_results": 25000}
    )
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/metrics/get-history?{query}") as response:
        history = json.load(response)["metrics"]
    assert len(history) == 3000
    cost = np.loadtxt(reproduced / "reports/cost.csv", delimiter=",", skiprows=1)
    assert [m["value"] for m in sorted(history, key=lambda m: m["step"])] == cost[:, 1].tolist()


def test_changing_alpha_reruns_only_train_and_evaluate(reproduced: Path) -> None:
    before = {name: md5(reproduced / name) for name in DATA_OUTPUTS}
    result = dvc("exp", "run", "-S", "train.alpha=1.0", cwd=reproduced)
    assert ran_stages(result.stdout) == ["train", "evaluate"]
    assert {name: md5(reproduced / name) for name in DATA_OUTPUTS} == before
    metrics = json.loads((reproduced / "reports/metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.92
    runs = all_runs(reproduced)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    newest = runs[0]
    assert newest.data.params["train.alpha"] == "1.0"
    assert newest.data.metrics["test_accuracy"] == metrics["test_accuracy"]
    shown = dvc("exp", "show", "--json", cwd=reproduced).stdout
    assert "test_accuracy" in shown


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("train.alpha=-1", "train.alpha", "> 0"),
        ("train.iterations=0", "train.iterations", ">= 1"),
        ("model.hidden_size=0", "model.hidden_size", ">= 1"),
        ("data.test_size=1.5", "data.test_size", "between 0 and 1"),
        ("+train.warmup=5", "train.warmup", "Allowed keys"),
        ("train.warmup=5", "train.warmup", "+train.warmup"),
        # Valid alone, but its training rows hold one row of a digit.
        ("data.test_size=0.98 train.validation_size=0.3", "train.validation_size", "per digit"),
    ],
)
def test_bad_override_is_refused_and_nothing_is_lost(
    reproduced: Path, override: str, key: str, allowed: str
) -> None:
    before = {name: md5(reproduced / name) for name in ALL_OUTPUTS}
    runs_before = len(all_runs(reproduced))
    settings = [arg for one in override.split() for arg in ("-S", one)]
    result = dvc("exp", "run", *settings, cwd=reproduced, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert key in output and allowed in output
    assert "Traceback" not in output
    assert (
        "training 64-" not in output
    )  # refused before any work (fit logs "training 64-30-10 ...")
    assert len(all_runs(reproduced)) == runs_before
    assert all(r.info.status != "RUNNING" for r in all_runs(reproduced))
    # DVC deleted the outputs of the refused stage, and recorded those of the stages that
    # ran before it; the cache gives them all back.
    run(["git", "checkout", "--", "params.yaml", "dvc.lock"], cwd=reproduced)
    dvc("checkout", cwd=reproduced)
    assert {name: md5(reproduced / name) for name in ALL_OUTPUTS} == before


# Picking the newest run with the model's md5 instead would put the evaluate stage's
# metrics and files on a later pipelines/run.py run of the same config.
def test_evaluate_records_into_the_train_stages_run_whatever_ran_since(reproduced: Path) -> None:
    from helpers import run_app

    [trained] = all_runs(reproduced)
    run_app(reproduced, "hydra.run.dir=outputs/same-config")  # the same model, newer
    [newer] = [r for r in all_runs(reproduced) if r.info.run_id != trained.info.run_id]
    assert newer.data.tags["model_md5"] == trained.data.tags["model_md5"]
    lock = (reproduced / "dvc.lock").read_text()
    dvc("repro", "--force", "--single-item", "evaluate", cwd=reproduced)
    client = client_for(reproduced)
    assert len(client.get_metric_history(trained.info.run_id, "test_accuracy")) == 2
    assert len(client.get_metric_history(newer.info.run_id, "test_accuracy")) == 1
    # Without the handover (say, train's outputs checked out from the cache): a run of
    # evaluate's own, and the log says why.
    (reproduced / "models/.model.run.json").unlink()
    result = dvc("repro", "--force", "--single-item", "evaluate", cwd=reproduced)
    assert "evaluate records into a run of its own: the train stage handed over no run" in (
        result.stdout + result.stderr
    )
    assert len(all_runs(reproduced)) == 3
    assert len(client.get_metric_history(trained.info.run_id, "test_accuracy")) == 2
    assert (reproduced / "dvc.lock").read_text() == lock  # the run id is in no tracked file
    # The train stage's handover is where git ignores it.
    run(["git", "check-ignore", "-q", "models/.model.run.json"], cwd=reproduced)


# With validation rows, metrics.json holds the validation figures too, not only test and train.
def test_an_experiment_with_validation_rows_can_be_chosen_on_them(reproduced: Path) -> None:
    settings = ["train.validation_size=0.15", "train.patience=5", "train.iterations=300"]
    dvc("exp", "run", *[arg for s in settings for arg in ("-S", s)], cwd=reproduced)
    metrics = json.loads((reproduced / "reports/metrics.json").read_text())
    assert set(metrics) == {
        "test_accuracy",
        "train_accuracy",
        "final_cost",
        "validation_accuracy",
        "best_iteration",
    }
    shown = json.loads(dvc("metrics", "show", "--json", cwd=reproduced).stdout)
    assert "validation_accuracy" in json.dumps(shown)
    newest = all_runs(reproduced)[0]  # the train stage's run, evaluated in place
    assert newest.data.metrics["validation_accuracy"] == metrics["validation_accuracy"]
    assert newest.data.metrics["best_iteration"] == metrics["best_iteration"]
    assert newest.data.metrics["test_accuracy"] == metrics["test_accuracy"]
