"""The run lifecycle and what is logged to one run.

:func:`run` opens a run and always closes it (FINISHED, KILLED or FAILED, never left
RUNNING); :class:`RunLog` is what code logs to a run through, and logs nothing when
tracking is off.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digits_nn.data.steps import Split
from digits_nn.errors import Terminated, TrackingError
from digits_nn.tracking.redaction import redact
from digits_nn.tracking.store import Store, as_global

log = logging.getLogger(__name__)


@contextlib.contextmanager
def run(
    store: Store,
    *,
    run_id: str | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
) -> Iterator[RunLog]:
    """Create a run (or reopen ``run_id``) and always close it; yields its :class:`RunLog`.

    FINISHED if the block completes, KILLED on Ctrl-C or SIGTERM, FAILED on any other
    exception, whose message is kept in the ``error`` tag. No run is left RUNNING.
    """
    client = store.client
    if run_id is None:
        all_tags = dict(tags or {})
        if description:
            all_tags["mlflow.note.content"] = description
        run_id = client.create_run(store.experiment_id, run_name=name, tags=all_tags).info.run_id
    else:
        client.update_run(run_id, status="RUNNING")
        for key, value in (tags or {}).items():
            client.set_tag(run_id, key, value)
    try:
        yield RunLog(store, run_id)
        await_pending(store)
    except (KeyboardInterrupt, Terminated):
        # Batches in flight land first: a closed run is complete, and the process may
        # exit right after.
        with contextlib.suppress(Exception):
            await_pending(store)
        client.set_terminated(run_id, status="KILLED")
        raise
    except Exception as error:
        if not _server_unreachable(error):
            _close_failed(store, run_id, error)
            raise
        # The server is gone: closing the run would spend another retry budget in vain.
        # One line naming the server; what it already holds stays there.
        raise TrackingError(
            f"MLflow server {redact(store.uri)} stopped answering during run {run_id}"
            f" ({redact(_first_line(error))[:200]}). The runs it holds are kept; run the"
            " job again once it is back."
        ) from None
    except BaseException as error:
        _close_failed(store, run_id, error)
        raise
    else:
        client.set_terminated(run_id, status="FINISHED")


def await_pending(store: Store) -> None:
    """Wait for every history batch sent so far; any that failed fails the run."""
    pending, store.pending = store.pending, []
    failures = []
    for batch in pending:
        try:
            batch.result()
        except Exception as error:
            failures.append(str(error).strip().splitlines()[0][:300])
    if failures:
        raise TrackingError(
            f"MLflow store {redact(store.uri)}: {len(failures)} metric batch(es) could not be"
            f" logged ({failures[0]})."
        )


def _close_failed(store: Store, run_id: str, error: BaseException) -> None:
    """FAILED, with the error as a tag, once the batches in flight have landed."""
    with contextlib.suppress(Exception):
        await_pending(store)
    with contextlib.suppress(Exception):
        store.client.set_tag(run_id, "error", str(error)[:5000] or type(error).__name__)
    store.client.set_terminated(run_id, status="FAILED")


def _server_unreachable(error: Exception) -> bool:
    """A tracking server that refused, dropped or timed out the call after every retry
    (MLflow wraps the requests error in an MlflowException naming the API call)."""
    import requests

    if isinstance(error, requests.exceptions.RequestException):
        return True
    text = str(error)
    return "API request to" in text and "failed with exception" in text


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def record_failure(store: Store, name: str, tags: Mapping[str, str], error: str) -> str:
    """A run that failed before it could start work, closed as FAILED with its error."""
    run_id = store.client.create_run(
        store.experiment_id, run_name=name, tags=dict(tags)
    ).info.run_id
    store.client.set_tag(run_id, "error", error[:5000])
    store.client.set_terminated(run_id, status="FAILED")
    return run_id


@dataclass(frozen=True)
class RunLog:
    """What code logs to one run through: the store and the run's id.

    ``RunLog()`` is a run of a pipeline whose tracking is off: it logs nothing. Metric
    histories are written by the store's own thread (:class:`Store`), so the store inserts
    them while the run goes on; :func:`run` awaits them before it closes the run.
    """

    store: Store | None = None
    run_id: str | None = None

    @property
    def enabled(self) -> bool:
        return self.store is not None and self.run_id is not None

    def params(self, params: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow's per-call limit for params
            self._client.log_batch(self.run_id, params=items[start : start + 100])

    def metrics(
        self,
        metrics: Mapping[str, float],
        step: int = 0,
        model_id: str | None = None,
        dataset: tuple[str, str] | None = None,
    ) -> None:
        """Values at one step (0: the run's final figures), linked to the logged model
        ``model_id`` and measured on ``dataset`` (a dataset input's name and digest)."""
        if not self.enabled or not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        name, digest = dataset or (None, None)
        batch = [
            Metric(key, float(value), now, step, model_id, name, digest)
            for key, value in metrics.items()
        ]
        self._client.log_batch(self.run_id, metrics=batch)

    def history(self, key: str, values: np.ndarray | Mapping[int, float] | None) -> None:
        """A metric history: an array (steps 1..N, logged at every ``curve_every``-th step
        and the last, :func:`every_nth`) or a mapping of step to value, logged whole.

        One ``log_batch`` call, on the store's history thread: the client sends it in
        batches of at most 1000 metrics (the store's limit); one call per step would take
        tens of seconds for a 3000-point curve.
        """
        if not self.enabled or values is None or len(values) == 0:
            return
        from mlflow.entities import Metric

        if not isinstance(values, Mapping):
            values = every_nth(np.asarray(values), self.store.curve_every)  # type: ignore[union-attr]
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for step, value in values.items()]
        store: Store = self.store  # type: ignore[assignment]
        store.pending.append(store.writer.submit(self._client.log_batch, self.run_id, batch))

    def files(self, paths: Iterable[str | Path], folder: str | None = None) -> None:
        if self.enabled:
            for path in paths:
                self._client.log_artifact(self.run_id, str(path), artifact_path=folder)

    def tag(self, key: str, value: str) -> None:
        if self.enabled:
            self._client.set_tag(self.run_id, key, value)

    def datasets(self, split: Split, digest: str, source: str) -> None:
        """The run's train and test rows as its two MLflow dataset inputs, ``digits-train``
        (context ``training``) and ``digits-test`` (``testing``), so the runs table shows
        which data each run saw.

        ``digest`` is the run's ``data_md5`` (split.npz's md5, as dvc.lock records it)
        rather than MLflow's own hash of the arrays, so a run can be matched to a DVC
        revision; ``source`` is the DVC path of that file.
        """
        if not self.enabled:
            return
        import mlflow.data
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        with warnings.catch_warnings():
            # A relative path is claimed by both the file and the file: URI source, which
            # are the same "local" source type; MLflow warns that it picked one.
            warnings.simplefilter("ignore", UserWarning)
            origin = resolve_dataset_source(source)
        parts = [
            ("digits-train", "training", split.X_train, split.y_train),
            ("digits-test", "testing", split.X_test, split.y_test),
        ]
        inputs = []
        for name, context, features, targets in parts:
            dataset = mlflow.data.from_numpy(
                features, source=origin, targets=targets, name=name, digest=digest
            )
            # What mlflow.log_input builds, for a run named by its id instead of the active one.
            entity = dataset._to_mlflow_entity()
            inputs.append(DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
        log_inputs_once_stored(self._client, self.run_id, inputs)

    @property
    def _client(self) -> Any:
        return self.store.client  # type: ignore[union-attr]


def every_nth(curve: np.ndarray, n: int) -> dict[int, float]:
    """A curve of iterations 1..len(curve) as {iteration: value}, at every ``n``-th
    iteration and at the first and the last, so that a thinned curve still starts and
    ends where the training did."""
    values = curve.tolist()
    last = len(values)
    steps = sorted({1, *range(n, last + 1, n), last}) if last else []
    return {step: values[step - 1] for step in steps}


def log_inputs_once_stored(client: Any, run_id: str, inputs: list[Any]) -> None:
    """Log dataset inputs that another run may be storing at the same moment.

    The store keeps one row per dataset (experiment, name, digest), and reuses it when it
    finds it; two runs on the same rows that both miss it and both insert it (two jobs
    of a sweep on the same fold) leave the second with a unique-constraint error. Again,
    it finds the row the first one stored.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(3):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as error:
            if "unique" not in str(error).lower() or attempt == 2:
                raise


@contextlib.contextmanager
def as_active(run: RunLog) -> Iterator[None]:
    """``run`` as MLflow's active run, in its store made global, for the block: for
    MLflow's fluent functions (``mlflow.models.evaluate``), which log only there. The
    run stays RUNNING after: :func:`run` closes it, however the block ended."""
    import mlflow

    with as_global(run.store):  # type: ignore[arg-type]
        mlflow.start_run(run_id=run.run_id)
        try:
            yield
        finally:
            mlflow.end_run(status="RUNNING")
