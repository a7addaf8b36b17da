"""``pipelines/run.py`` for one config, end to end: the same numbers as ``dvc repro``,
the modern preset in float32, and the train accuracy it reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, mlflow_runs, run_app


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


# Review (issue 14), finding 1: float32 reaches float64's accuracy.
def test_run_py_finishes_the_modern_preset_in_float32(tmp_path: Path) -> None:
    out = tmp_path / "run"
    overrides = ["experiment=modern", "train.dtype=float32", "tracking.enabled=false"]
    run_app(ROOT, *overrides, f"hydra.run.dir={out}")
    metrics = json.loads((out / "reports/metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.97 and np.isfinite(metrics["final_cost"])


# Review (issue 14), finding 10: train_accuracy in metrics.json.
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
