"""The train and evaluate steps, as the DVC stages and ``pipelines/run.py`` share them.

The DVC stages call one step each, reading and writing the artifacts between them (and
the train stage hands its run over to the evaluate stage: :func:`hand_over`);
``run.py`` chains the same steps in memory (:mod:`digits_nn.pipeline.app`) and writes
the same files into Hydra's run directory. Both give the same numbers for the same config.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from digits_nn.config import Config, PathsConfig
from digits_nn.core.network import Model
from digits_nn.core.training import TrainerState, TrainingResult, Watch, is_checkpoint
from digits_nn.credentials import redact
from digits_nn.data.files import write_json
from digits_nn.data.steps import without_validation
from digits_nn.errors import ConfigError, TrainingDiverged
from digits_nn.pipeline import numeric_platform, outputs, peers, recording
from digits_nn.pipeline.evaluation import Evaluation, evaluate, evaluate_predictions
from digits_nn.pipeline.fit import accuracy_on_test, fit
from digits_nn.pipeline.prepared import PreparedData
from digits_nn.pipeline.provenance import md5
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store

log = logging.getLogger(__name__)

# How often the progress bar's cost read-out is refreshed; every iteration would cost
# more than the iteration itself on the classic network.
PROGRESS_EVERY = 50


@dataclass(frozen=True)
class RunContext:
    """One run of the pipeline: its config, the MLflow run it logs to, where it writes
    its outputs, the params file it was given, whether to show progress, and whether to
    draw its pictures (a sweep draws only its best run's, at its end)."""

    cfg: Config
    run: RunLog
    outputs: PathsConfig
    params_file: Path | None = None
    progress: bool = False
    pictures: bool = True


@dataclass(frozen=True)
class Start:
    """Where a run's training goes on from: the trainer's state after some iterations of
    this same configuration, and the test accuracy measured on the way there."""

    state: TrainerState
    accuracy_curve: dict[int, float]


def announce_platform(recorded_file: str | Path) -> str | None:
    """Say in one line, before training, when this machine's numeric platform differs
    from the one ``recorded_file`` names (the committed outputs'), and what changes."""
    line = numeric_platform.notice(
        outputs.read_platform(recorded_file), numeric_platform.describe()
    )
    if line:
        log.warning(line)
    return line


def train_and_record(ctx: RunContext, data: PreparedData) -> TrainingResult:
    """Train, write the model and cost curve, and log them. A diverged run keeps the
    curve up to the failing iteration in MLflow before the error propagates."""
    result, accuracy_curve = train_watched(ctx, data)
    record_training(ctx, result, accuracy_curve, data)
    return result


def train_watched(
    ctx: RunContext, data: PreparedData, start: Start | None = None
) -> tuple[TrainingResult, dict[int, float]]:
    """Log the config, then train (or go on from ``start``) measuring the test accuracy
    every ``tracking.accuracy_every`` iterations; the result and that curve. A diverged
    run keeps its curve in MLflow before the error propagates."""
    recording.record_config(ctx.run, ctx.cfg, ctx.params_file)
    every = ctx.cfg.tracking.accuracy_every if ctx.run.enabled else 0
    iterations = ctx.cfg.train.iterations
    accuracy_curve: dict[int, float] = {}
    if start is not None:  # the points a run of this length measures, up to the start
        accuracy_curve = {
            i: value
            for i, value in start.accuracy_curve.items()
            if i <= start.state.iteration and is_checkpoint(i, every, iterations)
        }

    def record_accuracy(iteration: int, network: Model) -> None:
        accuracy_curve[iteration] = accuracy_on_test(network, data.split)

    # An ensemble's members train one after the other: the bar counts all their passes.
    with progress_bar(iterations * ctx.cfg.model.members, ctx.progress) as progress:
        try:
            state = None if start is None else start.state
            result = fit(ctx.cfg, data, Watch(every, record_accuracy, progress), state)
        except TrainingDiverged as error:
            recording.record_cost(ctx.run, error.partial_cost, error.partial_classic_cost)
            raise
    return result, accuracy_curve


def record_training(
    ctx: RunContext, result: TrainingResult, accuracy_curve: dict[int, float], data: PreparedData
) -> None:
    """Write the model and cost curve of a trained network, and log them."""
    files = outputs.save_training(ctx.outputs, result)
    model_id = recording.record_model(ctx.run, ctx.cfg, Path(ctx.outputs.model), data.scaled)
    recording.record_training(ctx.run, result, accuracy_curve, files, model_id)


def evaluate_and_record(ctx: RunContext, result: TrainingResult, data: PreparedData) -> Evaluation:
    """Evaluate the trained network, write the metrics, reports and pictures, and log them.

    The train accuracy is measured on the rows trained on (without validation rows)."""
    cfg = ctx.cfg
    evaluation = evaluate_trained(cfg, result, data)
    files = outputs.save_network_reports(ctx.outputs, evaluation, result, data)
    recording.record_evaluation(ctx.run, outputs.metrics(evaluation, result), data.split)
    ctx.run.files(files)
    if ctx.pictures:
        record_pictures(ctx, evaluation, result, data)
    log.info(
        "test accuracy %.4f, train accuracy %.4f, final cost %.4f",
        evaluation.test_accuracy,
        evaluation.train_accuracy,
        result.final_cost,
    )
    return evaluation


def handover_file(paths: PathsConfig) -> Path:
    """Where the train stage names its run for the evaluate stage: beside the model, in
    no file DVC tracks (a run id is new every time, and dvc.lock must not change)."""
    model = Path(paths.model)
    return model.with_name(f".{model.stem}.run.json")  # not .model.npz*: a temp file's name


def hand_over(paths: PathsConfig, run: RunLog) -> None:
    """The train stage's run, and the model it trained, for the evaluate stage."""
    if run.run_id is not None:
        write_json(handover_file(paths), {"run_id": run.run_id, "model_md5": md5(paths.model)})


def handed_over(paths: PathsConfig, store: Store) -> tuple[str | None, str]:
    """The run the train stage trained this model in, if it handed it over and the
    store holds it; else None and why not."""
    where = handover_file(paths)
    try:
        handover = json.loads(where.read_text())
        run_id, model_md5 = str(handover["run_id"]), handover["model_md5"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"the train stage handed over no run ({where} is missing or not whole)"
    if model_md5 != md5(paths.model):
        return None, f"{paths.model} is not the model the train stage's run {run_id} trained"
    try:
        run = store.client.get_run(run_id)
    except Exception:  # not in this store
        run = None
    if run is None or run.info.experiment_id != store.experiment_id:
        return None, f"the train stage's run {run_id} is not in {redact(store.uri)}"
    return run_id, ""


def run_to_evaluate(
    store: Store | None, cfg: Config, run_data: recording.RunData
) -> contextlib.AbstractContextManager[RunLog]:
    """The evaluate stage's run: the train stage's, as it handed it over; otherwise a run
    of its own, tagged with the model's md5 (the log says why), never a guess."""
    if store is not None:
        run_id, why_not = handed_over(cfg.paths, store)
        if run_id is not None:
            return recording.reopened_run(store, run_id)
        log.warning("evaluate records into a run of its own: %s", why_not)
    tags = {"model_md5": md5(cfg.paths.model)}
    return recording.new_run(store, cfg, run_data, tags)


def peer_and_record(ctx: RunContext, data: PreparedData) -> tuple[Evaluation, float | None]:
    """Fit the run's scikit-learn peer on the run's rows and record it as a network's run
    is recorded (the same metrics, reports and dataset inputs); its validation accuracy,
    if there are validation rows."""
    cfg = ctx.cfg
    assert cfg.peer is not None
    recording.record_config(ctx.run, cfg, ctx.params_file)
    log.info("fitting the peer %s", peers.PEERS_BY_NAME[cfg.peer].label)
    fitted = peers.fit_peer(cfg.peer, data, cfg.seed, cfg.train.validation_size)
    rows = without_validation(data.split, cfg.train.validation_size, cfg.seed)
    evaluation = evaluate_predictions(rows, fitted.train_predictions, fitted.test_predictions)
    figures = {
        "test_accuracy": evaluation.test_accuracy,
        "train_accuracy": evaluation.train_accuracy,
    }
    if fitted.validation_accuracy is not None:
        figures["validation_accuracy"] = fitted.validation_accuracy
    files = outputs.save_peer_evaluation(ctx.outputs, evaluation, data, figures)
    ctx.run.metrics(figures)
    ctx.run.files([f for f in files if f.suffix != ".png"])
    ctx.run.files([f for f in files if f.suffix == ".png"], folder="plots")
    log.info("peer %s: test accuracy %.4f", cfg.peer, evaluation.test_accuracy)
    return evaluation, fitted.validation_accuracy


def refuse_peer(cfg: Config) -> None:
    """The DVC stages train this project's network only: its model file has no room
    for a scikit-learn estimator."""
    if cfg.peer is not None:
        raise ConfigError(
            f"peer={cfg.peer!r} is not allowed in the DVC pipeline: null (the network). Train"
            f" a peer with `python pipelines/run.py peer={cfg.peer}` or `sweep=peers`."
        )


def evaluate_trained(cfg: Config, result: TrainingResult, data: PreparedData) -> Evaluation:
    """The evaluation of a trained network; its train accuracy on the rows it fitted."""
    fitted = without_validation(data.split, cfg.train.validation_size, cfg.seed)
    return evaluate(result.network, fitted)


def record_pictures(
    ctx: RunContext, evaluation: Evaluation, result: TrainingResult, data: PreparedData
) -> None:
    """Draw the run's four pictures into its outputs and log them under ``plots/``."""
    ctx.run.files(outputs.save_pictures(ctx.outputs, evaluation, result, data), folder="plots")


@contextlib.contextmanager
def progress_bar(iterations: int, shown: bool) -> Iterator[Callable[[int, float], None] | None]:
    """A training's progress as a bar with its cost, for a person at a terminal."""
    if not shown:
        yield None
        return
    with tqdm(total=iterations, desc="train", unit="it", leave=False) as bar:

        def advance(iteration: int, cost: float) -> None:
            if iteration % PROGRESS_EVERY == 0 or iteration == iterations:
                bar.set_postfix(cost=f"{cost:.4f}", refresh=False)
                bar.update(iteration - bar.n)

        yield advance
