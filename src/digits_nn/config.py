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
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from digits_nn.data.digits import N_CLASSES, N_PIXELS, N_ROWS
from digits_nn.errors import ConfigError

# The choices each key allows. digits_nn.core implements each one (its tables of
# activations and losses are keyed by these names; a test checks that they agree).
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUTS = ("sigmoid", "softmax")
INITS = ("uniform", "xavier", "he")
OPTIMIZERS = ("gd", "sgd", "momentum")
SCHEDULES = ("constant", "inverse_time")
DTYPES = ("float64", "float32")
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


@dataclass
class DataConfig:
    test_size: float = 0.4


@dataclass
class ModelConfig:
    hidden_size: int = 30
    # OmegaConf 2.3 understands typing.Optional, not the `X | None` spelling.
    hidden_sizes: Optional[list[int]] = None  # noqa: UP045
    activation: str = "sigmoid"
    output: str = "sigmoid"
    init: str = "uniform"

    def layer_sizes(self) -> list[int]:
        """Pixels in, one node per digit out, the hidden layers between."""
        hidden = list(self.hidden_sizes) if self.hidden_sizes is not None else [self.hidden_size]
        return [N_PIXELS, *hidden, N_CLASSES]


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
    return OmegaConf.to_container(OmegaConf.structured(config))  # type: ignore[return-value]


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

    inert = {f"train.{key}" for key in CONDITIONAL_TRAIN_KEYS}
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
    if config.model.hidden_size < 1:
        yield bad("model.hidden_size", config.model.hidden_size, "a whole number >= 1")
    sizes = config.model.hidden_sizes
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
    elif train.validation_size > 0 and 0.0 < config.data.test_size < 1.0:
        yield from _validation_size_errors(train.validation_size, config.data.test_size)
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
    if config.tracking.accuracy_every < 0:
        yield bad("tracking.accuracy_every", config.tracking.accuracy_every, "a whole number >= 0")
    if not config.tracking.experiment.strip():
        yield bad("tracking.experiment", config.tracking.experiment, "a non-empty name")
    gate = config.promote
    if not (math.isfinite(gate.min_gain) and 0.0 <= gate.min_gain < 1.0):
        yield bad("promote.min_gain", gate.min_gain, "a number in [0, 1) (0: at least as accurate)")
    if not (0.0 <= gate.min_accuracy <= 1.0):
        yield bad("promote.min_accuracy", gate.min_accuracy, "a number in [0, 1] (0: no floor)")


def held_out(n: int, share: float) -> tuple[int, int]:
    """(rows kept, rows held out) when ``share`` of ``n`` rows is held out, counted as
    scikit-learn's ``train_test_split`` counts them (the held-out count rounds up)."""
    held = math.ceil(share * n)
    return n - held, held


def _validation_size_errors(validation_size: float, test_size: float) -> Iterator[str]:
    """A stratified validation share needs one row per class on both of its sides."""
    n_train, _ = held_out(N_ROWS, test_size)
    n_fit, n_validation = held_out(n_train, validation_size)
    if min(n_fit, n_validation) >= N_CLASSES:
        return
    rows = f"the {n_train} training rows (data.test_size={test_size})"
    if n_train < 2 * N_CLASSES:
        allowed = f"0, as {rows} are too few to hold out one row per class"
    else:
        low, high = N_CLASSES / n_train, (n_train - N_CLASSES) / n_train
        allowed = (
            f"0, or a share of {rows} leaving at least one row per class ({N_CLASSES}) both"
            f" to validate and to fit on: from {math.ceil(low * 1e4) / 1e4:g}"
            f" to {math.floor(high * 1e4) / 1e4:g}"
        )
    yield f"train.validation_size={validation_size!r} is not allowed: {allowed}."


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
