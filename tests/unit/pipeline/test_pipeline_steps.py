"""The train step as a person and MLflow see it: the progress bar at a terminal, and the
curve a diverged training leaves in its run."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from digits_nn.config import parse
from digits_nn.core import kernel, trainer
from digits_nn.core.network import initialise
from digits_nn.core.trainer import Rows
from digits_nn.core.training import TrainOptions, Watch
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline import steps
from digits_nn.pipeline.prepared import prepare
from digits_nn.pipeline.recording import new_run
from digits_nn.pipeline.steps import RunContext, progress_bar, train_and_record
from digits_nn.tracking.runs import RunLog
from helpers import tiny_run_data


class RecordingBar:
    """Stands in for tqdm: records how the bar is made and every call made on it."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, **options) -> None:
        self.options, self.n, self.calls = options, 0, []
        RecordingBar.made.append(self)

    def __enter__(self) -> RecordingBar:
        return self

    def __exit__(self, *exc) -> None:
        self.calls.append("closed")

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.calls.append(("postfix", self.n, values, refresh))

    def update(self, k: int = 1) -> None:
        self.n += k
        self.calls.append(("update", k))


@pytest.fixture
def bars(monkeypatch) -> list[RecordingBar]:
    RecordingBar.made = []
    monkeypatch.setattr(steps, "tqdm", RecordingBar)
    return RecordingBar.made


# Mutation testing (docs/mutation.md).
def test_the_kernels_bar_counts_iterations_and_shows_the_cost_every_50(bars) -> None:
    """One bar of 120 iterations, left off the terminal when done; the cost read-out
    (four decimals, the cost of iteration 50, 100, and the last) refreshed every 50."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((12, 5)), np.eye(3)[rng.integers(0, 3, 12)]
    net = initialise([5, 4, 3], "uniform", 0)
    with progress_bar(120, True) as advance:
        options = TrainOptions(alpha=0.5, iterations=120)
        result = kernel.gradient_descent(net, X, Y, options, Watch(progress=advance))
    (bar,) = bars
    assert bar.options == {"total": 120, "desc": "train", "unit": "it", "leave": False}
    cost = result.cost_curve
    assert bar.calls == [
        ("postfix", 0, {"cost": f"{cost[49]:.4f}"}, False),
        ("update", 50),
        ("postfix", 50, {"cost": f"{cost[99]:.4f}"}, False),
        ("update", 50),
        ("postfix", 100, {"cost": f"{cost[119]:.4f}"}, False),
        ("update", 20),
        "closed",
    ]


def test_the_general_trainers_bar_is_the_same_bar(bars) -> None:
    """The redesign's one progress bar: the general trainer reports to it as the kernel
    does (it had a bar of its own, refreshed every iteration)."""
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((10, 4)), np.eye(3)[rng.integers(0, 3, 10)]
    net = initialise([4, 3, 3], "xavier", 1)
    options = TrainOptions(optimizer="sgd", batch_size=4, iterations=3)
    with progress_bar(3, True) as advance:
        result = trainer.train(net, Rows(X, Y), options, watch=Watch(progress=advance))
    (bar,) = bars
    assert bar.options == {"total": 3, "desc": "train", "unit": "it", "leave": False}
    cost = result.cost_curve
    assert bar.calls == [("postfix", 0, {"cost": f"{cost[2]:.4f}"}, False), ("update", 3), "closed"]


@pytest.mark.parametrize("progress", [True, False])
def test_training_shows_a_bar_only_when_asked(bars, tmp_path, progress: bool) -> None:
    cfg = parse({"train": {"iterations": 2}, "tracking": {"accuracy_every": 0}})
    ctx = RunContext(cfg, RunLog(), cfg.paths.under(tmp_path), progress=progress)
    train_and_record(ctx, prepare(cfg))
    assert [bar.n for bar in bars] == ([2] if progress else [])


def test_a_diverged_training_keeps_its_curve_in_the_run_and_writes_no_model(
    store, tmp_path
) -> None:
    # float32 cannot hold alpha = 1e100: the first update overflows, the cost turns NaN.
    cfg = parse({"train": {"dtype": "float32", "alpha": 1e100, "iterations": 5}})
    outputs = cfg.paths.under(tmp_path)
    with (
        np.errstate(all="ignore"),
        pytest.raises(TrainingDiverged),
        new_run(store, cfg, tiny_run_data()) as run,
    ):
        train_and_record(RunContext(cfg, run, outputs), prepare(cfg))
    logged = store.client.get_run(run.run_id)
    assert logged.info.status == "FAILED" and "diverged" in logged.data.tags["error"]
    assert [m.step for m in store.client.get_metric_history(run.run_id, "train_cost")] == [1]
    assert not (tmp_path / "models").exists()


# Picking the newest run with the model's md5 instead would put the evaluate stage's
# metrics and files on a later run.py run of the same config.
def test_the_evaluate_stage_records_into_the_run_the_train_stage_handed_over(
    store, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    from digits_nn.config import PathsConfig
    from digits_nn.data.model_file import write_model
    from digits_nn.pipeline.provenance import md5
    from digits_nn.tracking import runs

    paths = PathsConfig().under(tmp_path)
    cfg = dataclasses.replace(parse({}), paths=paths)
    write_model(paths.model, initialise([64, 3, 10], "uniform", 0))
    with runs.run(store, tags={"model_md5": md5(paths.model)}) as trained:
        pass
    steps.hand_over(paths, trained)
    with runs.run(store, tags={"model_md5": md5(paths.model)}):
        pass  # a newer run of the same model (pipelines/run.py, same config)

    def evaluated() -> str | None:
        with steps.run_to_evaluate(store, cfg, tiny_run_data()) as run:
            return run.run_id

    assert steps.handed_over(paths, store) == (trained.run_id, "")  # nothing to say why not
    assert evaluated() == trained.run_id
    assert store.client.get_run(trained.run_id).info.status == "FINISHED"
    # The model changed since (checked out from elsewhere): no guess, a run of its own.
    write_model(paths.model, initialise([64, 3, 10], "uniform", 1))
    with caplog.at_level("WARNING"):
        own = evaluated()
    assert own not in (None, trained.run_id)
    assert store.client.get_run(own).data.tags["model_md5"] == md5(paths.model)
    assert [r.getMessage() for r in caplog.records if r.name == steps.log.name] == [
        "evaluate records into a run of its own:"
        f" {paths.model} is not the model the train stage's run {trained.run_id} trained"
    ]
    # No handover at all (the train stage restored from DVC's cache), or a run the store
    # does not hold (another MLFLOW_TRACKING_URI).
    steps.handover_file(paths).unlink()
    assert evaluated() not in (None, trained.run_id, own)
    assert "the train stage handed over no run" in caplog.text
    steps.handover_file(paths).write_text(
        json.dumps({"run_id": "0" * 32, "model_md5": md5(paths.model)})
    )
    assert evaluated() not in (None, trained.run_id, own)
    assert f"the train stage's run {'0' * 32} is not in {store.uri}" in caplog.text
    assert steps.handover_file(paths).name == ".model.run.json"  # git-ignored with models/


def test_a_tracked_training_logs_its_test_accuracy_every_accuracy_every_iterations(
    store, tmp_path
) -> None:
    from digits_nn.pipeline.fit import accuracy_on_test, fit

    cfg = parse({"train": {"iterations": 7}, "tracking": {"accuracy_every": 3}})
    data = prepare(cfg)
    expected: dict[int, float] = {}
    fit(cfg, data, Watch(3, lambda i, net: expected.update({i: accuracy_on_test(net, data.split)})))
    with new_run(store, cfg, tiny_run_data()) as run:
        train_and_record(RunContext(cfg, run, cfg.paths.under(tmp_path)), data)
    history = store.client.get_metric_history(run.run_id, "test_accuracy_curve")
    assert {m.step: m.value for m in history} == expected
    assert sorted(expected) == [3, 6, 7]
