"""The config schema and its validation: every refusal names the key, the value and what
is allowed."""

# ruff: noqa: E501 - the refusal messages are checked whole, one a line.

import pytest

from digits_nn import config
from digits_nn.core import activations
from digits_nn.data import steps
from digits_nn.data.digits import N_ROWS
from digits_nn.errors import ConfigError
from digits_nn.pipeline.prepared import prepare
from helpers import ROOT, task_config


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
    assert cfg.model.layer_sizes() == [64, 30, 10]


def test_hidden_sizes_replace_hidden_size():
    cfg = config.parse({"model": {"hidden_sizes": [100, 50]}})
    assert cfg.model.layer_sizes() == [64, 100, 50, 10] and cfg.model.hidden_size is None
    assert "model.hidden_size" not in config.flatten(cfg)  # it took no effect
    assert config.parse({"model": {"hidden_size": 7}}).model.layer_sizes() == [64, 7, 10]
    assert config.parse({"model": {"hidden_size": None}}).model.hidden_size == 30


# Where model.hidden_sizes overrides it, an accepted model.hidden_size is logged and drawn
# as a heatmap axis: two identical 64-50-10 trainings would be labelled 10 and 30.
def test_setting_hidden_size_where_hidden_sizes_replaces_it_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"model": {"hidden_sizes": [50], "hidden_size": 10}})
    assert str(refused.value) == (
        "model.hidden_size=10 is not allowed: null when model.hidden_sizes is set (the"
        " hidden layers are [50]; it would have no effect)."
    )
    # conf/ leaves it unset, so the command line sets either one alone, or both.
    assert config.parse(task_config("model.hidden_sizes=[64,50]")).model.hidden_size is None
    assert config.parse(task_config("model.hidden_size=10")).model.layer_sizes()[1] == 10
    with pytest.raises(ConfigError, match=r"^model\.hidden_size=10 is not allowed"):
        config.parse(task_config("model.hidden_size=10", "model.hidden_sizes=[50]"))


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


def test_load_puts_key_value_overrides_on_top_of_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\ntrain:\n  alpha: 0.5\n  iterations: 7\n")
    cfg = config.load(path, ["train.alpha=1.0", "seed=4"])
    assert (cfg.seed, cfg.train.alpha, cfg.train.iterations) == (4, 1.0, 7)


# Each override that is not key=value: no "=", or nothing before the first "=".
@pytest.mark.parametrize("override", ["seed", "=1", " =1", "=seed=1"])
def test_a_malformed_override_is_refused_in_one_line(tmp_path, override):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\n")
    with pytest.raises(ConfigError) as refused:
        config.load(path, ["train.alpha=1.0", override, "=2"])
    assert str(refused.value) == f"override {override!r} is not allowed: key=value, e.g. seed=1."


def test_flatten_gives_dotted_keys():
    flat = config.flatten(config.parse({"train": {"alpha": 0.5}}))
    assert flat["train.alpha"] == 0.5
    assert flat["seed"] == 0
    assert flat["model.hidden_sizes"] is None
    assert flat["paths.model"] == "models/model.npz"
    assert all(not isinstance(v, dict) for v in flat.values())
    assert flat["data.augment.copies"] == 0  # sections within sections, dotted all the way

    def leaves(node: dict, prefix: str = "") -> set[str]:
        return set().union(
            *(
                leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
                for key, value in node.items()
            )
        )

    expected = leaves(config.to_dict(config.parse({})))
    # Unset options that act only under another choice are left out.
    unset = {"train.momentum", "train.nesterov", "train.decay", "peer"}
    unset |= {"data.folds", "data.fold", "data.repeat"}
    assert set(flat) == expected - unset


def test_unflatten_gives_back_the_config_a_runs_params_came_from():
    cfg = config.parse(
        {"model": {"hidden_sizes": [100, 50]}, "train": {"optimizer": "momentum"}, "seed": 3}
    )
    assert config.parse(config.unflatten(config.flatten(cfg))) == cfg


# ---- every refusal, word for word (mutation testing, docs/mutation.md) -------------

# The smallest and largest values each key allows: every bound is inclusive or exclusive
# exactly as its message says.
BOUNDARIES = [
    {"seed": 0},
    {"seed": 2**32 - 1},
    {"data": {"test_size": 0.0056}},
    {"data": {"test_size": 0.9944}},
    {"model": {"hidden_size": 1}},
    {"model": {"hidden_sizes": [1]}},
    {"train": {"alpha": 1e-300}},
    {"train": {"iterations": 1}},
    {"train": {"optimizer": "sgd", "batch_size": 1}},
    {"train": {"optimizer": "momentum", "momentum": 0.0}},
    {"train": {"optimizer": "momentum", "momentum": 0.999}},
    {"train": {"l2": 0.0}},
    {"train": {"schedule": "inverse_time", "decay": 1e-300}},
    {"train": {"validation_size": 0.0}},
    {"train": {"validation_size": 0.9907, "patience": 1}},
    {"tracking": {"accuracy_every": 0}},
    {"data": {"scaling": "global"}},
    {"data": {"augment": {"copies": 1, "rotation": 180.0, "shift": 4.0, "zoom": 1.0}}},
    {"data": {"augment": {"copies": 1, "zoom": 1e-300}}},
    {"model": {"members": 1}},
    {"model": {"members": 2}, "train": {"validation_size": 0.2}},
]


@pytest.mark.parametrize("raw", BOUNDARIES, ids=lambda raw: str(raw))
def test_the_bounds_of_every_range_are_accepted(raw: dict) -> None:
    config.parse(raw)


# Each refusal's whole message: the key, the value given, and what is allowed.
MESSAGES = [
    ({"seed": 2**32}, "seed=4294967296 is not allowed: a whole number from 0 to 2**32 - 1."),
    ({"data": {"test_size": 1.0}}, "data.test_size=1.0 is not allowed: a number strictly between 0 and 1."),
    # A share that leaves fewer rows than classes on one side of the split.
    ({"data": {"test_size": 1e-300}}, "data.test_size=1e-300 is not allowed: a share of the 1797 rows leaving at least one row per class (10) both to test and to train on: from 0.0056 to 0.9944."),
    ({"data": {"test_size": 0.999}}, "data.test_size=0.999 is not allowed: a share of the 1797 rows leaving at least one row per class (10) both to test and to train on: from 0.0056 to 0.9944."),
    ({"model": {"hidden_size": 0}}, "model.hidden_size=0 is not allowed: a whole number >= 1."),
    ({"model": {"hidden_sizes": []}}, "model.hidden_sizes=[] is not allowed: null, or a non-empty list of whole numbers >= 1."),
    ({"model": {"output": "linear"}}, "model.output='linear' is not allowed: one of sigmoid, softmax."),
    ({"train": {"optimizer": "adam"}}, "train.optimizer='adam' is not allowed: one of gd, sgd, momentum."),
    ({"train": {"schedule": "cosine"}}, "train.schedule='cosine' is not allowed: one of constant, inverse_time."),
    ({"train": {"alpha": 0.0}}, "train.alpha=0.0 is not allowed: a finite number > 0."),
    ({"train": {"iterations": 0}}, "train.iterations=0 is not allowed: a whole number >= 1."),
    ({"train": {"optimizer": "sgd", "batch_size": 0}}, "train.batch_size=0 is not allowed: null (all rows) or a whole number >= 1."),
    ({"train": {"batch_size": 8}}, "train.batch_size=8 is not allowed: null with train.optimizer=gd (full batch); mini-batches need sgd or momentum."),
    ({"train": {"optimizer": "momentum", "momentum": 1.0}}, "train.momentum=1.0 is not allowed: a number in [0, 1)."),
    ({"train": {"l2": -1.0}}, "train.l2=-1.0 is not allowed: a finite number >= 0."),
    ({"train": {"schedule": "inverse_time", "decay": float("inf")}}, "train.decay=inf is not allowed: a finite number > 0 (0 would be no decay)."),
    ({"train": {"validation_size": 1.0}}, "train.validation_size=1.0 is not allowed: a number in [0, 1)."),
    ({"train": {"validation_size": 0.1, "patience": 0}}, "train.patience=0 is not allowed: null (never stop early) or a whole number >= 1."),
    ({"train": {"patience": 3}}, "train.patience=3 is not allowed: null unless train.validation_size > 0 (early stopping needs validation rows)."),
    ({"tracking": {"accuracy_every": -1}}, "tracking.accuracy_every=-1 is not allowed: a whole number >= 0."),
    ({"tracking": {"curve_every": 0}}, "tracking.curve_every=0 is not allowed: a whole number >= 1."),
    ({"tracking": {"experiment": ""}}, "tracking.experiment='' is not allowed: a non-empty name."),
    ({"tracking": {"pictures": "some"}}, "tracking.pictures='some' is not allowed: one of best, all."),
    # Unknown keys and wrong types, as OmegaConf reports them, reworded.
    ({"data": {"foo": 1}}, "data.foo: unknown key in 'data'. Allowed keys: test_size, scaler_rows, folds, fold, repeat, scaling, augment."),
    # Which rows the scaler sees, the folds and the peer.
    ({"data": {"scaler_rows": "test"}}, "data.scaler_rows='test' is not allowed: one of all, train (all: fitted on every row, the tutorial's order; train: on the training rows alone)."),
    ({"data": {"folds": 1}}, "data.folds=1 is not allowed: null (a data.test_size split), or a whole number from 2 to 174 (the fewest rows of one digit)."),
    ({"data": {"folds": 175}}, "data.folds=175 is not allowed: null (a data.test_size split), or a whole number from 2 to 174 (the fewest rows of one digit)."),
    ({"data": {"folds": 5, "fold": 5}}, "data.fold=5 is not allowed: a whole number from 0 to 4 (data.folds=5)."),
    ({"data": {"folds": 5, "fold": -1}}, "data.fold=-1 is not allowed: a whole number from 0 to 4 (data.folds=5)."),
    ({"data": {"folds": 5, "repeat": -1}}, "data.repeat=-1 is not allowed: a whole number >= 0."),
    ({"data": {"fold": 2}}, "data.fold=2 is not allowed: null unless data.folds is set (a fold of a k-fold; without folds, data.test_size decides the test rows)."),
    ({"data": {"repeat": 0}}, "data.repeat=0 is not allowed: null unless data.folds is set (a fold of a k-fold; without folds, data.test_size decides the test rows)."),
    ({"peer": "forest"}, "peer='forest' is not allowed: null (this project's network) or one of svc, mlp, logistic, knn."),
    ({"data": {"augment": {"angle": 1}}}, "data.augment.angle: unknown key in 'data.augment'. Allowed keys: copies, rotation, shift, zoom."),
    ({"data": {"augment": {"copies": 1.5}}}, "data.augment.copies=1.5 is not allowed: a whole number."),
    ({"model": {"members": "five"}}, "model.members='five' is not allowed: a whole number."),
    ({"train": {"alpha": "abc"}}, "train.alpha='abc' is not allowed: a number."),
    ({"model": {"hidden_sizes": [1, "a"]}}, "model.hidden_sizes[1]='a' is not allowed: null or a list of whole numbers."),
    ({"seed": 1.5}, "seed=1.5 is not allowed: a whole number."),
    ({"train": 3}, "wrong shape: Merge error: int is not a subclass of TrainConfig. value: 3; every config group must be a mapping of keys."),
    # Every type of the schema has its own wording, and a group set to null the fallback.
    ({"tracking": {"enabled": "maybe"}}, "tracking.enabled='maybe' is not allowed: true or false."),
    ({"model": {"activation": [1]}}, "model.activation=[1] is not allowed: a string."),
    ({"tracking": {"uri": [1]}}, "tracking.uri=[1] is not allowed: null or a string."),
    ({"train": {"batch_size": "abc"}}, "train.batch_size='abc' is not allowed: null or a whole number."),
    ({"train": {"momentum": "abc"}}, "train.momentum='abc' is not allowed: null or a number."),
    ({"train": {"nesterov": "maybe"}}, "train.nesterov='maybe' is not allowed: null, true or false."),
    ({"data": None}, "data=None is not allowed: see conf/ for the expected type."),
    # The validation share: the range of shares that stratify, or none at all.
    ({"train": {"validation_size": 0.005}}, "train.validation_size=0.005 is not allowed: 0, or a share of the 1078 training rows (data.test_size=0.4) leaving at least one row per class (10) both to validate and to fit on: from 0.0093 to 0.9907."),
    ({"data": {"test_size": 1777 / 1797}, "train": {"validation_size": 0.3}}, "train.validation_size=0.3 is not allowed: 0, or a share of the 20 training rows (data.test_size=0.9888703394546466) leaving at least one row per class (10) both to validate and to fit on: from 0.5 to 0.5."),
    ({"data": {"test_size": 1778 / 1797}, "train": {"validation_size": 0.3}}, "train.validation_size=0.3 is not allowed: 0, as the 19 training rows (data.test_size=0.9894268224819143) are too few to hold out one row per class."),
    # A test share out of range is the one error: the validation share is not checked
    # against it (0 would leave all 1797 rows, 1 none, to carve validation rows from).
    ({"data": {"test_size": 0.0}, "train": {"validation_size": 0.001}}, "data.test_size=0.0 is not allowed: a number strictly between 0 and 1."),
    ({"data": {"test_size": 1.0}, "train": {"validation_size": 0.1}}, "data.test_size=1.0 is not allowed: a number strictly between 0 and 1."),
    # Scaling, augmentation and ensembles.
    ({"data": {"scaling": "minmax"}}, "data.scaling='minmax' is not allowed: one of per_pixel, global."),
    ({"data": {"augment": {"copies": -1, "shift": 1.0}}}, "data.augment.copies=-1 is not allowed: a whole number >= 0."),
    ({"data": {"augment": {"copies": 2, "rotation": 181.0}}}, "data.augment.rotation=181.0 is not allowed: a number from 0 to 180 (degrees)."),
    ({"data": {"augment": {"copies": 2, "shift": -0.5}}}, "data.augment.shift=-0.5 is not allowed: a number from 0 to 4 (pixels)."),
    ({"data": {"augment": {"copies": 2, "zoom": float("nan")}}}, "data.augment.zoom=nan is not allowed: a number from 0 to 1 (the log of the zoom factor)."),
    ({"data": {"augment": {"rotation": 10.0}}}, "data.augment.rotation=10.0 is not allowed: 0 unless data.augment.copies > 0 (with no copies it has no effect)."),
    ({"data": {"augment": {"copies": 3}}}, "data.augment.copies=3 is not allowed: 0 unless one of data.augment.rotation, shift or zoom is > 0 (else every copy is the original)."),
    ({"model": {"members": 0}}, "model.members=0 is not allowed: a whole number >= 1."),
    ({"model": {"members": 2}, "train": {"validation_size": 0.2, "patience": 3}}, "train.patience=3 is not allowed: null with model.members > 1 (members stopped at different iterations share no cost curve)."),
    # Options set where they have no effect, and a decay missing where it acts.
    ({"train": {"momentum": 0.5}}, "train.momentum=0.5 is not allowed: null unless train.optimizer=momentum (with train.optimizer=gd it has no effect)."),
    ({"train": {"optimizer": "sgd", "nesterov": True}}, "train.nesterov=True is not allowed: null unless train.optimizer=momentum (with train.optimizer=sgd it has no effect)."),
    ({"train": {"decay": 0.1}}, "train.decay=0.1 is not allowed: null unless train.schedule=inverse_time (with train.schedule=constant it has no effect)."),
    ({"train": {"schedule": "inverse_time"}}, "train.decay=None is not allowed: a finite number > 0 with train.schedule=inverse_time (the rate is alpha / (1 + decay * t))."),
    # Every error at once, one a line, in the order of the schema.
    ({"model": {"activation": "x", "init": "y"}, "train": {"dtype": "f", "l2": -1}}, "model.activation='x' is not allowed: one of sigmoid, tanh, relu.\nmodel.init='y' is not allowed: one of uniform, xavier, he.\ntrain.dtype='f' is not allowed: one of float64, float32.\ntrain.l2=-1.0 is not allowed: a finite number >= 0."),
    ({"data": {"scaling": "x", "augment": {"copies": 1}}, "model": {"members": 0}}, "data.scaling='x' is not allowed: one of per_pixel, global.\ndata.augment.copies=1 is not allowed: 0 unless one of data.augment.rotation, shift or zoom is > 0 (else every copy is the original).\nmodel.members=0 is not allowed: a whole number >= 1."),
    ({"train": {"foo": {"bar": 1}}}, "train.foo: unknown key in 'train'. Allowed keys: alpha, iterations, dtype, optimizer, batch_size, momentum, nesterov, l2, schedule, decay, validation_size, patience."),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "message"), MESSAGES, ids=[m.split("=")[0] for _, m in MESSAGES])
def test_each_refusal_says_exactly_what_is_allowed(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(raw)
    assert str(info.value) == message


def test_an_unknown_top_level_key_lists_the_groups() -> None:
    with pytest.raises(ConfigError) as info:
        config.parse({"foo": 1})
    # The groups may grow; the start of the message may not change.
    assert str(info.value).startswith("foo: unknown key at the top level. Allowed keys: seed, data")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"model": {"activation": "gelu"}}, "model.activation"),
        ({"model": {"output": "linear"}}, "model.output"),
        ({"model": {"init": "lecun"}}, "model.init"),
        ({"train": {"optimizer": "adam"}}, "train.optimizer"),
        ({"train": {"optimizer": "gd", "batch_size": 32}}, "train.batch_size"),
        ({"train": {"optimizer": "sgd", "batch_size": 0}}, "train.batch_size"),
        ({"train": {"momentum": 1.0}}, "train.momentum"),
        ({"train": {"l2": -1}}, "train.l2"),
        ({"train": {"schedule": "cosine"}}, "train.schedule"),
        ({"train": {"decay": -0.1}}, "train.decay"),
        ({"train": {"validation_size": 1.0}}, "train.validation_size"),
        ({"train": {"patience": 5}}, "train.patience"),
        ({"train": {"validation_size": 0.1, "patience": 0}}, "train.patience"),
        ({"tracking": {"accuracy_every": -1}}, "tracking.accuracy_every"),
        ({"tracking": {"curve_every": -3}}, "tracking.curve_every"),
    ],
)
def test_invalid_options_are_refused_naming_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.parse(raw)


# ---- a validation share too small to stratify ---------------------------------------


@pytest.mark.parametrize("size", [0.005, 0.0083, 0.991, 0.995])
def test_validation_size_too_small_to_stratify_is_refused_up_front(size: float) -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"train": {"validation_size": size}})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"train.validation_size={size!r} is not allowed")
    assert "from 0.0093 to 0.9907" in message  # of the 1078 training rows


def test_the_allowed_validation_sizes_are_exactly_those_that_stratify() -> None:
    """The refusal's bounds are scikit-learn's: just inside them the carve works."""
    cfg = config.parse({})
    split = prepare(cfg).split
    n = len(split.X_train)
    assert config.held_out(N_ROWS, cfg.data.test_size)[0] == n
    assert len(steps.load_digits().y) == N_ROWS
    for size in (10 / n, (n - 10) / n):
        config.parse({"train": {"validation_size": size}})
        fit, held = steps.validation_rows(split.y_train, size, 0)
        assert min(len(fit), len(held)) == 10
    for size in (9 / n, (n - 9) / n):
        with pytest.raises(ValueError, match="number of classes = 10"):
            steps.validation_rows(split.y_train, size, 0)
        with pytest.raises(ConfigError):
            config.parse({"train": {"validation_size": size}})


def test_too_few_training_rows_allow_no_validation_share() -> None:
    with pytest.raises(ConfigError, match="too few to hold out one row per class"):
        config.parse({"data": {"test_size": 0.9894}, "train": {"validation_size": 0.5}})


# Without these bounds, data.test_size=1e-300 leaves a 1-row test set, 0.999 a 1-row training set.
def test_the_allowed_test_sizes_are_exactly_those_leaving_a_row_per_class_on_each_side() -> None:
    scaled = steps.standardise(steps.load_digits())
    for size in (10 / N_ROWS, (N_ROWS - 10) / N_ROWS):
        config.parse({"data": {"test_size": size}})
        split = steps.split(scaled.X, scaled.y, size, 0)
        assert min(len(split.y_train), len(split.y_test)) == 10
    for size in (9 / N_ROWS, (N_ROWS - 9) / N_ROWS):
        split = steps.split(scaled.X, scaled.y, size, 0)
        assert min(len(split.y_train), len(split.y_test)) == 9
        with pytest.raises(ConfigError, match="both to test and to train on"):
            config.parse({"data": {"test_size": size}})


# ---- options that have no effect ------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "key"),
    [
        ({"momentum": 0.5}, "train.momentum"),
        ({"optimizer": "sgd", "batch_size": 16, "momentum": 0.5}, "train.momentum"),
        ({"optimizer": "sgd", "nesterov": True}, "train.nesterov"),
        ({"nesterov": False}, "train.nesterov"),
        ({"decay": 0.1}, "train.decay"),
        ({"schedule": "inverse_time"}, "train.decay"),
        ({"schedule": "inverse_time", "decay": 0.0}, "train.decay"),
    ],
    ids=[
        "momentum-gd",
        "momentum-sgd",
        "nesterov-sgd",
        "nesterov-gd",
        "decay-constant",
        "inverse-time-without-decay",
        "inverse-time-zero-decay",
    ],
)
def test_an_option_without_effect_is_refused(train: dict, key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"train": train})
    assert str(refused.value).startswith(f"{key}=")
    assert "\n" not in str(refused.value)


def test_params_show_only_the_options_that_took_effect() -> None:
    plain = config.flatten(config.parse({}))
    assert not {"train.momentum", "train.nesterov", "train.decay"} & set(plain)
    momentum = config.flatten(config.parse({"train": {"optimizer": "momentum"}}))
    assert (momentum["train.momentum"], momentum["train.nesterov"]) == (0.9, False)
    assert "train.decay" not in momentum
    decayed = config.flatten(config.parse({"train": {"schedule": "inverse_time", "decay": 0.1}}))
    assert decayed["train.decay"] == 0.1
    params = (ROOT / "params.yaml").read_text()
    for key in ("momentum", "nesterov", "decay"):
        assert f"  {key}: null\n" in params


def test_the_choices_are_the_ones_the_core_implements() -> None:
    """The schema's names and the core's tables agree, so a valid config always trains."""
    assert config.ACTIVATIONS == tuple(activations.HIDDEN) == tuple(activations.DERIVATIVES)
    assert tuple(activations.OUTPUTS) == config.OUTPUTS


# A password in tracking.uri would reach the run's folder (params.yaml, Hydra's .hydra/
# copies) and the sweep's job keys.
@pytest.mark.parametrize(
    "uri",
    ["http://alice:s3cret@127.0.0.1:5000", "https://s3cret@host/mlflow", "http://a:s3c@ret@h"],
)
def test_a_tracking_uri_with_credentials_is_refused_without_repeating_them(uri: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"tracking": {"uri": uri}})
    message = str(refused.value)
    assert message.startswith("tracking.uri=") and len(message.splitlines()) == 1
    assert "s3c" not in message and "***@" in message
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in message
    assert config.parse({"tracking": {"uri": "http://127.0.0.1:5000"}}).tracking.uri


def test_the_credentials_refusal_says_where_a_password_would_go_and_where_to_give_it() -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"tracking": {"uri": "http://alice:s3cret@127.0.0.1:5000"}})
    assert str(refused.value) == (
        "tracking.uri='http://alice:***@127.0.0.1:5000' is not allowed: a URI without credentials (a"
        " password in it would be written into the run's folder and Hydra's copies of its"
        " config). Give them in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
    )


def test_credentials_anywhere_in_a_composed_config_are_refused_naming_the_key() -> None:
    composed = {"seed": 0, "hydra": {"overrides": {"task": ["tracking.uri=http://a:pw@h,x"]}}}
    with pytest.raises(ConfigError, match=r"^hydra\.overrides\.task\[0\]=.*a:\*\*\*@h") as refused:
        config.refuse_credentials(composed)
    assert "pw" not in str(refused.value)
    config.refuse_credentials(
        {"seed": 0, "hydra": {"overrides": {"task": ["seed=0,1"]}}}
    )  # no error


def test_a_fold_unsaid_is_the_first_fold_of_the_first_repeat() -> None:
    cfg = config.parse({"data": {"folds": 5}})
    assert (cfg.data.fold, cfg.data.repeat) == (0, 0)
    flat = config.flatten(cfg)
    assert (flat["data.folds"], flat["data.fold"], flat["data.repeat"]) == (5, 0, 0)


def test_the_validation_share_is_checked_against_a_folds_training_rows() -> None:
    # 2 folds leave 898 training rows; 9 of them are too few to hold one row per class.
    with pytest.raises(ConfigError, match=r"the 898 training rows \(data.folds=2\)"):
        config.parse({"data": {"folds": 2}, "train": {"validation_size": 0.01}})
    assert config.training_rows(config.parse({"data": {"folds": 5}}).data) == 1437


def test_the_classic_default_fits_the_scaler_on_every_row_and_modern_does_not() -> None:
    from hydra import compose, initialize_config_dir

    from helpers import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        classic = config.parse(compose("config"))
        modern = config.parse(compose("config", overrides=["experiment=modern"]))
    assert classic.data.scaler_rows == "all"
    assert modern.data.scaler_rows == "train"
