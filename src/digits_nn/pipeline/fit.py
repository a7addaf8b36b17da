"""Training a configured network: the one place that chooses between the two trainers."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from threadpoolctl import threadpool_limits

from digits_nn.config import Config
from digits_nn.core import kernel, trainer
from digits_nn.core.forward import predict
from digits_nn.core.network import Network, initialise
from digits_nn.core.training import UNWATCHED, TrainerState, TrainingResult, TrainOptions, Watch
from digits_nn.data.steps import Split, validation_rows
from digits_nn.pipeline.prepared import PreparedData
from digits_nn.pipeline.recording import describe

log = logging.getLogger(__name__)


def train_options(cfg: Config) -> TrainOptions:
    """The config's ``train`` section as the core takes it; the shuffles use ``seed``."""
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    given = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k in names and v is not None}
    return TrainOptions(**given, seed=cfg.seed)


def initial_network(cfg: Config) -> Network:
    """The configured network, freshly drawn from ``seed``."""
    model = cfg.model
    network = initialise(model.layer_sizes(), model.init, cfg.seed, cfg.train.dtype)
    return dataclasses.replace(network, activation=model.activation, output=model.output)


def fit(
    cfg: Config, data: PreparedData, watch: Watch = UNWATCHED, start: TrainerState | None = None
) -> TrainingResult:
    """Initialise the configured network from ``seed`` and train it on the train rows, or
    go on from ``start``, where a training of this same configuration stood.

    The classic configuration runs on the classic kernel; any other on the general
    trainer, which holds out ``train.validation_size`` of the training rows first. Only
    the general trainer goes on from a state.
    """
    options, dtype = train_options(cfg), cfg.train.dtype
    X = data.split.X_train.astype(dtype, copy=False)
    Y = data.onehot.Y_train.astype(dtype, copy=False)
    log.info("training %s", describe(cfg))
    size = cfg.train.validation_size
    on_kernel = is_classic(cfg) and size == 0.0
    if start is not None and on_kernel:
        raise ValueError("the classic kernel does not go on from a state")
    state = start or trainer.fresh(initial_network(cfg), options)
    # One BLAS thread: on products this small a second thread gains little on an idle
    # machine and loses badly on a busy one, and one thread gives the same bits on every
    # machine whatever its core count.
    with threadpool_limits(limits=1, user_api="blas"):
        if on_kernel:
            return kernel.gradient_descent(state.network, X, Y, options, watch)
        if size == 0.0:
            return trainer.resume(state, trainer.Rows(X, Y), options, watch=watch)
        fitted, held = validation_rows(data.split.y_train, size, cfg.seed)
        rows, validation = trainer.Rows(X[fitted], Y[fitted]), trainer.Rows(X[held], Y[held])
        return trainer.resume(state, rows, options, validation, watch)


def is_classic(cfg: Config) -> bool:
    """Whether ``cfg`` is the classic configuration, which the classic kernel trains
    (without validation rows)."""
    model = cfg.model
    return model.activation == model.output == "sigmoid" and train_options(cfg).is_classic


def accuracy_on_test(network: Network, split: Split) -> float:
    """The accuracy on the test rows, in the network's own float type."""
    predicted = predict(network, split.X_test.astype(network.dtype))
    return float(np.mean(predicted == split.y_test))
