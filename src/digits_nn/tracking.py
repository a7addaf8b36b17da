"""MLflow: the store, the run lifecycle and batched logging.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run id rather than
MLflow's global "active run", so the train and evaluate stages (two processes) and the
parallel sweep workers can all write to the runs they own. MLflow is imported lazily:
importing it costs over a second, and only code that logs should pay for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from digits_nn.config import Config, TrackingConfig
from digits_nn.data import Split
from digits_nn.errors import Terminated, TrackingError, raise_on_sigterm  # noqa: F401

# Terminated and raise_on_sigterm live in errors, which the data stages import without
# this module; they are re-exported here for the code that closes and kills runs.

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.utils.async_logging.run_operations import RunOperations

log = logging.getLogger(__name__)

# MLflow 3 may open a new experiment in its GenAI view; this tag asks for the classic
# view of runs and metric charts.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")
# What the served model imports (digits_nn.serving and digits_nn.inference): its
# declared requirements, pinned to the versions installed here.
SERVING_REQUIREMENTS = ("mlflow", "numpy", "pandas")
# How long a call to a tracking server may keep trying: MLflow's default (7 retries with
# back-off, 120 s timeouts) took 248 s to give up on a stopped server. With this budget a
# call gives up within worst_case_http_wait() seconds, under a minute. A user's own
# settings of these variables are kept.
HTTP_RETRY_BUDGET = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}
# The userinfo of a URI (scheme://user:password@host), which may hold a secret.
USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]*)(?::[^/@\s]*)?@")
# Text artifacts small enough to be scanned for a URI with credentials before logging.
REDACTED_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".md", ".txt", ".log"}


def project_root() -> Path:
    """The repository whose ``mlflow.db`` is the default store.

    DVC sets ``DVC_ROOT`` for every stage; for a queued experiment it names the parent
    repository, not the temporary copy the stage runs in, so runs survive the copy.
    Outside DVC, the nearest folder upwards that holds ``.dvc/``.
    """
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    return next((p for p in (cwd, *cwd.parents) if (p / ".dvc").is_dir()), cwd)


def redact(text: str) -> str:
    """``text`` with the password (or token) of every URI in it replaced by ``***``.

    Secrets must never leave the process: a tracking URI such as
    ``http://alice:s3cret@host`` reaches params, tags, logged files and messages through
    the config and the overrides alike, so every one of them passes through here.
    """

    def hide(match: re.Match[str]) -> str:
        user = match["user"]
        has_password = match.group(0).rstrip("@") != match["scheme"] + user
        return (
            f"{match['scheme']}{user}:***@" if user and has_password else f"{match['scheme']}***@"
        )

    return USERINFO.sub(hide, text)


# Loggers that speak once per attempt or per batch when a tracking server is gone. The
# run's own error names the server once (await_pending, run); without this, a job whose
# server stopped printed some 60 lines: a retry warning per request and attempt, and an
# error per asynchronous batch of its curve.
PER_ATTEMPT_LOGGERS = ("urllib3.connectionpool", "mlflow.utils.async_logging.async_logging_queue")


def limit_http_retries() -> None:
    """Give calls to a tracking server the project's retry budget, unless the user set one,
    and leave the report of a failure to the run's one line."""
    for key, value in HTTP_RETRY_BUDGET.items():
        os.environ.setdefault(key, value)
    for name in PER_ATTEMPT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def worst_case_http_wait() -> float:
    """The longest one call can take under the current budget: every attempt timing out,
    plus the back-off (factor * 2**i, plus jitter) between attempts."""

    def setting(key: str) -> float:
        return float(os.environ.get(key, HTTP_RETRY_BUDGET[key]))

    retries = int(setting("MLFLOW_HTTP_REQUEST_MAX_RETRIES"))
    factor = setting("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
    jitter = setting("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")
    timeout = setting("MLFLOW_HTTP_REQUEST_TIMEOUT")
    return (retries + 1) * timeout + sum(factor * 2**i + jitter for i in range(retries))


def resolve_uri(config: TrackingConfig, root: Path | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if config.uri:
        return config.uri
    return f"sqlite:///{(root or project_root()) / 'mlflow.db'}"


class RedactingClient:
    """An :class:`mlflow.MlflowClient` whose every param, tag, run name and text file
    passes through :func:`redact` on its way out, whoever writes it (the pipeline, the
    sweep callback, a DVC stage). Every other call goes to the client unchanged."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        # Only called for what this class lacks; "_client" itself is missing while an
        # unpickled copy is being rebuilt (a launcher ships the callback to its jobs).
        if name == "_client":
            raise AttributeError(name)
        return getattr(self._client, name)

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> Any:
        tags = {key: redact(str(value)) for key, value in (tags or {}).items()}
        name = redact(run_name) if run_name else run_name
        return self._client.create_run(experiment_id, start_time, tags, name)

    def set_tag(self, run_id: str, key: str, value: Any, **kwargs: Any) -> None:
        self._client.set_tag(run_id, key, redact(str(value)), **kwargs)

    def log_param(self, run_id: str, key: str, value: Any, **kwargs: Any) -> Any:
        return self._client.log_param(run_id, key, redact(str(value)), **kwargs)

    def log_batch(
        self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = (), **kwargs: Any
    ) -> Any:
        from mlflow.entities import Param, RunTag

        params = [Param(p.key, redact(str(p.value))) for p in params]
        tags = [RunTag(t.key, redact(str(t.value))) for t in tags]
        # With synchronous=False, MLflow returns the operations to await: pass them on.
        return self._client.log_batch(run_id, metrics, params, tags, **kwargs)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        with _redacted_copy(Path(local_path)) as path:
            self._client.log_artifact(run_id, str(path), artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        with _redacted_copy(Path(local_dir)) as path:
            self._client.log_artifacts(run_id, str(path), artifact_path)


@contextlib.contextmanager
def _redacted_copy(path: Path) -> Iterator[Path]:
    """``path`` itself, or a copy of it whose text files hold no credentials."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    dirty = {f for f in files if f.suffix in REDACTED_SUFFIXES and _has_credentials(f)}
    if not dirty:
        yield path
        return
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        if path.is_file():
            shutil.copy2(path, copy)
        else:
            shutil.copytree(path, copy)
        for original in dirty:
            target = copy if path.is_file() else copy / original.relative_to(path)
            target.write_text(redact(original.read_text(errors="replace")))
        yield copy


def _has_credentials(path: Path) -> bool:
    text = path.read_text(errors="replace")
    return redact(text) != text


@dataclass
class Store:
    client: MlflowClient
    uri: str
    experiment_id: str
    # Metric batches sent with MLflow's asynchronous logging and not yet awaited; run()
    # awaits them before it closes the run, however the run ends.
    pending: list[RunOperations] = field(default_factory=list)


def open_store(config: TrackingConfig, root: Path | None = None) -> Store:
    """Open (creating and migrating if new) the store and the experiment, or fail clearly.

    A fresh SQLite store opened by several processes at once is corrupted by racing
    schema migrations, so creation happens under a file lock beside the database. The
    experiment tag is written every time: it doubles as a check that the store is
    writable, before any training starts.
    """
    root = root or project_root()
    uri = resolve_uri(config, root)
    if redact(uri) != uri:
        # MLflow prints each run's URL, built from the URI, credentials included.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    db_path = _sqlite_path(uri)
    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if db_path is not None:
        from filelock import FileLock

        if not db_path.parent.is_dir():
            raise TrackingError(
                f"MLflow store {redact(uri)}: folder {db_path.parent} does not exist."
            )
        lock = FileLock(f"{db_path}.lock", timeout=120)
    try:
        with lock, _fail_fast():
            from mlflow import MlflowClient

            client = RedactingClient(MlflowClient(tracking_uri=uri))
            experiment = client.get_experiment_by_name(config.experiment)
            if experiment is None:
                # Absolute, so that runs logged from a temporary copy keep their artifacts.
                location = (root / "mlartifacts").as_uri() if db_path is not None else None
                experiment_id = client.create_experiment(
                    config.experiment,
                    artifact_location=location,
                    tags=dict([EXPERIMENT_KIND_TAG]),
                )
            else:
                experiment_id = experiment.experiment_id
                client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND_TAG)
    except TrackingError:
        raise
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrackingError(
            f"MLflow store {redact(uri)}: cannot be opened for writing ({redact(reason)[:300]})."
            " Point"
            " MLFLOW_TRACKING_URI or tracking.uri at a working store, or run with"
            " tracking.enabled=false."
        ) from None
    limit_http_retries()  # after the quick probe above: for the run's own calls
    return Store(client, uri, experiment_id)  # type: ignore[arg-type]


def _sqlite_path(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    # sqlite:///file:/path/mlflow.db?mode=ro&uri=true is SQLite's own URI form.
    return Path(uri[len(prefix) :].split("?")[0].removeprefix("file:"))


@contextlib.contextmanager
def _fail_fast() -> Iterator[None]:
    """While probing the store, don't retry an unreachable server for minutes (MLflow's
    default backoff; a user's own settings of these variables are kept), and keep
    MLflow's own tracebacks out of the one message the user gets."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    added = [key for key in quick if key not in os.environ]
    os.environ.update({key: quick[key] for key in added})
    import mlflow  # noqa: F401 - its import configures the "mlflow" logger; do it first

    mlflow_log = logging.getLogger("mlflow")
    level = mlflow_log.level
    mlflow_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        mlflow_log.setLevel(level)
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def run(
    store: Store,
    *,
    run_id: str | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
) -> Iterator[str]:
    """Create a run (or reopen ``run_id``) and always close it.

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
        yield run_id
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
    """Wait for every asynchronous batch sent so far; any that failed fails the run."""
    pending, store.pending = store.pending, []
    failures = []
    for operations in pending:
        try:
            operations.wait()
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


def log_params(store: Store, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(key, str(value)) for key, value in params.items()]
    for start in range(0, len(items), 100):  # MLflow's per-call limit for params
        store.client.log_batch(run_id, params=items[start : start + 100])


def log_metrics(store: Store, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
    store.client.log_batch(run_id, metrics=batch)


def log_curve(
    store: Store,
    run_id: str,
    key: str,
    values: np.ndarray,
    first_step: int = 1,
    wait: bool = True,
) -> None:
    """A metric history, one step per value, from ``first_step`` on."""
    log_points(store, run_id, key, dict(enumerate(values.tolist(), start=first_step)), wait)


def log_points(
    store: Store, run_id: str, key: str, points: Mapping[int, float], wait: bool = True
) -> None:
    """A metric history at chosen steps, e.g. the test accuracy every N iterations.

    One ``log_batch`` call: the client sends it in batches of at most 1000 metrics
    (the store's limit); one call per step would take tens of seconds for a 3000-point
    curve. With ``wait=False`` it goes through MLflow's asynchronous logging, so the
    run's other work overlaps the store's inserts; :func:`run` awaits it before the run
    closes.
    """
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(key, float(value), now, step) for step, value in points.items()]
    if wait:
        store.client.log_batch(run_id, metrics=batch)
    else:
        store.pending.append(store.client.log_batch(run_id, metrics=batch, synchronous=False))


def log_datasets(store: Store, run_id: str, split: Split, digest: str, source: str) -> None:
    """The run's train and test rows as its two MLflow dataset inputs, ``digits-train``
    (context ``training``) and ``digits-test`` (``testing``), so the runs table shows
    which data each run saw.

    ``digest`` is the run's ``data_md5`` (split.npz's md5, as dvc.lock records it) rather
    than MLflow's own hash of the arrays, so a run can be matched to a DVC revision;
    ``source`` is the DVC path of that file.
    """
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
    store.client.log_inputs(run_id, datasets=inputs)


def log_artifacts(
    store: Store, run_id: str, paths: Iterable[str | Path], folder: str | None = None
) -> None:
    for path in paths:
        store.client.log_artifact(run_id, str(path), artifact_path=folder)


def find_run(store: Store, tag: str, value: str) -> str | None:
    """The newest run of the experiment whose ``tag`` equals ``value``."""
    runs = store.client.search_runs(
        [store.experiment_id],
        filter_string=f"tags.{tag} = '{value}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def run_name(config: Config) -> str:
    """A name a person can read in the dashboard, e.g. ``h30-a0.25-i3000-s0``."""
    model = config.model
    hidden = "x".join(map(str, model.hidden_sizes)) if model.hidden_sizes else model.hidden_size
    return f"h{hidden}-a{config.train.alpha:g}-i{config.train.iterations}-s{config.seed}"


def describe(config: Config) -> str:
    """One line for the dashboard: the network and how it is trained."""
    model, train = config.model, config.train
    sizes = "-".join(map(str, model.layer_sizes(64, 10)))
    if train.optimizer == "gd" and train.batch_size is None:
        how = "full-batch gradient descent"
    else:
        rows = "all" if train.batch_size is None else train.batch_size
        how = f"{'Nesterov ' if train.nesterov and train.optimizer == 'momentum' else ''}"
        how += f"{train.optimizer} on batches of {rows} rows"
    extras = [f"L2 {train.l2:g}"] if train.l2 else []
    if train.schedule == "inverse_time":
        extras.append(f"inverse-time decay {train.decay:g}")
    if train.patience is not None:
        extras.append(f"early stopping (patience {train.patience})")
    return (
        f"{sizes} {model.activation} network, {model.output} output, {model.init} init, {how}"
        f" with alpha {train.alpha:g} for {train.iterations} iterations"
        f"{', ' + ', '.join(extras) if extras else ''}, seed {config.seed}."
    )


def log_model(
    store: Store, run_id: str, model_file: Path, mean: np.ndarray, scale: np.ndarray
) -> None:
    """Log the network as the run's ``model``: an MLflow pyfunc model from code."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        saved = save_model(Path(tmp) / "model", model_file, mean, scale)
        store.client.log_artifacts(run_id, str(saved), "model")


def save_model(target: Path, model_file: Path, mean: np.ndarray, scale: np.ndarray) -> Path:
    """Write the MLflow model of ``model_file`` into the new folder ``target``.

    The code is :mod:`digits_nn.serving` with this package beside it; the weights and
    the fitted scaling travel as npz artifacts, so loading the model unpickles nothing.
    The requirements are declared, not inferred: inference would import and run the
    model, and serving needs only mlflow, numpy and pandas (it never imports the
    training code).
    """
    import tempfile
    from importlib import metadata

    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from digits_nn import artifacts, serving

    package = Path(serving.__file__).parent
    # No input schema: MLflow would refuse int64 pixels for double columns, and a model
    # cannot declare "integer or float". serving.pixels_of checks the columns instead.
    signature = ModelSignature(inputs=None, outputs=Schema([ColSpec("long", "digit")]))
    requirements = [f"{name}=={metadata.version(name)}" for name in SERVING_REQUIREMENTS]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow suggests an input example, whose check would load and run the model.
        warnings.simplefilter("ignore", UserWarning)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        scaling = Path(tmp) / "scaling.npz"
        artifacts.write_npz(scaling, mean=mean, scale=scale)
        mlflow.pyfunc.save_model(
            path=target,
            python_model=str(package / "serving.py"),
            artifacts={"weights": str(model_file), "scaling": str(scaling)},
            code_paths=[str(package)],
            signature=signature,
            pip_requirements=requirements,
        )
    return target
