"""conf/ and what is composed from it: params.yaml in sync, the schema's keys, presets."""

import pytest
import yaml
from omegaconf import OmegaConf

from digits_nn import config
from helpers import ROOT, compose_config, task_config


@pytest.fixture(scope="module")
def composed():
    return OmegaConf.to_container(task_config(), resolve=True)


def test_params_yaml_is_conf_composed_without_overrides(composed):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert composed == params, "params.yaml drifted from conf/; regenerate it (make params)"


def test_params_yaml_passes_validation():
    cfg = config.load(ROOT / "params.yaml")
    assert config.to_dict(cfg) == config.to_dict(config.parse({}))


def test_composed_conf_has_exactly_the_schema_keys(composed):
    schema = config.to_dict(config.parse({}))
    assert set(composed) == set(schema)
    for section, value in schema.items():
        if isinstance(value, dict):
            assert set(composed[section]) == set(value), section


# The Optuna search runs two trials at a time, not one after the other.
def test_optuna_preset_runs_its_trials_two_at_a_time() -> None:
    cfg = compose_config("hparams_search=optuna")
    assert cfg.hydra.sweeper.n_jobs == 2  # trials asked for per batch...
    assert "joblib" in cfg.hydra.launcher._target_  # ...and a launcher that runs them
    assert cfg.hydra.launcher.n_jobs == 2  # in parallel, two at a time


def test_the_sweep_callback_is_the_sweeps_package_one() -> None:
    target = compose_config().hydra.callbacks.sweep._target_
    module, _, name = target.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name).__module__ == module


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
)
def test_every_preset_composes_and_validates(name: str) -> None:
    config.parse(task_config(f"experiment={name}"))


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
)
def test_a_runs_params_yaml_is_the_config_as_omegaconf_writes_it(name: str) -> None:
    cfg = config.parse(task_config(f"experiment={name}"))
    assert config.to_yaml(cfg) == OmegaConf.to_yaml(OmegaConf.structured(cfg))


def test_the_reference_grid_logs_every_tenth_point_of_its_curves_and_a_run_every_point() -> None:
    assert config.parse(task_config()).tracking.curve_every == 1
    for sweep in ("grid", "grid_validated"):
        assert config.parse(task_config(f"sweep={sweep}")).tracking.curve_every == 10


def test_the_best_preset_is_the_modern_one_augmented_scaled_globally_and_five_strong() -> None:
    best = config.parse(task_config("experiment=best"))
    modern = config.parse(task_config("experiment=modern"))
    assert best.model.members == 5
    assert best.data.scaling == "global"
    augment = best.data.augment
    assert (augment.copies, augment.rotation, augment.shift, augment.zoom) == (8, 12.0, 1.0, 0.1)
    assert best.train.dtype == "float32"
    # Everything else is the modern preset's, l2 included (not rescaled for the copies).
    best.model.members, best.data, best.train.dtype = 1, modern.data, modern.train.dtype
    assert config.to_dict(best) == config.to_dict(modern)
