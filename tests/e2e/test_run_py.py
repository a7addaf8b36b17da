"""``pipelines/run.py`` for one config, end to end: the same numbers as ``dvc repro``,
the modern preset in float32, and the train accuracy it reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, mlflow_runs, run_app, search_runs


def test_run_py_gives_the_same_metrics_as_dvc_repro(reproduced: Path) -> None:
    before = (reproduced / "reports/metrics.json").read_bytes()
    run_app(reproduced, "hydra.run.dir=outputs/same-config")
    assert (reproduced / "reports/metrics.json").read_bytes() == before  # DVC's outputs untouched
    dvc_metrics = json.loads(before)
    app_metrics = json.loads((reproduced / "outputs/same-config/reports/metrics.json").read_text())
    assert app_metrics.keys() == dvc_metrics.keys()
    for key, value in dvc_metrics.items():
        assert app_metrics[key] == pytest.approx(value, abs=1e-12), key
    _, runs = mlflow_runs(reproduced)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["data_md5"] for r in runs}) == 1  # trained on the same bytes


# float32 reaches float64's accuracy through run.py too, without diverging.
def test_run_py_finishes_the_modern_preset_in_float32(tmp_path: Path) -> None:
    out = tmp_path / "run"
    overrides = ["experiment=modern", "train.dtype=float32", "tracking.enabled=false"]
    run_app(ROOT, *overrides, f"hydra.run.dir={out}")
    metrics = json.loads((out / "reports/metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.97 and np.isfinite(metrics["final_cost"])


# train_accuracy in metrics.json is measured on the rows fitted on, not on all training rows.
def test_train_accuracy_in_the_metrics_is_on_the_rows_trained_on(tmp_path: Path) -> None:
    from sklearn.model_selection import train_test_split

    from digits_nn.config import parse
    from digits_nn.core.forward import predict
    from digits_nn.data.model_file import read_model
    from digits_nn.pipeline.prepared import prepare

    out = tmp_path / "run"
    overrides = ["train.validation_size=0.5", "train.optimizer=sgd", "train.iterations=300"]
    overrides += ["train.alpha=1.0", "tracking.enabled=false", f"hydra.run.dir={out}"]
    run_app(ROOT, *overrides)
    metrics = json.loads((out / "reports/metrics.json").read_text())
    network = read_model(out / "models/model.npz")
    split = prepare(parse({})).split  # the run's split: seed 0
    X_fit, _, y_fit, _ = train_test_split(
        split.X_train, split.y_train, test_size=0.5, random_state=0, stratify=split.y_train
    )
    on_fit = float(np.mean(predict(network, X_fit) == y_fit))
    on_all = float(np.mean(predict(network, split.X_train) == split.y_train))
    assert on_fit != on_all  # else this test could not tell them apart
    assert metrics["train_accuracy"] == on_fit


SECRET = "s3c@ret-do-not-write"  # an '@' in it: redaction must not cut it at the first


def files_holding(folder: Path, text: str) -> list[str]:
    return [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and ".git" not in p.parts and text.encode() in p.read_bytes()
    ]


# A password in tracking.uri would reach the run's params.yaml and Hydra's
# .hydra/{overrides,config,hydra}.yaml, and a sweep's job keys (folder names, sweep_job
# tags, summaries and its console lines).
@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_a_uri_with_credentials_is_refused_before_any_file_is_written(
    clone: Path, multirun: bool
) -> None:
    uri = f"http://alice:{SECRET}@127.0.0.1:9"
    where = ["-m", "seed=0,1", "hydra.sweep.dir=out"] if multirun else ["hydra.run.dir=out"]
    before = files_holding(clone, SECRET)  # this test file, in the clone
    result = run_app(clone, *where, "train.iterations=5", f"tracking.uri='{uri}'", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    [line] = output.strip().splitlines()
    assert "tracking.uri='http://alice:***@127.0.0.1:9' is not allowed" in line
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in line
    assert not (clone / "out").exists() and not (clone / "mlflow.db").exists()
    assert files_holding(clone, SECRET) == before and SECRET not in output


def test_a_password_in_mlflow_tracking_uri_reaches_no_file_line_tag_or_key(
    clone: Path, mlflow_server
) -> None:
    """MLFLOW_TRACKING_URI may carry credentials: a run and a sweep against a real
    server leave them in no file of their folders, no console line, param or tag."""
    url = mlflow_server(f"sqlite:///{clone / 'server.db'}", clone)
    uri = url.replace("http://", f"http://alice:{SECRET}@")
    env = {"MLFLOW_TRACKING_URI": uri}
    single = run_app(clone, "train.iterations=5", "hydra.run.dir=out/run", **env)
    sweep = run_app(
        clone, "-m", "seed=0,1", "train.iterations=5", "hydra.sweep.dir=out/sweep", **env
    )
    assert SECRET not in single.stdout + single.stderr + sweep.stdout + sweep.stderr
    assert (clone / "out/sweep/sweep_summary.md").is_file()
    assert files_holding(clone / "out", SECRET) == []
    runs = search_runs(url)
    assert len(runs) == 4  # the run, the sweep's parent and its two jobs
    for run_ in runs:
        assert SECRET not in str(run_.data.params) + str(run_.data.tags)
        assert run_.info.status == "FINISHED"
