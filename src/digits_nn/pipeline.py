"""The pipeline's steps as the DVC stages and ``pipelines/run.py`` share them.

The DVC stages call one step each, reading and writing the artifacts between them;
``run.py`` chains the same steps in memory (:func:`prepare_data`) and writes the same
files into Hydra's run directory. Both therefore give the same numbers for the same
config.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from digits_nn import artifacts, config, data, modern, plots, provenance, tracking
from digits_nn.config import Config, PathsConfig
from digits_nn.errors import TrainingDiverged
from digits_nn.evaluate import Evaluation, evaluate
from digits_nn.network import Network
from digits_nn.train import TrainingResult, gradient_descent

log = logging.getLogger(__name__)

N_INPUTS, N_OUTPUTS = artifacts.N_PIXELS, data.N_CLASSES
PICTURES = ("cost", "confusion", "misclassified", "weights")


# ---- in memory ------------------------------------------------------------------------


def prepare_data(cfg: Config) -> tuple[data.Scaled, data.Split, data.OneHot]:
    """load -> scale -> split -> onehot, chained in memory."""
    scaled = data.standardise(data.load_digits())
    split = data.split(scaled.X, scaled.y, cfg.data.test_size, cfg.seed)
    return scaled, split, data.one_hot_split(split)


def fit(
    cfg: Config,
    split: data.Split,
    onehot: data.OneHot,
    progress: bool,
    on_checkpoint: Callable[[int, Network], None] | None = None,
) -> TrainingResult:
    """Initialise the configured network from ``seed`` and train it on the train rows.

    The classic configuration runs on the optimised full-batch kernel; any other option
    on the general path of :mod:`digits_nn.modern`. ``on_checkpoint`` sees the network
    every ``tracking.accuracy_every`` iterations.
    """
    model, options, dtype = cfg.model, cfg.train, cfg.train.dtype
    sizes = model.layer_sizes(N_INPUTS, N_OUTPUTS)
    network = modern.init_network(
        sizes, model.init, cfg.seed, dtype, model.activation, model.output
    )
    X, Y = split.X_train.astype(dtype, copy=False), onehot.Y_train.astype(dtype, copy=False)
    every = cfg.tracking.accuracy_every
    log.info("training %s", tracking.describe(cfg))
    # One BLAS thread: on products this small a second thread gains little on an idle
    # machine and loses badly on a busy one, and one thread gives the same bits on every
    # machine whatever its core count.
    with threadpool_limits(limits=1, user_api="blas"):
        if model.activation == model.output == "sigmoid" and options.is_classic:
            return gradient_descent(
                network, X, Y, options.alpha, options.iterations, progress, on_checkpoint, every
            )
        return _fit_general(cfg, network, X, Y, progress, on_checkpoint)


def _fit_general(
    cfg: Config,
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    progress: bool,
    on_checkpoint: Callable[[int, Network], None] | None,
) -> TrainingResult:
    options, every = cfg.train, cfg.tracking.accuracy_every
    validation = None
    if options.validation_size > 0:
        X, Y, validation = carve_validation(X, Y, options.validation_size, cfg.seed)
    history = modern.train(
        network, X, Y, options, cfg.seed, validation, on_checkpoint, every, progress
    )
    validation_accuracy = None
    if validation is not None:
        X_val, Y_val = validation
        validation_accuracy = float(np.mean(modern.predict(network, X_val) == Y_val.argmax(1)))
    return TrainingResult(
        network,
        history.cost_curve,
        history.classic_cost_curve,
        history.validation_cost_curve,
        history.best_iteration,
        validation_accuracy,
    )


def carve_validation(
    X: np.ndarray, Y: np.ndarray, size: float, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Hold out a stratified, seeded share of the *training* rows; never the test rows."""
    fit, held = validation_rows(Y.argmax(axis=1), size, seed)
    return X[fit], Y[fit], (X[held], Y[held])


def validation_rows(labels: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the rows fitted on and of the validation rows, for training labels."""
    from sklearn.model_selection import train_test_split

    fit, held = train_test_split(
        np.arange(len(labels)), test_size=size, random_state=seed, stratify=labels
    )
    return fit, held


def fitted_split(split: data.Split, cfg: Config) -> data.Split:
    """The split as training saw it: its train rows are the rows fitted on, without the
    validation rows, so that ``train_accuracy`` is measured on the rows trained on."""
    if cfg.train.validation_size == 0.0:
        return split
    fit, _ = validation_rows(split.y_train, cfg.train.validation_size, cfg.seed)
    return data.Split(split.X_train[fit], split.X_test, split.y_train[fit], split.y_test)


def interactive() -> bool:
    """Show progress bars only to a person at a terminal: not in CI, not under DVC."""
    return sys.stderr.isatty() and not os.environ.get("CI") and "DVC_STAGE" not in os.environ


# ---- files ----------------------------------------------------------------------------


def save_training(paths: PathsConfig, result: TrainingResult) -> list[Path]:
    artifacts.write_model(paths.model, result.network)
    artifacts.write_cost_curve(
        paths.cost, result.cost_curve, result.classic_cost_curve, result.validation_cost_curve
    )
    return [Path(paths.model), Path(paths.cost)]


def save_evaluation(
    paths: PathsConfig,
    evaluation: Evaluation,
    split: data.Split,
    cost: np.ndarray,
    classic_cost: np.ndarray,
    first_layer_weights: np.ndarray,
    test_pixels: np.ndarray,
) -> list[Path]:
    """metrics.json, per-class report, test predictions and the PNGs; returns the paths."""
    artifacts.write_json(paths.metrics, metrics(evaluation, cost))
    artifacts.write_json(paths.classes, evaluation.per_class)
    artifacts.write_csv(
        paths.predictions,
        ["actual", "predicted"],
        zip(split.y_test.tolist(), evaluation.test_predictions.tolist()),
    )
    plot_dir = Path(paths.plots)
    pictures = {name: plot_dir / f"{name}.png" for name in PICTURES}
    plots.save_cost_curve(pictures["cost"], cost, classic_cost)
    plots.save_confusion_matrix(
        pictures["confusion"], evaluation.confusion, evaluation.test_accuracy
    )
    plots.save_misclassified(
        pictures["misclassified"], test_pixels, split.y_test, evaluation.test_predictions
    )
    plots.save_first_layer_weights(pictures["weights"], first_layer_weights)
    return [Path(paths.metrics), Path(paths.classes), Path(paths.predictions), *pictures.values()]


def raw_pixels(X_scaled: np.ndarray, scaled: data.Scaled) -> np.ndarray:
    """Undo the standardisation, to draw digits as the 0..16 pixels they were."""
    return X_scaled * scaled.scale + scaled.mean


def metrics(evaluation: Evaluation, cost: np.ndarray) -> dict[str, float]:
    return {
        "test_accuracy": evaluation.test_accuracy,
        "train_accuracy": evaluation.train_accuracy,
        "final_cost": float(cost[-1]),
    }


# ---- MLflow ---------------------------------------------------------------------------


@dataclass
class Recorder:
    """Records one trained model as one MLflow run; does nothing when tracking is off."""

    store: tracking.Store | None = None
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.store is not None and self.run_id is not None

    def config(self, cfg: Config, params_file: Path | None) -> None:
        if not self.enabled:
            return
        tracking.log_params(self.store, self.run_id, config.flatten(cfg))
        if params_file is not None and params_file.is_file():
            tracking.log_artifacts(self.store, self.run_id, [params_file])

    def cost_curves(self, cost: np.ndarray, classic_cost: np.ndarray) -> None:
        """The minimised cost as a full history; the classic figure as its final value
        (its full curve is in cost.csv, and a second history would double the logging).
        The history is logged asynchronously: the store inserts it while the run goes
        on, and the run awaits it before it closes."""
        if self.enabled:
            tracking.log_curve(self.store, self.run_id, "train_cost", cost, wait=False)
            if len(classic_cost):
                tracking.log_metrics(
                    self.store, self.run_id, {"final_classic_cost": float(classic_cost[-1])}
                )

    def curve(self, key: str, values: np.ndarray | dict[int, float] | None) -> None:
        """A metric history: an array (steps 1..N) or a mapping of step to value; logged
        asynchronously, like the cost curve."""
        if not self.enabled or values is None or len(values) == 0:
            return
        if isinstance(values, dict):
            tracking.log_points(self.store, self.run_id, key, values, wait=False)
        else:
            tracking.log_curve(self.store, self.run_id, key, values, wait=False)

    def files(self, paths: list[Path], folder: str | None = None) -> None:
        if self.enabled:
            tracking.log_artifacts(self.store, self.run_id, paths, folder)

    def metrics(self, values: dict[str, float]) -> None:
        if self.enabled:
            tracking.log_metrics(self.store, self.run_id, values)

    def model(self, model_file: Path, scaling: data.Scaled) -> None:
        if self.enabled:
            tracking.log_model(self.store, self.run_id, model_file, scaling.mean, scaling.scale)

    def tag(self, key: str, value: str) -> None:
        if self.enabled:
            self.store.client.set_tag(self.run_id, key, value)


@dataclass(frozen=True)
class RunData:
    """The rows a run trains and tests on, as its MLflow run records them: ``md5`` is the
    ``data_md5`` tag and the datasets' digest (split.npz's md5, as in dvc.lock), and
    ``source`` the DVC path of split.npz."""

    split: data.Split
    md5: str
    source: str


def open_store(cfg: Config) -> tracking.Store | None:
    """Open the store up front, so a broken one fails before any work starts."""
    return tracking.open_store(cfg.tracking) if cfg.tracking.enabled else None


@contextlib.contextmanager
def recording(
    store: tracking.Store | None,
    cfg: Config,
    *,
    run_data: RunData,
    overrides: str | None = None,
    run_id: str | None = None,
    placement: Mapping[str, str] | None = None,
) -> Iterator[Recorder]:
    """A :class:`Recorder` on a new run (or ``run_id`` reopened), closed however it ends.
    A new run records ``run_data`` as its tag and dataset inputs. ``placement``: tags
    that place a sweep job's run (its parent run, its configuration), set as the run is
    created, so that a job killed at any moment after leaves a run its sweep can find."""
    if store is None:
        yield Recorder()
        return
    tags = run_tags(run_data.md5, overrides) | dict(placement or {}) if run_id is None else {}
    with tracking.run(
        store,
        run_id=run_id,
        name=tracking.run_name(cfg),
        description=tracking.describe(cfg),
        tags=tags,
    ) as active:
        if run_id is None:
            split, md5, source = run_data.split, run_data.md5, run_data.source
            tracking.log_datasets(store, active, split, md5, source)
        yield Recorder(store, active)


def run_tags(data_md5: str, overrides: str | None) -> dict[str, str]:
    """Provenance: git state, the data's md5, overrides, versions and BLAS. Never the
    environment, which may hold secrets such as MLFLOW_TRACKING_PASSWORD."""
    tags: dict[str, str] = {
        **provenance.git_state(tracking.project_root()),
        "data_md5": data_md5,
        "blas": provenance.blas_info(),
    }
    tags |= {f"version.{name}": v for name, v in provenance.package_versions().items()}
    if overrides is not None:
        tags["overrides"] = overrides
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    return tags


def train_and_record(
    cfg: Config,
    split: data.Split,
    onehot: data.OneHot,
    scaling: data.Scaled,
    recorder: Recorder,
    paths: PathsConfig,
    params_file: Path | None,
    progress: bool,
) -> TrainingResult:
    """Train, write the model and cost curve, and log them. A diverged run keeps the
    curve up to the failing iteration in MLflow before the error propagates."""
    recorder.config(cfg, params_file)
    accuracy_curve: dict[int, float] = {}

    def record_accuracy(iteration: int, network: Network) -> None:
        accuracy_curve[iteration] = accuracy_on_test(network, split)

    try:
        result = fit(cfg, split, onehot, progress, record_accuracy if recorder.enabled else None)
    except TrainingDiverged as error:
        recorder.cost_curves(error.partial_cost, error.partial_classic_cost)
        raise
    record_training(result, accuracy_curve, recorder, paths, scaling)
    return result


def accuracy_on_test(network: Network, split: data.Split) -> float:
    """The accuracy on the test rows, in the network's own float type."""
    predicted = modern.predict(network, split.X_test.astype(network.weights[0].dtype))
    return float(np.mean(predicted == split.y_test))


def record_training(
    result: TrainingResult,
    accuracy_curve: dict[int, float],
    recorder: Recorder,
    paths: PathsConfig,
    scaling: data.Scaled,
) -> None:
    """Write the model and cost curve of a trained network, and log them."""
    files = save_training(paths, result)
    recorder.cost_curves(result.cost_curve, result.classic_cost_curve)
    recorder.curve("validation_cost", result.validation_cost_curve)
    recorder.curve("test_accuracy_curve", accuracy_curve)
    if result.best_iteration is not None:
        recorder.metrics({"best_iteration": result.best_iteration})
    if result.validation_accuracy is not None:
        recorder.metrics({"validation_accuracy": result.validation_accuracy})
    recorder.tag("model_md5", provenance.md5(paths.model))
    recorder.files(files)
    recorder.model(Path(paths.model), scaling)


def evaluate_and_record(
    network: Network,
    split: data.Split,
    test_pixels: np.ndarray,
    cost: np.ndarray,
    classic_cost: np.ndarray,
    recorder: Recorder,
    paths: PathsConfig,
) -> Evaluation:
    evaluation = evaluate(network, split)
    files = save_evaluation(
        paths, evaluation, split, cost, classic_cost, network.weights[0], test_pixels
    )
    recorder.metrics(metrics(evaluation, cost))
    recorder.files([f for f in files if f.suffix != ".png"])
    recorder.files([f for f in files if f.suffix == ".png"], folder="plots")
    log.info(
        "test accuracy %.4f, train accuracy %.4f, final cost %.4f",
        evaluation.test_accuracy,
        evaluation.train_accuracy,
        cost[-1],
    )
    return evaluation
