"""The best run's pictures, drawn when the sweep ends.

With ``tracking.pictures=best`` a sweep's child runs draw no pictures as they finish
(drawing is the largest part of recording a child run); the run people open first, the
best, gets its four pictures here, in its folder and under ``plots/`` in its MLflow run,
exactly as it would have drawn them itself: the same network, curves and rows.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from digits_nn import config
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store

log = logging.getLogger(__name__)

# The run's files the pictures are drawn from (paths config keys), as record_training
# logs them at the root of its artifacts.
SOURCES = ("model", "cost")


def draw_best(sweep_dir: Path, best: dict[str, Any], store: Store | None) -> list[Path]:
    """Draw ``best``'s pictures (a finished row of the summary) into its job's folder, and
    log them to its run; returns the files, or nothing if its model cannot be found.

    The model and cost curve come from the job's folder, or, where the job ran on another
    machine, from its MLflow run's artifacts.
    """
    from digits_nn.core.training import TrainingResult
    from digits_nn.data.digits import N_PIXELS
    from digits_nn.data.model_file import read_model
    from digits_nn.pipeline import outputs
    from digits_nn.pipeline.prepared import prepare
    from digits_nn.pipeline.steps import evaluate_trained

    cfg = config.parse(config.unflatten(best["params"]))
    paths = cfg.paths.under(sweep_dir / best["key"])
    run = RunLog(store, best.get("run_id")) if store is not None else RunLog()
    with tempfile.TemporaryDirectory() as tmp:
        found = _sources(paths, run, Path(tmp))
        if found is None:
            log.warning("no pictures for the best run %s: its model is not found", best["key"])
            return []
        network = read_model(found["model"], n_inputs=N_PIXELS)
        result = TrainingResult(network, *outputs.read_cost_curve(found["cost"]))
    data = prepare(cfg)
    evaluation = evaluate_trained(cfg, result, data)
    files = outputs.save_pictures(paths, evaluation, result, data)
    run.files(files, folder="plots")
    return files


def _sources(paths: config.PathsConfig, run: RunLog, tmp: Path) -> dict[str, Path] | None:
    """The model and cost files, from the job's folder or else from its run."""
    local = {name: Path(getattr(paths, name)) for name in SOURCES}
    if all(path.is_file() for path in local.values()):
        return local
    if not run.enabled:
        return None
    try:
        return {
            name: Path(run.store.client.download_artifacts(run.run_id, path.name, str(tmp)))  # type: ignore[union-attr]
            for name, path in local.items()
        }
    except Exception as error:  # the run's artifacts are gone or unreachable
        log.warning("cannot download the best run's model: %s", str(error).splitlines()[0])
        return None
