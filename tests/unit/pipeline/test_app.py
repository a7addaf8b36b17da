"""One whole run of a config, as ``pipelines/run.py`` runs it in-process."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import open_dict, read_write
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from digits_nn.config import parse
from digits_nn.errors import ArtifactError, ConfigError
from digits_nn.pipeline import app, numeric_platform
from helpers import compose_config, hydra_job


# The seed checked against an oracle the test computes itself, not the pipeline's helper.
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


# Choosing on the test rows would leak them into the choice.
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


# No secrets in run folders: Hydra writes .hydra/config.yaml, hydra.yaml and
# overrides.yaml before the task runs, and a sweep its multirun.yaml and job folders, so
# a URI with credentials is refused before that, when Hydra's run starts.
def test_a_run_with_credentials_in_its_config_stops_before_hydra_writes_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    composed = compose_config("tracking.uri='http://alice:s3cret@127.0.0.1:5000'")
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        app.CredentialsCheck().on_run_start(config=composed)
    assert stopped.value.code == 2
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("tracking.uri='http://alice:***@127.0.0.1:5000' is not allowed")
    assert "s3cret" not in line
    app.CredentialsCheck().on_run_start(config=compose_config("seed=1"))  # no credentials


def test_a_sweep_over_a_uri_with_credentials_stops_before_hydra_writes_anything() -> None:
    # A sweep's config is composed without its swept values: they are only in its overrides.
    composed = compose_config()
    with read_write(composed), open_dict(composed):
        composed.hydra.overrides.task = ["seed=0,1", "tracking.uri=http://a:s3cret@h:1,x"]
    with pytest.raises(SystemExit) as stopped:
        app.CredentialsCheck().on_multirun_start(config=composed)
    assert stopped.value.code == 2


# Without this check, data.test_size=0.98 train.validation_size=0.3 passes validation and
# ends in scikit-learn's traceback ("The least populated class in y has only 1 member").
def test_validation_rows_this_split_cannot_give_are_refused_before_any_work(
    tmp_path: Path,
) -> None:
    raw = {"data": {"test_size": 0.98}, "train": {"validation_size": 0.3}}
    cfg = parse({**raw, "tracking": {"enabled": False}})
    with pytest.raises(ConfigError) as refused:
        app.run(cfg, app.RunPlace(tmp_path, []))
    assert str(refused.value) == (
        "train.validation_size=0.3 is not allowed with this split (data.test_size=0.98,"
        " seed=0): its 35 training rows hold 1 row of digit 0, and validation rows are"
        " drawn per digit, which needs 2 of each (one to fit on, one to validate)."
        " Allowed: 0, or a smaller data.test_size."
    )
    assert list(tmp_path.iterdir()) == []  # no params.yaml, no output


# A one-line error, not a traceback with exit 1, for an output path that is no folder.
def test_an_output_path_that_cannot_be_written_fails_in_one_line(tmp_path: Path) -> None:
    raw = {"paths": {"model": "/dev/null/x.npz"}, "train": {"iterations": 2}}
    cfg = parse({**raw, "tracking": {"enabled": False}})
    with pytest.raises(ArtifactError) as refused:
        app.run(cfg, app.RunPlace(tmp_path, []))
    assert str(refused.value) == "/dev/null/x.npz: cannot be written (/dev/null is not a folder)."


class Terminal(io.StringIO):
    """A person's terminal as stderr: it says it is one."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("ci", [False, True], ids=["person", "ci"])
def test_run_py_shows_its_training_bar_to_a_person_at_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: bool
) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with hydra_job(tmp_path, "train.iterations=3", "tracking.enabled=false") as cfg:
        app.run_single(cfg)
    # The bar of the 3 iterations, drawn (then cleared) on the terminal; none under CI.
    assert ("train:   0%|" in terminal.getvalue() and "| 0/3 [" in terminal.getvalue()) is not ci
