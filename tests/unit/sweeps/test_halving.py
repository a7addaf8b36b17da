"""Successive halving: its space, who goes on, the rungs as launched, and resuming."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from digits_nn.errors import ConfigError
from digits_nn.sweeps import halving, records
from digits_nn.sweeps.protocol import (
    CONTINUE_ENV,
    KEEP_STATE_ENV,
    job_key,
    parse_continue_from,
)
from digits_nn.sweeps.rungs import RungLauncher, Step
from helpers import AnsweringLauncher

ALPHAS, HIDDEN, RUNGS = ("0.5", "1.0", "2.0"), ("10", "30"), (4, 12, 36)


def grid_jobs() -> list[list[str]]:
    return [
        [f"train.alpha={a}", f"model.hidden_size={h}", f"train.iterations={b}"]
        for a, h, b in itertools.product(ALPHAS, HIDDEN, RUNGS)
    ]


def test_the_space_is_the_configurations_of_the_grid_and_its_budgets_the_rungs() -> None:
    space = halving.space_of(grid_jobs())
    assert space.rungs == [4, 12, 36]
    assert space.configurations[0] == ["train.alpha=0.5", "model.hidden_size=10"]
    assert len(space.configurations) == 6


def test_a_space_without_budgets_or_with_one_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"list the rungs"):
        halving.space_of([["train.alpha=1.0"]])
    one = halving.space_of([["train.alpha=1.0", "train.iterations=5"]])
    with pytest.raises(ConfigError, match="at least two rungs"):
        halving.check_budgets(one, 3)
    for eta in (1, "3", True):
        with pytest.raises(ConfigError, match=r"hydra.sweeper.eta=.* is not allowed"):
            halving.check_budgets(halving.space_of(grid_jobs()), eta)


def test_configurations_without_validation_rows_or_with_early_stopping_are_refused() -> None:
    space = halving.space_of(grid_jobs())
    validated = {"train.validation_size": 0.15, "train.patience": None}
    halving.check_configurations(space, validated)
    with pytest.raises(ConfigError, match=r"train.validation_size > 0"):
        halving.check_configurations(space, {"train.validation_size": 0.0})
    one_without = halving.Space([["train.validation_size=0"], ["train.alpha=1"]], [1, 2])
    with pytest.raises(ConfigError, match=r"train.validation_size > 0"):
        halving.check_configurations(one_without, validated)
    with pytest.raises(ConfigError, match=r"train.patience=3 is not allowed with sweep=halving"):
        halving.check_configurations(space, validated | {"train.patience": 3})


def record(key: str, accuracy: float | None, status: str = "FINISHED", **extra) -> dict:
    return {"key": key, "status": status, "validation_accuracy": accuracy, **extra}


def test_the_best_nth_go_on_ties_to_the_lower_validation_cost_then_the_earlier() -> None:
    reached = [
        record("a", 0.90, validation_cost=0.5),
        record("b", 0.95, validation_cost=0.9),
        record("c", 0.90, validation_cost=0.4),
        record("d", 0.90, validation_cost=0.4),
        record("e", None, status="FAILED"),
        record("f", 0.10),
    ]
    assert [r["key"] for r in halving.promoted(reached, 3)] == ["b", "c"]
    assert [r["key"] for r in halving.promoted(reached, 2)] == ["b", "c", "d"]
    assert [r["key"] for r in halving.promoted(reached, 10)] == ["b"]  # at least one
    assert halving.promoted([record("e", None, status="FAILED")], 3) == []


# ---- the rungs, launched by a launcher that only answers --------------------------------


def score(overrides: list[str]) -> float:
    """A made-up validation accuracy: best with alpha 1.0 and hidden 30, rising with
    the budget."""
    values = dict(o.split("=") for o in overrides)
    alpha = {"0.5": 0.5, "1.0": 0.9, "2.0": 0.7}[values["train.alpha"]]
    hidden = 0.05 if values["model.hidden_size"] == "30" else 0.0
    return alpha + hidden + int(values["train.iterations"]) / 1000


def env_of(overrides: list[str], name: str) -> str | None:
    prefix = f"++hydra.job.env_set.{name}="
    found = [o[len(prefix) :].strip("'") for o in overrides if o.startswith(prefix)]
    return found[0] if found else None


def run_halving(sweep_dir: Path, launcher: AnsweringLauncher) -> list[str]:
    launcher.score = score
    rung_launcher = RungLauncher(launcher, sweep_dir, {"train.iterations": 3000})
    return halving.run(rung_launcher, halving.space_of(grid_jobs()), 2, None)


def test_each_rung_goes_on_from_the_last_and_the_summary_lists_every_run(tmp_path: Path) -> None:
    launcher = AnsweringLauncher()
    keys = run_halving(tmp_path, launcher)
    assert [len(batch) for batch in launcher.batches] == [6, 3, 1]
    assert records.read_jobs(tmp_path) == keys and len(keys) == 10
    first, second, third = launcher.batches
    assert all(env_of(o, KEEP_STATE_ENV) == "1" and env_of(o, CONTINUE_ENV) is None for o in first)
    # Rung 1: the three best of rung 0, each going on from its own run at 4 iterations.
    assert {tuple(o[:2]) for o in second} == {
        ("train.alpha=1.0", "model.hidden_size=30"),
        ("train.alpha=1.0", "model.hidden_size=10"),
        ("train.alpha=2.0", "model.hidden_size=30"),
    }
    for overrides in second:
        iteration, md5, run_id = parse_continue_from(env_of(overrides, CONTINUE_ENV))
        earlier = job_key([*overrides[:2], "train.iterations=4"])
        assert (iteration, md5, run_id) == (4, "0" * 32, f"run-{earlier}")
    (top,) = third
    assert top[:3] == ["train.alpha=1.0", "model.hidden_size=30", "train.iterations=36"]
    assert env_of(top, KEEP_STATE_ENV) is None  # nothing goes on from the top rung
    outcomes = {k: records.read_record(tmp_path, k)["outcome"] for k in keys}
    assert sorted(outcomes.values()).count("reached the top rung") == 1
    assert sum(o.startswith("stopped at rung 0") for o in outcomes.values()) == 3
    assert records.read_record(tmp_path, keys[-1])["rung"] == 2


def test_a_rerun_launches_only_what_did_not_finish(tmp_path: Path) -> None:
    interrupted = AnsweringLauncher()
    interrupted.stop_after = 1  # rung 0 finishes, then Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        run_halving(tmp_path, interrupted)
    rerun = AnsweringLauncher()
    run_halving(tmp_path, rerun)
    assert [len(batch) for batch in rerun.batches] == [3, 1]
    again = AnsweringLauncher()
    run_halving(tmp_path, again)
    assert again.batches == []


def test_a_rung_without_validation_accuracy_is_refused(tmp_path: Path) -> None:
    class Unvalidated(AnsweringLauncher):
        def launch(self, batch, initial_job_idx):
            returns = super().launch(batch, initial_job_idx)
            for answer in returns:
                answer.return_value.records[0]["validation_accuracy"] = None
            return returns

    with pytest.raises(ConfigError, match=r"train.validation_size > 0"):
        run_halving(tmp_path, Unvalidated())


def test_a_step_goes_on_only_from_an_earlier_run_that_kept_its_state() -> None:
    earlier = {"overrides": ["train.alpha=1.0", "train.iterations=4"], "run_id": "r"}
    assert Step(["train.alpha=1.0"], 12, earlier).started_at == 0  # a grid's run: no state
    earlier["state_md5"] = "a" * 32
    step = Step(["train.alpha=1.0"], 12, earlier, keep=False)
    assert step.started_at == 4 and step.key == "train.alpha=1.0,train.iterations=12"
    assert step.launch_overrides() == [
        "train.alpha=1.0",
        "train.iterations=12",
        "hydra.sweep.subdir='train.alpha=1.0,train.iterations=12'",
        f"++hydra.job.env_set.{CONTINUE_ENV}='4:{'a' * 32}:r'",
    ]


def test_the_summary_describes_the_rungs(tmp_path: Path) -> None:
    run_halving(tmp_path, AnsweringLauncher())
    rows = [dict(r, job=r["key"]) for r in records.sweep_records(tmp_path)]
    (text,) = halving.describe(rows)
    assert "| 0 | 4 | 6 | 3 |" in text and "| 1 | 12 | 3 | 2 |" in text
    assert "| 2 | 36 | 1 | 0 |" in text
    top = "model.hidden_size=30,train.alpha=1.0,train.iterations=36"
    assert f"Reached the top rung: {top}." in text
    assert halving.describe([{"key": "x", "status": "FINISHED"}]) == []
