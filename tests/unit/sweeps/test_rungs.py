"""What a sweep by rungs reads from its own config before it launches anything: the
store it tags its runs in, and the base values a job's work is reckoned from. The steps
and the launcher are tests/unit/sweeps/test_halving.py's and test_study.py's."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from digits_nn.sweeps import rungs
from helpers import compose_config


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
