"""The config schema, its validation, and params.yaml against conf/."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from digits_nn import config
from digits_nn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_empty_mapping_gives_the_classic_defaults():
    cfg = config.parse({})
    assert cfg.seed == 0
    assert cfg.data.test_size == 0.4
    assert cfg.model.hidden_size == 30
    assert cfg.model.hidden_sizes is None
    assert cfg.model.activation == "sigmoid"
    assert cfg.model.init == "uniform"
    assert cfg.train.alpha == 0.25
    assert cfg.train.iterations == 3000
    assert cfg.train.dtype == "float64"
    assert cfg.model.layer_sizes(64, 10) == [64, 30, 10]


def test_hidden_sizes_replace_hidden_size():
    cfg = config.parse({"model": {"hidden_sizes": [100, 50], "hidden_size": 7}})
    assert cfg.model.layer_sizes(64, 10) == [64, 100, 50, 10]
    assert config.parse({"model": {"hidden_size": 7}}).model.layer_sizes(64, 10) == [64, 7, 10]


def test_valid_overrides_are_kept():
    cfg = config.parse({"seed": 7, "train": {"alpha": 0.1, "iterations": 10, "dtype": "float32"}})
    assert (cfg.seed, cfg.train.alpha, cfg.train.iterations, cfg.train.dtype) == (
        7,
        0.1,
        10,
        "float32",
    )
    assert cfg.data.test_size == 0.4  # untouched sections keep their defaults


INVALID = [
    ("alpha-text", {"train": {"alpha": "abc"}}, "train.alpha", "a number"),
    ("alpha-negative", {"train": {"alpha": -1}}, "train.alpha", "> 0"),
    ("alpha-zero", {"train": {"alpha": 0}}, "train.alpha", "> 0"),
    ("alpha-nan", {"train": {"alpha": float("nan")}}, "train.alpha", "finite"),
    ("alpha-inf", {"train": {"alpha": float("inf")}}, "train.alpha", "finite"),
    ("alpha-none", {"train": {"alpha": None}}, "train.alpha", "a number"),
    ("l2-nan", {"train": {"l2": float("nan")}}, "train.l2", "a finite number >= 0"),
    ("l2-inf", {"train": {"l2": float("inf")}}, "train.l2", "a finite number >= 0"),
    (
        "decay-nan",
        {"train": {"schedule": "inverse_time", "decay": float("nan")}},
        "train.decay",
        "a finite number > 0",
    ),
    (
        "decay-inf",
        {"train": {"schedule": "inverse_time", "decay": float("inf")}},
        "train.decay",
        "a finite number > 0",
    ),
    ("iterations-zero", {"train": {"iterations": 0}}, "train.iterations", ">= 1"),
    ("iterations-negative", {"train": {"iterations": -5}}, "train.iterations", ">= 1"),
    ("iterations-fraction", {"train": {"iterations": 2.5}}, "train.iterations", "whole number"),
    ("iterations-text", {"train": {"iterations": "x"}}, "train.iterations", "whole number"),
    ("iterations-bool", {"train": {"iterations": True}}, "train.iterations", "whole number"),
    ("hidden-size-zero", {"model": {"hidden_size": 0}}, "model.hidden_size", ">= 1"),
    ("hidden-size-negative", {"model": {"hidden_size": -3}}, "model.hidden_size", ">= 1"),
    ("hidden-size-fraction", {"model": {"hidden_size": 1.5}}, "model.hidden_size", "whole"),
    ("hidden-sizes-empty", {"model": {"hidden_sizes": []}}, "model.hidden_sizes", "non-empty"),
    ("hidden-sizes-zero", {"model": {"hidden_sizes": [10, 0]}}, "model.hidden_sizes", ">= 1"),
    ("hidden-sizes-text", {"model": {"hidden_sizes": [10, "a"]}}, "model.hidden_sizes", "list"),
    ("hidden-sizes-nested", {"model": {"hidden_sizes": [[1]]}}, "model.hidden_sizes", "list"),
    ("hidden-sizes-mapping", {"model": {"hidden_sizes": [{"a": 1}]}}, "model.hidden_sizes", "list"),
    ("test-size-zero", {"data": {"test_size": 0}}, "data.test_size", "between 0 and 1"),
    ("test-size-one", {"data": {"test_size": 1}}, "data.test_size", "between 0 and 1"),
    ("test-size-above", {"data": {"test_size": 1.5}}, "data.test_size", "between 0 and 1"),
    ("test-size-negative", {"data": {"test_size": -0.1}}, "data.test_size", "between 0 and 1"),
    ("activation", {"model": {"activation": "tanhh"}}, "model.activation", "sigmoid"),
    ("init", {"model": {"init": "normal"}}, "model.init", "uniform"),
    ("dtype", {"train": {"dtype": "float16"}}, "train.dtype", "float64, float32"),
    ("seed-negative", {"seed": -1}, "seed", "0 to 2**32 - 1"),
    ("seed-too-large", {"seed": 2**32}, "seed", "0 to 2**32 - 1"),
    ("unknown-top-level", {"foo": 1}, "foo", "Allowed keys"),
    ("unknown-in-section", {"train": {"foo": 1}}, "train.foo", "Allowed keys: alpha"),
    ("tracking-enabled-text", {"tracking": {"enabled": "maybe"}}, "tracking.enabled", "true or"),
    ("tracking-uri-list", {"tracking": {"uri": [1]}}, "tracking.uri", "null or a string"),
    ("tracking-experiment-blank", {"tracking": {"experiment": " "}}, "tracking.experiment", "name"),
    ("hidden-sizes-not-a-list", {"model": {"hidden_sizes": "x"}}, "model.hidden_sizes", "list"),
    ("test-size-text", {"data": {"test_size": "most"}}, "data.test_size", "a number"),
    ("seed-fraction", {"seed": 1.5}, "seed", "a whole number"),
]


@pytest.mark.parametrize(
    ("raw", "key", "allowed"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_value_raises_config_error_naming_key_and_allowed(raw, key, allowed):
    with pytest.raises(ConfigError) as info:
        config.parse(raw)
    message = str(info.value)
    assert message.startswith(key), message
    assert allowed in message


def test_section_that_is_not_a_mapping_raises_config_error():
    with pytest.raises(ConfigError, match="mapping"):
        config.parse({"train": 3})


def test_every_range_error_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        config.parse({"train": {"alpha": 0, "iterations": 0}, "data": {"test_size": 2}})
    message = str(info.value)
    for key in ("train.alpha", "train.iterations", "data.test_size"):
        assert key in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "missing"),
        ("train:\n  alpha: [0.25\n  iterations: 3\n", "not valid YAML"),
        ("- seed\n- train\n", "mapping"),
    ],
    ids=["missing", "invalid-yaml", "yaml-list"],
)
def test_load_names_the_file_and_what_is_wrong(tmp_path, content, reason):
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=reason) as info:
        config.load(path)
    assert str(path) in str(info.value)


def test_load_validates_the_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  alpha: -1\n")
    with pytest.raises(ConfigError, match=r"train\.alpha"):
        config.load(path)
    path.write_text("seed: 3\ntrain:\n  alpha: 0.5\n")
    cfg = config.load(path)
    assert (cfg.seed, cfg.train.alpha) == (3, 0.5)


@pytest.fixture(scope="module")
def composed():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config")
    return OmegaConf.to_container(cfg, resolve=True)


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


def test_flatten_gives_dotted_keys():
    flat = config.flatten(config.parse({"train": {"alpha": 0.5}}))
    assert flat["train.alpha"] == 0.5
    assert flat["seed"] == 0
    assert flat["model.hidden_sizes"] is None
    assert flat["paths.model"] == "models/model.npz"
    assert all(not isinstance(v, dict) for v in flat.values())
    schema = config.to_dict(config.parse({}))
    expected = {
        f"{section}.{key}" if isinstance(value, dict) else section
        for section, value in schema.items()
        for key in (value if isinstance(value, dict) else [None])
    }
    # Unset options that act only under another choice are left out (issue 14, item 9).
    assert set(flat) == expected - {"train.momentum", "train.nesterov", "train.decay"}
