"""The typed configuration schema, and the one place where it is validated.

Every entry point (the DVC stages reading ``params.yaml``, ``pipelines/run.py`` reading
Hydra's composition) turns its raw mapping into a :class:`Config` through
:func:`parse`, before any data or training work starts. Types and unknown keys are
checked by OmegaConf against the dataclasses below; ranges and choices by
:func:`_range_errors`. A bad value raises :class:`ConfigError` naming the key, the
value given and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from digits_nn import credentials
from digits_nn.data.digits import MIN_CLASS_ROWS, N_CLASSES, N_PIXELS, N_ROWS
from digits_nn.errors import ConfigError

# The choices each key allows. digits_nn.core implements each one (its tables of
# activations and losses are keyed by these names; a test checks that they agree).
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUTS = ("sigmoid", "softmax")
INITS = ("uniform", "xavier", "he")
OPTIMIZERS = ("gd", "sgd", "momentum")
SCHEDULES = ("constant", "inverse_time")
DTYPES = ("float64", "float32")
# The scikit-learn peers a run can train instead of the network (digits_nn.pipeline.peers).
PEERS = ("svc", "mlp", "logistic", "knn")
# The rows the scaler is fitted on: every row (the tutorial's order) or the training rows.
SCALER_ROWS = ("all", "train")
SCALINGS = ("per_pixel", "global")
# The widest ranges the affine copies may draw from: beyond them a digit turns into
# another (a 180 degree turn makes a 6 of a 9) or leaves the 8x8 frame.
MAX_ROTATION = 180.0  # degrees
MAX_SHIFT = 4.0  # pixels
MAX_ZOOM = 1.0  # log of the zoom factor
# Which child runs of a sweep draw the four per-run pictures (tracking.pictures).
PICTURES = ("best", "all")
# Options that act only under one choice of another key of the same section. They are
# unset (null) by default and refused where they would have no effect, so that a run's
# params hold only what took effect. Where they act, an unset one takes its default.
CONDITIONAL_TRAIN_KEYS: dict[str, tuple[str, str]] = {
    "momentum": ("optimizer", "momentum"),
    "nesterov": ("optimizer", "momentum"),
    "decay": ("schedule", "inverse_time"),
}
DEFAULT_MOMENTUM = 0.9
# The classic network's one hidden layer: what an unset model.hidden_size means where it
# acts (model.hidden_sizes unset). Where model.hidden_sizes is set it must stay unset.
DEFAULT_HIDDEN_SIZE = 30


@dataclass
class AugmentConfig:
    copies: int = 0
    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0


@dataclass
class DataConfig:
    test_size: float = 0.4
    scaler_rows: str = "all"
    folds: Optional[int] = None  # noqa: UP045
    fold: Optional[int] = None  # noqa: UP045 - data.folds only
    repeat: Optional[int] = None  # noqa: UP045 - data.folds only
    scaling: str = "per_pixel"
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    # OmegaConf 2.3 understands typing.Optional, not the `X | None` spelling.
    hidden_size: Optional[int] = None  # noqa: UP045 - DEFAULT_HIDDEN_SIZE where it acts
    hidden_sizes: Optional[list[int]] = None  # noqa: UP045
    activation: str = "sigmoid"
    output: str = "sigmoid"
    init: str = "uniform"
    members: int = 1

    def layer_sizes(self) -> list[int]:
        """Pixels in, one node per digit out, the hidden layers between."""
        if self.hidden_sizes is not None:
            return [N_PIXELS, *self.hidden_sizes, N_CLASSES]
        hidden = DEFAULT_HIDDEN_SIZE if self.hidden_size is None else self.hidden_size
        return [N_PIXELS, hidden, N_CLASSES]


@dataclass
class TrainConfig:
    alpha: float = 0.25
    iterations: int = 3000
    dtype: str = "float64"
    optimizer: str = "gd"
    batch_size: Optional[int] = None  # noqa: UP045
    momentum: Optional[float] = None  # noqa: UP045 - optimizer=momentum only
    nesterov: Optional[bool] = None  # noqa: UP045 - optimizer=momentum only
    l2: float = 0.0
    schedule: str = "constant"
    decay: Optional[float] = None  # noqa: UP045 - schedule=inverse_time only
    validation_size: float = 0.0
    patience: Optional[int] = None  # noqa: UP045


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: Optional[str] = None  # noqa: UP045
    experiment: str = "digits-nn"
    accuracy_every: int = 100
    curve_every: int = 1
    pictures: str = "best"


@dataclass
class PromoteConfig:
    min_gain: float = 0.0
    min_accuracy: float = 0.0


@dataclass
class PathsConfig:
    raw: str = "data/raw/digits.npz"
    scaled: str = "data/interim/scaled.npz"
    split: str = "data/processed/split.npz"
    onehot: str = "data/processed/onehot.npz"
    model: str = "models/model.npz"
    cost: str = "reports/cost.csv"
    metrics: str = "reports/metrics.json"
    platform: str = "reports/platform.json"
    classes: str = "reports/classes.json"
    predictions: str = "reports/predictions.csv"
    plots: str = "reports/plots"

    def under(self, root: Path) -> PathsConfig:
        """The same layout rooted at ``root`` instead of the working directory."""
        return PathsConfig(**{f.name: str(root / getattr(self, f.name)) for f in fields(self)})


@dataclass
class Config:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    promote: PromoteConfig = field(default_factory=PromoteConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    peer: Optional[str] = None  # noqa: UP045


def parse(raw: Mapping[str, Any] | DictConfig) -> Config:
    """Validate a raw mapping (``params.yaml`` or a Hydra config) into a :class:`Config`."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), raw)
        config = OmegaConf.to_object(merged)
    except ConfigKeyError as error:
        raise ConfigError(_unknown_key_message(error)) from None
    except OmegaConfBaseException as error:
        raise ConfigError(_type_message(error)) from None
    assert isinstance(config, Config)
    errors = list(_range_errors(config))
    if errors:
        raise ConfigError("\n".join(errors))
    if config.model.hidden_sizes is None and config.model.hidden_size is None:
        config.model.hidden_size = DEFAULT_HIDDEN_SIZE  # the one hidden layer's width
    if config.data.folds is not None:
        # Where a fold is chosen without saying which: the first fold of the first repeat.
        config.data.fold = config.data.fold or 0
        config.data.repeat = config.data.repeat or 0
    if config.train.optimizer == "momentum":
        # What takes effect when momentum is chosen without its coefficients.
        if config.train.momentum is None:
            config.train.momentum = DEFAULT_MOMENTUM
        if config.train.nesterov is None:
            config.train.nesterov = False
    return config


def load(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read and validate ``params.yaml``, with ``key=value`` ``overrides`` on top."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: missing; it is `conf/` composed (run `make params`).")
    try:
        raw = OmegaConf.load(path)
    except Exception as error:  # yaml's errors do not share a useful base class
        raise ConfigError(f"{path}: not valid YAML ({error}).") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{path}: expected a mapping of config groups, got a list.")
    malformed = [o for o in overrides if "=" not in o or not o.partition("=")[0].strip()]
    if malformed:
        raise ConfigError(f"override {malformed[0]!r} is not allowed: key=value, e.g. seed=1.")
    if overrides:
        raw = OmegaConf.merge(raw, OmegaConf.from_dotlist(list(overrides)))
    return parse(raw)


def to_dict(config: Config) -> dict[str, Any]:
    """The config as plain nested dicts, in the schema's key order."""
    return asdict(config)


def to_yaml(config: Config) -> str:
    """The config as YAML, in the schema's key order (a run's ``params.yaml``)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)


def flatten(config: Config) -> dict[str, Any]:
    """Dotted keys to values, e.g. ``{"train.alpha": 0.25, ...}`` (MLflow params).

    An unset option that acts only under another choice (``train.momentum`` with
    ``gd``, say) is left out: the params show what took effect."""

    def walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if is_dataclass(node):
            for f in fields(node):
                yield from walk(getattr(node, f.name), f"{prefix}{f.name}.")
        else:
            yield prefix[:-1], node

    inert = {f"train.{key}" for key in CONDITIONAL_TRAIN_KEYS} | {"model.hidden_size", "peer"}
    inert |= {f"data.{key}" for key in ("folds", "fold", "repeat")}
    return {key: value for key, value in walk(config, "") if value is not None or key not in inert}


def unflatten(params: Mapping[str, Any]) -> dict[str, Any]:
    """The nested mapping of dotted keys (:func:`flatten`'s inverse), for :func:`parse`."""
    nested: dict[str, Any] = {}
    for key, value in params.items():
        *sections, name = key.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return nested


def _range_errors(config: Config) -> Iterator[str]:
    def bad(key: str, value: Any, allowed: str) -> str:
        return f"{key}={value!r} is not allowed: {allowed}."

    if config.seed < 0 or config.seed >= 2**32:
        yield bad("seed", config.seed, "a whole number from 0 to 2**32 - 1")
    if not (0.0 < config.data.test_size < 1.0):
        yield bad("data.test_size", config.data.test_size, "a number strictly between 0 and 1")
    elif not _leaves_a_row_per_class(config.data.test_size):
        yield bad(
            "data.test_size",
            config.data.test_size,
            f"a share of the {N_ROWS} rows leaving at least one row per class ({N_CLASSES})"
            f" both to test and to train on: {_shares_leaving_a_row_per_class(N_ROWS)}",
        )
    yield from _data_errors(config.data)
    if config.data.scaling not in SCALINGS:
        yield bad("data.scaling", config.data.scaling, f"one of {', '.join(SCALINGS)}")
    yield from _augment_errors(config.data.augment)
    if config.peer is not None and config.peer not in PEERS:
        yield bad(
            "peer", config.peer, f"null (this project's network) or one of {', '.join(PEERS)}"
        )
    if config.model.hidden_size is not None and config.model.hidden_size < 1:
        yield bad("model.hidden_size", config.model.hidden_size, "a whole number >= 1")
    sizes = config.model.hidden_sizes
    if sizes is not None and config.model.hidden_size is not None:
        yield bad(
            "model.hidden_size",
            config.model.hidden_size,
            f"null when model.hidden_sizes is set (the hidden layers are {sizes};"
            " it would have no effect)",
        )
    # OmegaConf checks a list[int]'s scalar items but lets a nested list or mapping pass.
    whole = sizes is None or all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)
    if sizes is not None and (len(sizes) == 0 or not whole or min(sizes) < 1):
        yield bad("model.hidden_sizes", sizes, "null, or a non-empty list of whole numbers >= 1")
    model, train = config.model, config.train
    for key, value, allowed in [
        ("model.activation", model.activation, ACTIVATIONS),
        ("model.output", model.output, OUTPUTS),
        ("model.init", model.init, INITS),
        ("train.optimizer", train.optimizer, OPTIMIZERS),
        ("train.schedule", train.schedule, SCHEDULES),
        ("train.dtype", train.dtype, DTYPES),
        ("tracking.pictures", config.tracking.pictures, PICTURES),
    ]:
        if value not in allowed:
            yield bad(key, value, f"one of {', '.join(allowed)}")
    if model.members < 1:
        yield bad("model.members", model.members, "a whole number >= 1")
    if not (math.isfinite(train.alpha) and train.alpha > 0):
        yield bad("train.alpha", train.alpha, "a finite number > 0")
    if train.iterations < 1:
        yield bad("train.iterations", train.iterations, "a whole number >= 1")
    if train.batch_size is not None and train.batch_size < 1:
        yield bad("train.batch_size", train.batch_size, "null (all rows) or a whole number >= 1")
    if train.batch_size is not None and train.optimizer == "gd":
        yield bad(
            "train.batch_size",
            train.batch_size,
            "null with train.optimizer=gd (full batch); mini-batches need sgd or momentum",
        )
    yield from _conditional_errors(train)
    if train.momentum is not None and not (0.0 <= train.momentum < 1.0):
        yield bad("train.momentum", train.momentum, "a number in [0, 1)")
    if not (math.isfinite(train.l2) and train.l2 >= 0):
        yield bad("train.l2", train.l2, "a finite number >= 0")
    if train.decay is not None and not (math.isfinite(train.decay) and train.decay > 0):
        yield bad("train.decay", train.decay, "a finite number > 0 (0 would be no decay)")
    if not (0.0 <= train.validation_size < 1.0):
        yield bad("train.validation_size", train.validation_size, "a number in [0, 1)")
    elif train.validation_size > 0 and _leaves_a_row_per_class(config.data.test_size):
        # Checked against a valid test share only: the rows it leaves to carve from.
        yield from _validation_size_errors(train.validation_size, config.data)
    if train.patience is not None and train.patience < 1:
        yield bad(
            "train.patience", train.patience, "null (never stop early) or a whole number >= 1"
        )
    if train.patience is not None and train.validation_size == 0.0:
        yield bad(
            "train.patience",
            train.patience,
            "null unless train.validation_size > 0 (early stopping needs validation rows)",
        )
    if train.patience is not None and model.members > 1:
        yield bad(
            "train.patience",
            train.patience,
            "null with model.members > 1 (members stopped at different iterations share no"
            " cost curve)",
        )
    if config.tracking.accuracy_every < 0:
        yield bad("tracking.accuracy_every", config.tracking.accuracy_every, "a whole number >= 0")
    if config.tracking.curve_every < 1:
        yield bad("tracking.curve_every", config.tracking.curve_every, "a whole number >= 1")
    if not config.tracking.experiment.strip():
        yield bad("tracking.experiment", config.tracking.experiment, "a non-empty name")
    if config.tracking.uri is not None and credentials.holds_credentials(config.tracking.uri):
        yield credentials_message("tracking.uri", config.tracking.uri)
    gate = config.promote
    if not (math.isfinite(gate.min_gain) and 0.0 <= gate.min_gain < 1.0):
        yield bad("promote.min_gain", gate.min_gain, "a number in [0, 1) (0: at least as accurate)")
    if not (0.0 <= gate.min_accuracy <= 1.0):
        yield bad("promote.min_accuracy", gate.min_accuracy, "a number in [0, 1] (0: no floor)")


def refuse_credentials(node: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` if any string in ``node`` (plain nested mappings and
    lists: a whole config, Hydra's node and overrides included) holds a URI with
    credentials. Whatever a run is given, Hydra copies into the run's folder."""
    found = next(credentials.found_in(dict(node)), None)
    if found is not None:
        raise ConfigError(credentials_message(*found))


def credentials_message(key: str, text: str) -> str:
    """The one line that refuses a URI with credentials, without them."""
    return (
        f"{key}={credentials.redact(text)!r} is not allowed: a URI without credentials (a"
        " password in it would be written into the run's folder and Hydra's copies of its"
        " config). Give them in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
    )


def held_out(n: int, share: float) -> tuple[int, int]:
    """(rows kept, rows held out) when ``share`` of ``n`` rows is held out, counted as
    scikit-learn's ``train_test_split`` counts them (the held-out count rounds up)."""
    held = math.ceil(share * n)
    return n - held, held


def training_rows(data: DataConfig) -> int:
    """How many training rows a run has (the fewest, over the folds of a k-fold)."""
    if data.folds is not None and 2 <= data.folds <= MIN_CLASS_ROWS:
        return N_ROWS - math.ceil(N_ROWS / data.folds)
    return held_out(N_ROWS, data.test_size)[0]


def _data_errors(data: DataConfig) -> Iterator[str]:
    """The scaler's rows, and the fold: in range, and set only with ``data.folds``."""
    if data.scaler_rows not in SCALER_ROWS:
        yield (
            f"data.scaler_rows={data.scaler_rows!r} is not allowed: one of"
            f" {', '.join(SCALER_ROWS)} (all: fitted on every row, the tutorial's order;"
            " train: on the training rows alone)."
        )
    if data.folds is None:
        for key in ("fold", "repeat"):
            if getattr(data, key) is not None:
                yield (
                    f"data.{key}={getattr(data, key)!r} is not allowed: null unless data.folds"
                    " is set (a fold of a k-fold; without folds, data.test_size decides the"
                    " test rows)."
                )
        return
    if not (2 <= data.folds <= MIN_CLASS_ROWS):
        yield (
            f"data.folds={data.folds!r} is not allowed: null (a data.test_size split), or a"
            f" whole number from 2 to {MIN_CLASS_ROWS} (the fewest rows of one digit)."
        )
    elif data.fold is not None and not (0 <= data.fold < data.folds):
        yield (
            f"data.fold={data.fold!r} is not allowed: a whole number from 0 to"
            f" {data.folds - 1} (data.folds={data.folds})."
        )
    if data.repeat is not None and data.repeat < 0:
        yield f"data.repeat={data.repeat!r} is not allowed: a whole number >= 0."


def _validation_size_errors(validation_size: float, data: DataConfig) -> Iterator[str]:
    """A stratified validation share needs one row per class on both of its sides."""
    n_train = training_rows(data)
    n_fit, n_validation = held_out(n_train, validation_size)
    if min(n_fit, n_validation) >= N_CLASSES:
        return
    how = f"data.folds={data.folds}" if data.folds else f"data.test_size={data.test_size}"
    rows = f"the {n_train} training rows ({how})"
    if n_train < 2 * N_CLASSES:
        allowed = f"0, as {rows} are too few to hold out one row per class"
    else:
        allowed = (
            f"0, or a share of {rows} leaving at least one row per class ({N_CLASSES}) both"
            f" to validate and to fit on: {_shares_leaving_a_row_per_class(n_train)}"
        )
    yield f"train.validation_size={validation_size!r} is not allowed: {allowed}."


def _leaves_a_row_per_class(test_size: float) -> bool:
    """Whether the split leaves at least one row per class on both of its sides."""
    return 0.0 < test_size < 1.0 and min(held_out(N_ROWS, test_size)) >= N_CLASSES


def _shares_leaving_a_row_per_class(n: int) -> str:
    """The shares of ``n`` rows, to four places, that hold out at least one row per class
    and keep as many."""
    low, high = N_CLASSES / n, (n - N_CLASSES) / n
    return f"from {math.ceil(low * 1e4) / 1e4:g} to {math.floor(high * 1e4) / 1e4:g}"


def _augment_errors(augment: AugmentConfig) -> Iterator[str]:
    """Each range within its limit; ranges only with copies to draw, and copies only
    with a range to draw from (a copy drawn from no range is the original again)."""
    if augment.copies < 0:
        yield f"data.augment.copies={augment.copies!r} is not allowed: a whole number >= 0."
    ranges = {
        "rotation": (augment.rotation, MAX_ROTATION, "degrees"),
        "shift": (augment.shift, MAX_SHIFT, "pixels"),
        "zoom": (augment.zoom, MAX_ZOOM, "the log of the zoom factor"),
    }
    for name, (value, limit, unit) in ranges.items():
        if not (math.isfinite(value) and 0.0 <= value <= limit):
            yield (
                f"data.augment.{name}={value!r} is not allowed: a number from 0 to {limit:g}"
                f" ({unit})."
            )
    drawn = [name for name, (value, _, _) in ranges.items() if value != 0.0]
    if augment.copies == 0 and drawn:
        yield (
            f"data.augment.{drawn[0]}={ranges[drawn[0]][0]!r} is not allowed: 0 unless"
            " data.augment.copies > 0 (with no copies it has no effect)."
        )
    if augment.copies > 0 and not drawn:
        yield (
            f"data.augment.copies={augment.copies!r} is not allowed: 0 unless one of"
            " data.augment.rotation, shift or zoom is > 0 (else every copy is the original)."
        )


def _conditional_errors(train: TrainConfig) -> Iterator[str]:
    """Refuse an option set where it has no effect, and a decay missing where it acts."""
    for key, (switch, choice) in CONDITIONAL_TRAIN_KEYS.items():
        value, acts = getattr(train, key), getattr(train, switch) == choice
        if value is not None and not acts:
            yield (
                f"train.{key}={value!r} is not allowed: null unless train.{switch}={choice}"
                f" (with train.{switch}={getattr(train, switch)} it has no effect)."
            )
    if train.schedule == "inverse_time" and train.decay is None:
        yield (
            "train.decay=None is not allowed: a finite number > 0 with"
            " train.schedule=inverse_time (the rate is alpha / (1 + decay * t))."
        )


def _unknown_key_message(error: ConfigKeyError) -> str:
    key = error.full_key or str(error.key)
    parent, _, _ = key.rpartition(".")
    section = _section_schema(parent)
    allowed = ", ".join(f.name for f in fields(section)) if section else "see conf/"
    where = f"in '{parent}'" if parent else "at the top level"
    return f"{key}: unknown key {where}. Allowed keys: {allowed}."


def _type_message(error: OmegaConfBaseException) -> str:
    key = error.full_key or str(error.key or "")
    if not key:
        # OmegaConf names no key when a whole section has the wrong shape.
        first_line = str(error.msg).splitlines()[0]
        return f"wrong shape: {first_line}; every config group must be a mapping of keys."
    parent, _, name = re.sub(r"\[\d+\]$", "", key).rpartition(".")
    section = _section_schema(parent)
    expected = next((f.type for f in fields(section) if f.name == name), None) if section else None
    allowed = {
        "float": "a number",
        "int": "a whole number",
        "bool": "true or false",
        "str": "a string",
        "Optional[str]": "null or a string",
        "Optional[list[int]]": "null or a list of whole numbers",
        "Optional[int]": "null or a whole number",
        "Optional[float]": "null or a number",
        "Optional[bool]": "null, true or false",
    }.get(str(expected), "see conf/ for the expected type")
    return f"{key}={getattr(error, 'value', None)!r} is not allowed: {allowed}."


def _section_schema(dotted: str) -> Any:
    node: Any = Config
    for part in filter(None, dotted.split(".")):
        match = next((f for f in fields(node) if f.name == part), None)
        if match is None:
            return None
        node = match.default_factory() if callable(match.default_factory) else None  # type: ignore[misc]
        if node is None or not is_dataclass(node):
            return None
    return node
