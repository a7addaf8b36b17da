"""The train and evaluate steps, as the DVC stages and ``pipelines/run.py`` share them.

The DVC stages call one step each, reading and writing the artifacts between them;
``run.py`` chains the same steps in memory (:mod:`digits_nn.pipeline.app`) and writes
the same files into Hydra's run directory. Both give the same numbers for the same config.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from digits_nn.config import Config, PathsConfig
from digits_nn.core.network import Network
from digits_nn.core.training import TrainingResult, Watch
from digits_nn.data.steps import without_validation
from digits_nn.errors import TrainingDiverged
from digits_nn.pipeline import outputs, recording
from digits_nn.pipeline.evaluation import Evaluation, evaluate
from digits_nn.pipeline.fit import accuracy_on_test, fit
from digits_nn.pipeline.prepared import PreparedData
from digits_nn.tracking.runs import RunLog

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


def train_and_record(ctx: RunContext, data: PreparedData) -> TrainingResult:
    """Train, write the model and cost curve, and log them. A diverged run keeps the
    curve up to the failing iteration in MLflow before the error propagates."""
    recording.record_config(ctx.run, ctx.cfg, ctx.params_file)
    accuracy_curve: dict[int, float] = {}

    def record_accuracy(iteration: int, network: Network) -> None:
        accuracy_curve[iteration] = accuracy_on_test(network, data.split)

    every = ctx.cfg.tracking.accuracy_every if ctx.run.enabled else 0
    with progress_bar(ctx.cfg.train.iterations, ctx.progress) as progress:
        try:
            result = fit(ctx.cfg, data, Watch(every, record_accuracy, progress))
        except TrainingDiverged as error:
            recording.record_cost(ctx.run, error.partial_cost, error.partial_classic_cost)
            raise
    record_training(ctx, result, accuracy_curve, data)
    return result


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
    files = outputs.save_reports(ctx.outputs, evaluation, result, data)
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
