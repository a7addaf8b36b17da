"""One whole run of a config, as ``pipelines/run.py`` runs it in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from digits_nn.config import parse
from digits_nn.pipeline import app, numeric_platform
from helpers import hydra_job


# Issue 15: each training option checked against an oracle the test computes itself.
def test_run_py_splits_the_data_with_the_configured_seed(tmp_path: Path) -> None:
    seed = 7
    overrides = (f"seed={seed}", "train.iterations=3", "tracking.enabled=false")
    with hydra_job(tmp_path, *overrides) as cfg:
        app.run_single(cfg)
    with open(tmp_path / "reports/predictions.csv") as handle:
        actual = [int(row["actual"]) for row in csv.DictReader(handle)]
    digits = load_digits()
    _, test_rows = train_test_split(np.arange(len(digits.target)), test_size=0.4, random_state=seed)
    assert actual == digits.target[test_rows].tolist()
    _, seed0_rows = train_test_split(np.arange(len(digits.target)), test_size=0.4, random_state=0)
    assert actual != digits.target[seed0_rows].tolist()  # the oracle can tell the seeds apart


# Issue 15, mutation 9: choosing on the test rows would leak them into the choice.
def test_a_runs_score_is_validation_accuracy_when_there_are_validation_rows() -> None:
    def outcome(test: float, validation: float | None) -> app.Outcome:
        return app.Outcome(parse({}), test, validation, None, np.ones(1))

    assert outcome(0.99, 0.80).score == 0.80
    assert outcome(0.99, None).score == 0.99


def test_a_run_writes_into_its_own_folder_and_returns_what_it_measured(tmp_path: Path) -> None:
    cfg = parse({"train": {"iterations": 3}, "tracking": {"enabled": False}})
    outcome = app.run(cfg, app.RunPlace(tmp_path, ["train.iterations=3"]))
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    assert written == [
        "models/model.npz",
        "params.yaml",
        "reports/classes.json",
        "reports/cost.csv",
        "reports/metrics.json",
        "reports/platform.json",
        "reports/plots/confusion.png",
        "reports/plots/cost.png",
        "reports/plots/misclassified.png",
        "reports/plots/weights.png",
        "reports/predictions.csv",
    ]
    written_platform = json.loads((tmp_path / "reports/platform.json").read_text())
    assert written_platform == numeric_platform.recorded(numeric_platform.describe())
    assert outcome.run_id is None and outcome.validation_accuracy is None
    assert len(outcome.cost) == 3 and outcome.score == outcome.test_accuracy
    assert parse(yaml.safe_load((tmp_path / "params.yaml").read_text())) == cfg
