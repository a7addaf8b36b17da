"""The job side of going on from an earlier budget: the trainer's state as a file, where
a job finds it, and the training step that goes on from it.

A job of successive halving or of a pruned search that a later budget may go on from
keeps its state (:data:`~digits_nn.sweeps.protocol.KEEP_STATE_ENV`): in its own folder,
and in its MLflow run's artifacts. A job asked to go on
(:data:`~digits_nn.sweeps.protocol.CONTINUE_ENV`) looks for that state in the earlier
budget's folder (found where the launcher shares this disk), then in the earlier run's
artifacts (found on any launcher whose jobs reach the store), and checks its md5 and
that it belongs to this configuration. Without it, the job trains from the start, which
gives the same bits, only later: correctness never depends on how the state travels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digits_nn import config
from digits_nn.config import Config
from digits_nn.core.network import Network
from digits_nn.core.training import TrainerState, TrainingResult
from digits_nn.data.files import check_array, load_npz, write_npz
from digits_nn.errors import ArtifactError
from digits_nn.pipeline.prepared import PreparedData
from digits_nn.pipeline.steps import RunContext, Start, record_training, train_watched
from digits_nn.sweeps.protocol import (
    CONTINUE_ENV,
    KEEP_STATE_ENV,
    STATE_ARTIFACTS,
    STATE_FILE,
    parse_continue_from,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """Go on from the state after ``iteration`` iterations, whose file has ``md5``, kept
    by the MLflow run ``run_id`` (None: that run was not tracked)."""

    iteration: int
    md5: str
    run_id: str | None = None


def requested() -> Request | None:
    """What this job was asked to go on from, if anything."""
    value = os.environ.get(CONTINUE_ENV, "")
    if not value:
        return None
    try:
        return Request(*parse_continue_from(value))
    except ValueError:
        log.warning("%s=%r names no state: training from the start", CONTINUE_ENV, value)
        return None


def keeps_state() -> bool:
    """Whether a later budget may go on from this job, which then keeps its state."""
    return os.environ.get(KEEP_STATE_ENV) == "1"


def configuration_digest(cfg: Config) -> str:
    """What a state belongs to: everything that decides the training, but its length."""
    training = {
        key: value
        for key, value in config.flatten(cfg).items()
        if key.split(".")[0] in ("seed", "data", "model", "train") and key != "train.iterations"
    }
    return hashlib.sha256(json.dumps(training, sort_keys=True, default=str).encode()).hexdigest()


# ---- the state file ---------------------------------------------------------------------


def state_arrays(start: Start, cfg: Config, every: int) -> dict[str, np.ndarray]:
    """The arrays of a state file: the trainer's state, the test accuracy measured every
    ``every`` iterations on the way, and the configuration they belong to."""
    state = start.state
    network = state.network
    arrays: dict[str, np.ndarray] = {
        "configuration": np.asarray(configuration_digest(cfg)),
        "accuracy_every": np.asarray(every, dtype=np.int64),
        "iteration": np.asarray(state.iteration, dtype=np.int64),
        "shuffles": np.asarray(json.dumps(state.shuffles, sort_keys=True)),
        "activation": np.asarray(network.activation),
        "output": np.asarray(network.output),
        "cost": state.cost_curve,
        "classic_cost": state.classic_cost_curve,
        "accuracy_iterations": np.asarray(sorted(start.accuracy_curve), dtype=np.int64),
        "accuracy_values": np.asarray(
            [start.accuracy_curve[i] for i in sorted(start.accuracy_curve)], dtype=np.float64
        ),
    }
    for layer, (W, b) in enumerate(zip(network.weights, network.biases), start=1):
        arrays[f"W{layer}"], arrays[f"b{layer}"] = W, b
    for number, velocity in enumerate(state.velocities or []):
        arrays[f"velocity{number}"] = velocity
    if state.validation_cost_curve is not None:
        arrays["validation_cost"] = state.validation_cost_curve
    return arrays


def write_state(path: Path, start: Start, cfg: Config, every: int) -> str:
    """Write the state file; its md5."""
    write_npz(path, **state_arrays(start, cfg, every))
    return md5_of(path)


def read_state(path: Path, cfg: Config, every: int) -> Start:
    """The state in ``path``, checked to belong to ``cfg`` and to have measured the test
    accuracy every ``every`` iterations; :class:`ArtifactError` saying why not."""
    arrays = load_npz(path)
    scalars = {"configuration": "U", "accuracy_every": "i", "iteration": "i", "shuffles": "U"}
    vectors = {"cost": "f", "classic_cost": "f", "accuracy_iterations": "i"}
    vectors["accuracy_values"] = "f"
    for name, kind in [*scalars.items(), *vectors.items()]:
        if name not in arrays:
            raise ArtifactError(f"{path}: not a trainer state (no '{name}').")
        check_array(path, name, arrays[name], kind, 0 if name in scalars else 1)
    if str(arrays["configuration"]) != configuration_digest(cfg):
        raise ArtifactError(f"{path}: the state of another configuration.")
    if int(arrays["accuracy_every"]) != every:
        raise ArtifactError(
            f"{path}: measured the test accuracy every {int(arrays['accuracy_every'])}"
            f" iterations, this run every {every}."
        )
    iteration = int(arrays["iteration"])
    layers = len(cfg.model.layer_sizes()) - 1
    network = Network(
        [arrays[f"W{k}"] for k in range(1, layers + 1)],
        [arrays[f"b{k}"] for k in range(1, layers + 1)],
        str(arrays["activation"]),
        str(arrays["output"]),
    )
    velocities = [arrays[f"velocity{i}"] for i in range(2 * layers) if f"velocity{i}" in arrays]
    state = TrainerState(
        network,
        iteration,
        json.loads(str(arrays["shuffles"])),
        velocities or None,
        arrays["cost"],
        arrays["classic_cost"],
        arrays.get("validation_cost"),
    )
    if len(state.cost_curve) != iteration:
        points = len(state.cost_curve)
        raise ArtifactError(f"{path}: {points} cost points for {iteration} iterations.")
    accuracy = dict(zip(arrays["accuracy_iterations"].tolist(), arrays["accuracy_values"].tolist()))
    return Start(state, accuracy)


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# ---- finding it, and going on from it ---------------------------------------------------


def find_start(ctx: RunContext, request: Request, earlier: Path) -> Start | None:
    """The state ``request`` names: from the earlier budget's folder ``earlier``, or from
    its MLflow run; None (train from the start) if neither holds it whole."""
    every = ctx.cfg.tracking.accuracy_every if ctx.run.enabled else 0
    reasons = []
    local = earlier / STATE_FILE
    try:
        return _checked(local, request, ctx.cfg, every)
    except (OSError, ArtifactError) as error:
        reasons.append(f"not in {earlier.name}/ ({error})")
    if request.run_id and ctx.run.enabled:
        client = ctx.run.store.client  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory(prefix="digits-nn-state-") as folder:
            try:
                path = client.download_artifacts(
                    request.run_id, f"{STATE_ARTIFACTS}/{STATE_FILE}", folder
                )
                start = _checked(Path(path), request, ctx.cfg, every)
                log.info("going on from run %s's state", request.run_id)
                return start
            except Exception as error:  # no such run or artifact, a store that failed
                reasons.append(f"not in run {request.run_id} ({str(error).splitlines()[0][:200]})")
    log.warning(
        "no state after %d iterations found (%s): training from the start, which gives the"
        " same bits",
        request.iteration,
        "; ".join(reasons) or "the run is not tracked",
    )
    return None


def _checked(path: Path, request: Request, cfg: Config, every: int) -> Start:
    found = md5_of(path)
    if found != request.md5:
        raise ArtifactError(f"{path}: md5 {found}, expected {request.md5}")
    start = read_state(path, cfg, every)
    if not request.iteration == start.state.iteration < cfg.train.iterations:
        raise ArtifactError(
            f"{path}: the state after {start.state.iteration} iterations, asked for"
            f" {request.iteration} on the way to {cfg.train.iterations}"
        )
    return start


@dataclass
class ContinuedTraining:
    """The training step of a job that may go on from an earlier budget (``request``,
    kept in the folder ``earlier``) and may keep its own state (in the folder ``keep``).

    After the call, ``extra`` holds what the job's record adds: where the training
    started, how many iterations it ran, its last validation cost, its state's md5.
    """

    request: Request | None = None
    earlier: Path | None = None
    keep: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __call__(self, ctx: RunContext, data: PreparedData) -> TrainingResult:
        start = None
        if self.request is not None and self.earlier is not None:
            start = find_start(ctx, self.request, self.earlier)
        result, curve = train_watched(ctx, data, start)
        record_training(ctx, result, curve, data)
        done = 0 if start is None else start.state.iteration
        self.extra = {"started_at": done, "trained_iterations": ctx.cfg.train.iterations - done}
        if result.validation_cost_curve is not None:
            self.extra["validation_cost"] = float(result.validation_cost_curve[-1])
        if self.keep is not None and result.state is not None:
            every = ctx.cfg.tracking.accuracy_every if ctx.run.enabled else 0
            path = self.keep / STATE_FILE
            self.extra["state_md5"] = write_state(path, Start(result.state, curve), ctx.cfg, every)
            ctx.run.files([path], folder=STATE_ARTIFACTS)
        return result
