"""Training a configured network: the one place that chooses between the two trainers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from digits_nn.config import Config
from digits_nn.core import kernel, trainer
from digits_nn.core.forward import predict
from digits_nn.core.network import Ensemble, Model, Network, initialise
from digits_nn.core.training import UNWATCHED, TrainerState, TrainingResult, TrainOptions, Watch
from digits_nn.data import augment, steps
from digits_nn.data.steps import Split, validation_rows
from digits_nn.pipeline.prepared import PreparedData
from digits_nn.pipeline.recording import describe

log = logging.getLogger(__name__)


def train_options(cfg: Config, seed: int | None = None) -> TrainOptions:
    """The config's ``train`` section as the core takes it; the shuffles use ``seed``
    (by default the config's)."""
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    given = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k in names and v is not None}
    return TrainOptions(**given, seed=cfg.seed if seed is None else seed)


def initial_network(cfg: Config, seed: int | None = None) -> Network:
    """The configured network, freshly drawn from ``seed`` (by default the config's)."""
    model = cfg.model
    seed = cfg.seed if seed is None else seed
    network = initialise(model.layer_sizes(), model.init, seed, cfg.train.dtype)
    return dataclasses.replace(network, activation=model.activation, output=model.output)


def member_seeds(seed: int, members: int) -> list[int]:
    """The seed of each member of an ensemble: the first is ``seed`` itself (so one
    member is the plain network), the others are derived from it, distinct and below
    2**32 as the initialisation needs."""
    derived = (np.random.SeedSequence([seed, j]).generate_state(1)[0] for j in range(1, members))
    return [seed, *map(int, derived)]


def fit(
    cfg: Config, data: PreparedData, watch: Watch = UNWATCHED, start: TrainerState | None = None
) -> TrainingResult:
    """Initialise the configured network from ``seed`` and train it on the train rows, or
    go on from ``start``, where a training of this same configuration stood; with
    ``model.members > 1``, train that many from their own seeds, one after the other,
    into an ensemble (which does not go on from a state).

    The classic configuration runs on the classic kernel; any other on the general
    trainer, which holds out ``train.validation_size`` of the training rows first. Only
    the general trainer goes on from a state.
    """
    log.info("training %s", describe(cfg))
    # One BLAS thread: on products this small a second thread gains little on an idle
    # machine and loses badly on a busy one, and one thread gives the same bits on every
    # machine whatever its core count.
    with threadpool_limits(limits=1, user_api="blas"):
        if cfg.model.members == 1:
            return fit_member(cfg, data, cfg.seed, watch, start)
        if start is not None:
            raise ValueError("an ensemble does not go on from a state")
        return fit_ensemble(cfg, data, watch)


def is_classic(cfg: Config) -> bool:
    """Whether ``cfg`` is the classic configuration, which the classic kernel trains
    (without validation rows)."""
    model = cfg.model
    return model.activation == model.output == "sigmoid" and train_options(cfg).is_classic


def fit_member(
    cfg: Config, data: PreparedData, seed: int, watch: Watch, start: TrainerState | None = None
) -> TrainingResult:
    """One network, drawn and shuffled from ``seed`` (or going on from ``start``), on the
    training rows and their augmented copies (drawn from ``seed`` too). The validation
    rows, carved from the config's own seed, are the same for every member. Only the
    general trainer goes on from a state."""
    options, dtype = train_options(cfg, seed), cfg.train.dtype
    size = cfg.train.validation_size
    fitted, held = (
        validation_rows(data.split.y_train, size, cfg.seed) if size > 0.0 else (slice(None), None)
    )
    X, Y = training_rows(cfg, data, fitted, seed)
    X, Y = X.astype(dtype, copy=False), Y.astype(dtype, copy=False)
    if is_classic(cfg) and held is None:
        if start is not None:
            raise ValueError("the classic kernel does not go on from a state")
        return kernel.gradient_descent(initial_network(cfg, seed), X, Y, options, watch)
    state = start or trainer.fresh(initial_network(cfg, seed), options)
    return trainer.resume(state, trainer.Rows(X, Y), options, validation_set(cfg, data), watch)


def training_rows(
    cfg: Config, data: PreparedData, fitted: np.ndarray | slice, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``fitted`` of the training split with their one-hot targets, followed by
    ``data.augment.copies`` affine copies of each, drawn from ``seed``.

    The copies are made from the raw pixels (the scaling undone) and scaled with the
    scaling fitted on the data, as the originals were; the originals are kept as they are.
    """
    X, Y = data.split.X_train[fitted], data.onehot.Y_train[fitted]
    spec = cfg.data.augment
    if spec.copies == 0:
        return X, Y
    affine = augment.Affine(spec.copies, spec.rotation, spec.shift, spec.zoom)
    rows, targets = augment.augmented(steps.raw_pixels(X, data.scaled), Y, affine, seed)
    copies = (rows[len(X) :] - data.scaled.mean) / data.scaled.scale
    return np.concatenate([X, copies]), targets


def fit_ensemble(cfg: Config, data: PreparedData, watch: Watch) -> TrainingResult:
    """``model.members`` networks, one after the other, as one ensemble.

    Its curves are the members' mean at each iteration. The watch hears of every
    member's iterations in turn, numbered on from the previous member's; its checkpoints
    see the ensemble of the members' networks at each checkpoint, once all are trained.
    """
    iterations, members = cfg.train.iterations, cfg.model.members
    snapshots: dict[int, list[Network]] = {}

    def keep(iteration: int, network: Network) -> None:
        snapshots.setdefault(iteration, []).append(network.copy())

    results = []
    for j, seed in enumerate(member_seeds(cfg.seed, members)):
        log.info("member %d of %d (seed %d)", j + 1, members, seed)
        progress = None if watch.progress is None else _shifted(watch.progress, j * iterations)
        checkpoint = None if watch.checkpoint is None else keep
        results.append(fit_member(cfg, data, seed, Watch(watch.every, checkpoint, progress)))
    for iteration, nets in sorted(snapshots.items()):
        watch.checkpoint(iteration, Ensemble(nets))  # type: ignore[misc]
    return ensemble_result(results, validation_set(cfg, data))


def _shifted(progress: Callable[[int, float], None], by: int) -> Callable[[int, float], None]:
    """``progress`` hearing of iteration ``i`` as ``i + by``."""
    return lambda iteration, cost: progress(iteration + by, cost)


def ensemble_result(
    results: list[TrainingResult], validation: trainer.Rows | None
) -> TrainingResult:
    """The members' results as one: the ensemble, and the members' mean curves."""

    def mean(curves: list[np.ndarray | None]) -> np.ndarray | None:
        return None if curves[0] is None else np.mean(curves, axis=0)

    model = Ensemble([r.network for r in results])
    return TrainingResult(
        model,
        mean([r.cost_curve for r in results]),
        mean([r.classic_cost_curve for r in results]),
        mean([r.validation_cost_curve for r in results]),
        None,
        None if validation is None else trainer.accuracy(model, validation),
    )


def accuracy_on_test(network: Model, split: Split) -> float:
    """The accuracy on the test rows, in the network's own float type."""
    predicted = predict(network, split.X_test.astype(network.dtype))
    return float(np.mean(predicted == split.y_test))


def validation_set(cfg: Config, data: PreparedData) -> trainer.Rows | None:
    """The validation rows exactly as the training carves them (seeded), in its float
    type; None without them."""
    if cfg.train.validation_size == 0.0:
        return None
    dtype = cfg.train.dtype
    _, held = validation_rows(data.split.y_train, cfg.train.validation_size, cfg.seed)
    X = data.split.X_train[held].astype(dtype, copy=False)
    return trainer.Rows(X, data.onehot.Y_train[held].astype(dtype, copy=False))
