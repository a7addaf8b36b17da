"""Successive halving: its space, who goes on, the rungs as launched, and resuming."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
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


def refusal(call, *args) -> str:
    """The whole one-line message of the ConfigError ``call(*args)`` raises."""
    with pytest.raises(ConfigError) as raised:
        call(*args)
    return str(raised.value)


PATIENCE_REFUSED = (
    "train.patience={} is not allowed with sweep=halving: null. Early stopping restores"
    " the best weights at each run's end, so a later rung cannot go on from it."
)
UNVALIDATED_REFUSED = (
    "sweep=halving ranks configurations on validation rows: set train.validation_size > 0"
    " (the preset holds out 0.15 of the training rows)."
)


def test_a_space_without_budgets_or_with_one_is_refused_in_one_line() -> None:
    assert refusal(halving.space_of, [["train.alpha=1.0"]]) == (
        "sweep=halving needs its budgets: list the rungs as whole numbers in"
        " hydra.sweeper.params['train.iterations'], e.g. 500,1500,4500."
    )
    one = halving.space_of([["train.alpha=1.0", "train.iterations=5"]])
    assert refusal(halving.check_budgets, one, 3) == (
        "sweep=halving with the single budget [5]: list at least two rungs"
        " in hydra.sweeper.params['train.iterations']."
    )
    for eta in (1, "3", True):
        assert refusal(halving.check_budgets, halving.space_of(grid_jobs()), eta) == (
            f"hydra.sweeper.eta={eta!r} is not allowed: a whole number >= 2, or null for"
            " the exhaustive sweep."
        )


def test_two_rungs_are_enough_to_halve() -> None:
    two = halving.space_of([["train.alpha=1.0", f"train.iterations={b}"] for b in (4, 12)])
    assert two.rungs == [4, 12]
    halving.check_budgets(two, 2)


def test_configurations_without_validation_rows_or_with_early_stopping_are_refused() -> None:
    space = halving.space_of(grid_jobs())
    deleted = halving.Space([["~train.validation_size"]], [1, 2])
    validated_base = {"train.validation_size": 0.15, "train.patience": None}
    assert refusal(halving.check_configurations, deleted, validated_base) == UNVALIDATED_REFUSED
    validated = {"train.validation_size": 0.15, "train.patience": None}
    halving.check_configurations(space, validated)
    unvalidated = {"train.validation_size": 0.0}
    assert refusal(halving.check_configurations, space, unvalidated) == UNVALIDATED_REFUSED
    one_without = halving.Space([["train.validation_size=0"], ["train.alpha=1"]], [1, 2])
    assert refusal(halving.check_configurations, one_without, validated) == UNVALIDATED_REFUSED
    patient = validated | {"train.patience": 3}
    assert refusal(halving.check_configurations, space, patient) == PATIENCE_REFUSED.format(3)


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("train.patience=3", "3"),
        ("+train.patience=3", "3"),  # Hydra's prefixes name the same key
        ("++train.patience=3", "3"),
        ("train.patience=a=b", "a=b"),  # the key ends at the first '='
    ],
)
def test_a_configurations_own_early_stopping_is_refused_however_it_is_written(
    override: str, shown: str
) -> None:
    space = halving.Space([["train.alpha=1"], ["train.alpha=2", override]], [1, 2])
    validated = {"train.validation_size": 0.15, "train.patience": None}
    assert refusal(halving.check_configurations, space, validated) == PATIENCE_REFUSED.format(shown)


@pytest.mark.parametrize(
    "override",
    [
        "train.patience=null",
        "+Xtrain.patience=3",
        "+tracking.note=train.patience=3",
        "~train.patience",  # a deletion leaves no early stopping (Hydra judges the rest)
    ],
    ids=["null", "another-key-ending-so", "a-value-naming-it", "a-deletion"],
)
def test_a_configuration_without_early_stopping_of_its_own_is_accepted(override: str) -> None:
    space = halving.Space([["train.alpha=1", override]], [1, 2])
    halving.check_configurations(space, {"train.validation_size": 0.15, "train.patience": None})


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
    # A record without a validation cost loses a tie to one with any cost.
    uncosted = [record("a", 0.90), record("b", 0.90, validation_cost=7.0)]
    assert [r["key"] for r in halving.promoted(uncosted, 1)] == ["b", "a"]


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


def test_each_rung_goes_on_from_the_last_and_the_summary_lists_every_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=halving.__name__)
    launcher = AnsweringLauncher()
    keys = run_halving(tmp_path, launcher)
    assert [r.getMessage() for r in caplog.records if r.name == halving.__name__] == [
        "rung 0: 6 configurations to 4 iterations",
        "rung 1: 3 configurations to 12 iterations",
        "rung 2: 1 configurations to 36 iterations",
    ]
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
    assert Counter(outcomes.values()) == {
        "promoted from rung 0": 3,
        "stopped at rung 0 (4 it)": 3,
        "promoted from rung 1": 1,
        "stopped at rung 1 (12 it)": 2,
        "reached the top rung": 1,
    }
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

    assert refusal(run_halving, tmp_path, Unvalidated()) == UNVALIDATED_REFUSED


def test_each_run_is_tagged_with_its_rung_and_outcome(store, tmp_path: Path) -> None:
    class Tracked(AnsweringLauncher):
        """Each job's record names a real run of ``store``, as a tracked job's does."""

        def launch(self, batch, initial_job_idx):
            returns = super().launch(batch, initial_job_idx)
            for answer in returns:
                [sent] = answer.return_value.records
                sent["run_id"] = store.client.create_run(store.experiment_id).info.run_id
            return returns

    launcher = Tracked(score)
    rung_launcher = RungLauncher(launcher, tmp_path, {"train.iterations": 3000})
    keys = halving.run(rung_launcher, halving.space_of(grid_jobs()), 2, store)
    for key in keys:
        record = records.read_record(tmp_path, key)
        tags = store.client.get_run(record["run_id"]).data.tags
        assert tags["halving.rung"] == str(record["rung"]), key
        assert tags["halving.outcome"] == record["outcome"], key
    top = records.read_record(tmp_path, keys[-1])
    assert store.client.get_run(top["run_id"]).data.tags["halving.rung"] == "2"


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
