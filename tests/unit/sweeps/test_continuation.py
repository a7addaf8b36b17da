"""Going on from an earlier budget: the state file, where a job finds it, and a continued
run that equals a standalone one, whichever way the state travelled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digits_nn.config import parse
from digits_nn.data.files import load_npz, write_npz
from digits_nn.errors import ArtifactError
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare
from digits_nn.pipeline.steps import Start
from digits_nn.sweeps import continuation, job
from digits_nn.sweeps.protocol import (
    CONTINUE_ENV,
    KEEP_STATE_ENV,
    RECORD_FILE,
    STATE_FILE,
    continue_from,
    job_key,
    parse_continue_from,
)
from helpers import hydra_job

# Softmax on relu with Nesterov momentum on mini-batches, L2, a decaying rate and
# validation rows: every part of the state matters.
CONFIG = {
    "model": {"hidden_size": 12, "activation": "relu", "output": "softmax", "init": "he"},
    "train": {
        "optimizer": "momentum",
        "nesterov": True,
        "batch_size": 64,
        "alpha": 0.05,
        "l2": 0.5,
        "schedule": "inverse_time",
        "decay": 0.1,
        "validation_size": 0.2,
    },
    "tracking": {"accuracy_every": 4},
}
OPTIONS = [
    f"{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
    for section, values in CONFIG.items()
    for key, value in values.items()
]


def raw(**train) -> dict:
    return {**CONFIG, "train": {**CONFIG["train"], **train}}


def test_a_state_file_round_trip_goes_on_to_the_same_bits(tmp_path: Path) -> None:
    short, long = parse(raw(iterations=5)), parse(raw(iterations=13))
    data = prepare(short)
    first = fit(short, data)
    md5 = continuation.write_state(tmp_path / STATE_FILE, Start(first.state, {4: 0.5}), short, 4)
    assert md5 == continuation.md5_of(tmp_path / STATE_FILE)
    start = continuation.read_state(tmp_path / STATE_FILE, long, 4)
    assert start.accuracy_curve == {4: 0.5} and start.state.iteration == 5
    went_on, straight = fit(long, data, start=start.state), fit(long, data)
    for a, b in zip(
        went_on.network.weights + went_on.network.biases,
        straight.network.weights + straight.network.biases,
    ):
        assert a.tobytes() == b.tobytes()
    assert went_on.cost_curve.tobytes() == straight.cost_curve.tobytes()
    assert went_on.validation_cost_curve.tobytes() == straight.validation_cost_curve.tobytes()


def test_a_state_is_refused_for_another_configuration_or_accuracy_spacing(tmp_path: Path) -> None:
    cfg = parse(raw(iterations=3))
    path = tmp_path / STATE_FILE
    continuation.write_state(path, Start(fit(cfg, prepare(cfg)).state, {}), cfg, 4)
    assert continuation.read_state(path, parse(raw(iterations=99)), 4).state.iteration == 3
    with pytest.raises(ArtifactError, match="another configuration"):
        continuation.read_state(path, parse(raw(iterations=9, alpha=0.06)), 4)
    with pytest.raises(ArtifactError, match="every 4 iterations, this run every 0"):
        continuation.read_state(path, cfg, 0)


def test_a_state_file_that_is_not_whole_is_refused_saying_what_is_wrong(tmp_path: Path) -> None:
    cfg = parse(raw(iterations=3))
    whole = tmp_path / "whole.npz"
    continuation.write_state(whole, Start(fit(cfg, prepare(cfg)).state, {}), cfg, 4)
    arrays = load_npz(whole)
    path = tmp_path / STATE_FILE
    changes = {
        "not a trainer state (no 'shuffles').": {"shuffles": None},
        "array 'iteration' is float64 with shape (); expected an integer array with 0"
        " dimension(s).": {"iteration": np.asarray(3.0)},
        "3 cost points for 4 iterations.": {"iteration": np.asarray(4)},
    }
    for message, changed in changes.items():
        corrupt = {k: v for k, v in (arrays | changed).items() if v is not None}
        write_npz(path, **corrupt)
        with pytest.raises(ArtifactError) as refused:
            continuation.read_state(path, cfg, 4)
        assert str(refused.value) == f"{path}: {message}"
    # Arrays beyond the network's own (two velocities a layer) are not read into the state.
    write_npz(path, **arrays, velocity4=np.zeros(3))
    assert len(continuation.read_state(path, cfg, 4).state.velocities) == 4


def test_the_continue_value_names_an_iteration_an_md5_and_maybe_a_run() -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    assert parse_continue_from(continue_from(500, md5, "r1")) == (500, md5, "r1")
    assert parse_continue_from(continue_from(500, md5, None)) == (500, md5, None)
    for bad in ("500", f"0:{md5}:", "500:xyz:", f"a:{md5}:"):
        with pytest.raises(ValueError):
            parse_continue_from(bad)


# ---- a continued job against a standalone one, with a real store ----------------------


def run_job(folder: Path, budget: int, monkeypatch, **env: str) -> dict:
    """One sweep job of OPTIONS at ``budget`` in ``folder``/<key>; its record."""
    overrides = [*OPTIONS, f"train.iterations={budget}"]
    for name in (CONTINUE_ENV, KEEP_STATE_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with hydra_job(folder / job_key(overrides), *overrides, multirun=True) as cfg:
        (record,) = job.run(cfg).records
    return record


def outputs(folder: Path) -> dict[str, bytes]:
    names = ["models/model.npz", "reports/cost.csv", "reports/metrics.json"]
    return {name: (folder / name).read_bytes() for name in [*names, "reports/predictions.csv"]}


def histories(client, run_id: str) -> dict:
    return {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        for key in ("train_cost", "validation_cost", "test_accuracy_curve")
    }


@pytest.mark.parametrize("transport", ["the earlier folder", "the earlier run", "none"])
def test_a_continued_job_equals_a_standalone_run_however_the_state_travelled(
    store_root: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    from mlflow import MlflowClient

    monkeypatch.chdir(store_root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sweep, alone = store_root / "sweep", store_root / "alone"
    first = run_job(sweep, 6, monkeypatch, **{KEEP_STATE_ENV: "1"})
    assert first["status"] == "FINISHED" and first["trained_iterations"] == 6
    assert (sweep / first["key"] / STATE_FILE).is_file()
    if transport != "the earlier folder":
        (sweep / first["key"] / STATE_FILE).unlink()
    run_id = None if transport == "none" else first["run_id"]
    request = continue_from(6, first["state_md5"], run_id)
    went_on = run_job(sweep, 15, monkeypatch, **{CONTINUE_ENV: request})
    standalone = run_job(alone, 15, monkeypatch)

    trained = 15 if transport == "none" else 9
    assert went_on["trained_iterations"] == trained and "state_md5" not in went_on
    assert json.loads((sweep / went_on["key"] / RECORD_FILE).read_text()) == went_on
    assert outputs(sweep / went_on["key"]) == outputs(alone / standalone["key"])
    for name in ("test_accuracy", "validation_accuracy", "cost", "params"):
        assert went_on[name] == standalone[name], name
    client = MlflowClient(tracking_uri=f"sqlite:///{store_root / 'mlflow.db'}")
    assert histories(client, went_on["run_id"]) == histories(client, standalone["run_id"])
    continued, alone_run = (client.get_run(r["run_id"]) for r in (went_on, standalone))
    assert continued.data.metrics == alone_run.data.metrics
    assert continued.data.params == alone_run.data.params
    assert [
        m.step for m in client.get_metric_history(continued.info.run_id, "test_accuracy_curve")
    ] == [4, 8, 12, 15]
    kept = [a.path for a in client.list_artifacts(first["run_id"], "continuation")]
    assert kept == ["continuation/trainer_state.npz"]


def test_a_state_whose_md5_differs_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    off = "tracking.enabled=false"
    OPTIONS.append(off)
    try:
        first = run_job(tmp_path, 4, monkeypatch, **{KEEP_STATE_ENV: "1"})
        request = continue_from(4, "f" * 32, None)
        went_on = run_job(tmp_path, 8, monkeypatch, **{CONTINUE_ENV: request})
    finally:
        OPTIONS.remove(off)
    assert first["status"] == went_on["status"] == "FINISHED"
    assert went_on["trained_iterations"] == 8 and went_on["started_at"] == 0
    assert "training from the start" in caplog.text and "md5" in caplog.text
    assert np.isfinite(went_on["validation_cost"])
