"""What a sweep by rungs reads from its own config before it launches anything (the
store it tags its runs in, and the base values a job's work is reckoned from), how it
launches a rung's steps, and how it tags their runs. The steps of a whole sweep are
tests/unit/sweeps/test_halving.py's and test_study.py's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from digits_nn.sweeps import rungs
from helpers import AnsweringLauncher, compose_config


@pytest.fixture
def in_store_root(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``store_root`` as the working folder, with no store named by the environment: a
    sweep's default store is then ``store_root``'s ``mlflow.db``."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(store_root)
    return store_root


# ---- the sweep's store --------------------------------------------------------------------


def test_the_sweeps_store_is_the_one_its_tracking_section_names(in_store_root: Path) -> None:
    # The composed config holds Hydra's node and sections a job's config has not (paths,
    # promote): only the tracking section is read.
    store = rungs.sweep_store(
        compose_config("tracking.experiment=halving", "tracking.curve_every=7")
    )
    assert store is not None
    assert store.uri == f"sqlite:///{in_store_root / 'mlflow.db'}"
    assert store.client.get_experiment(store.experiment_id).name == "halving"
    assert store.curve_every == 7


def test_a_sweep_reads_only_its_tracking_section(in_store_root: Path) -> None:
    # A job refuses its own bad train section; the sweep still tags the runs it has.
    composed = OmegaConf.merge(compose_config(), {"train": {"alpha": -1.0}})
    store = rungs.sweep_store(composed)
    assert store is not None and store.uri == f"sqlite:///{in_store_root / 'mlflow.db'}"
    assert store.client.get_experiment(store.experiment_id).name == "digits-nn"


@pytest.mark.parametrize(
    "overrides",
    [
        ["tracking.enabled=false"],  # tracking off: nothing to tag
        ["tracking.pictures=sometimes"],  # an invalid section: each job says what is wrong
        ["tracking.curve_every=-1"],
    ],
    ids=["off", "invalid-choice", "out-of-range"],
)
def test_no_store_when_tracking_is_off_or_its_section_is_invalid(
    in_store_root: Path, overrides: list[str]
) -> None:
    assert rungs.sweep_store(compose_config(*overrides)) is None
    assert not (in_store_root / "mlflow.db.lock").exists()  # no store was even opened


def test_no_store_when_the_named_store_cannot_be_opened(in_store_root: Path) -> None:
    missing = in_store_root / "missing" / "mlflow.db"
    assert rungs.sweep_store(compose_config(f"tracking.uri=sqlite:///{missing}")) is None
    assert not missing.parent.exists()


# ---- the work defaults -------------------------------------------------------------------


def test_the_work_defaults_are_the_configs_values_of_the_keys_that_size_a_job() -> None:
    composed = compose_config(
        "train.iterations=7",
        "model.hidden_size=9",
        "model.members=3",
        "data.augment.copies=2",
    )
    assert rungs.work_defaults(composed) == {
        "train.iterations": 7,
        "model.hidden_size": 9,
        "model.hidden_sizes": None,
        "model.members": 3,
        "data.augment.copies": 2,
    }


def test_the_work_defaults_of_the_base_config_are_conf_s_own() -> None:
    composed = compose_config("model.hidden_sizes=[20,10]")
    assert rungs.work_defaults(composed) == {
        "train.iterations": 3000,
        "model.hidden_size": None,
        "model.hidden_sizes": [20, 10],
        "model.members": 1,
        "data.augment.copies": 0,
    }


def test_a_key_missing_from_the_config_has_no_default() -> None:
    # A job's work is then reckoned from the project's own default (plan.work).
    partial = OmegaConf.create({"train": {"iterations": 40}, "model": {}})
    assert rungs.work_defaults(partial) == {
        "train.iterations": 40,
        "model.hidden_size": None,
        "model.hidden_sizes": None,
        "model.members": None,
        "data.augment.copies": None,
    }


# ---- launching the steps -----------------------------------------------------------------


class Numbering(AnsweringLauncher):
    """An answering launcher that also remembers the job number each batch starts at."""

    def __init__(self) -> None:
        super().__init__(score=lambda overrides: 0.5)
        self.starts: list[int] = []

    def launch(self, batch, initial_job_idx):
        self.starts.append(initial_job_idx)
        return super().launch(batch, initial_job_idx)


def alphas(batch: list[list[str]]) -> list[str]:
    return [overrides[0] for overrides in batch]


def steps_of_unequal_work() -> list[rungs.Step]:
    """Four steps, by the iterations each still has to run: 4, 10, 3 and 6."""
    earlier = {
        "overrides": ["train.alpha=3", "train.iterations=8"],
        "run_id": "r",
        "state_md5": "a" * 32,
    }
    return [
        rungs.Step(["train.alpha=1"], 4),
        rungs.Step(["train.alpha=2"], 10),
        rungs.Step(["train.alpha=3"], 11, earlier),  # goes on from 8: 3 still to run
        rungs.Step(["train.alpha=4", "train.iterations=6"], None),  # its own 6, alone
    ]


def test_the_steps_with_the_most_iterations_still_to_run_are_launched_first(
    tmp_path: Path,
) -> None:
    launcher = Numbering()
    steps = steps_of_unequal_work()
    reached = rungs.RungLauncher(launcher, tmp_path, {"train.iterations": 3000}).run(steps)
    assert [alphas(batch) for batch in launcher.batches] == [
        ["train.alpha=2", "train.alpha=4", "train.alpha=1", "train.alpha=3"]
    ]
    assert [r["key"] for r in reached] == [s.key for s in steps]  # in the order given


def test_the_work_of_a_step_is_what_it_still_has_to_run_at_the_configs_sizes() -> None:
    from digits_nn.sweeps import plan

    defaults = {"train.iterations": 3000, "model.hidden_size": 20}
    launcher = rungs.RungLauncher(None, Path("unused"), defaults)
    fresh, _, went_on, own = steps_of_unequal_work()
    assert launcher.work(fresh) == plan.work(["train.alpha=1", "train.iterations=4"], defaults)
    assert launcher.work(went_on) == plan.work(["train.alpha=3", "train.iterations=3"], defaults)
    assert launcher.work(own) == plan.work(["train.iterations=6"], defaults)
    assert launcher.work(own) != plan.work(["train.iterations=6"], {})  # the sizes count


def test_jobs_are_numbered_on_from_the_last_launched_across_batches_and_rungs(
    tmp_path: Path,
) -> None:
    launcher = Numbering()
    rung_launcher = rungs.RungLauncher(launcher, tmp_path, {}, batch_size=3)
    rung_launcher.run(steps_of_unequal_work())
    rung_launcher.run([rungs.Step(["train.alpha=5"], 2), rungs.Step(["train.alpha=6"], 2)])
    assert [len(batch) for batch in launcher.batches] == [3, 1, 2]
    assert launcher.starts == [0, 3, 4]
    assert rung_launcher.launched == 6


def test_a_rerun_reads_back_the_steps_that_finished_and_says_how_many(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=rungs.__name__)
    first = Numbering()
    rungs.RungLauncher(first, tmp_path, {}).run(steps_of_unequal_work())
    assert not [r for r in caplog.records if r.name == rungs.__name__]  # nothing to resume
    again = Numbering()
    more = [*steps_of_unequal_work(), rungs.Step(["train.alpha=5"], 2)]
    reached = rungs.RungLauncher(again, tmp_path, {}).run(more)
    assert [alphas(batch) for batch in again.batches] == [["train.alpha=5"]]
    assert [r["key"] for r in reached] == [s.key for s in more]
    assert [r.getMessage() for r in caplog.records if r.name == rungs.__name__] == [
        "resuming: 4 of 5 already finished"
    ]


# ---- tagging the runs ----------------------------------------------------------------------


def test_the_tags_go_on_the_run_of_each_record_that_has_one(store) -> None:
    run_id = store.client.create_run(store.experiment_id).info.run_id
    tagged = [
        ({"key": "a", "run_id": run_id}, {"halving.rung": "0", "halving.outcome": "promoted"}),
        ({"key": "b", "run_id": None}, {"halving.rung": "1"}),  # an untracked job
    ]
    rungs.tag_runs(store, tagged)
    rungs.tag_runs(None, tagged)  # tracking off: nowhere to tag
    tags = store.client.get_run(run_id).data.tags
    assert {k: v for k, v in tags.items() if k.startswith("halving.")} == {
        "halving.rung": "0",
        "halving.outcome": "promoted",
    }
