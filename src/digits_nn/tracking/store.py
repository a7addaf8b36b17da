"""The MLflow store: where runs go, opening it (created and migrated once), and how
long a call to a tracking server may keep trying."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digits_nn.config import TrackingConfig
from digits_nn.errors import TrackingError
from digits_nn.tracking.redaction import RedactingClient, redact

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow 3 may open a new experiment in its GenAI view; this tag asks for the classic
# view of runs and metric charts.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")


# How long a call to a tracking server may keep trying: MLflow's default (7 retries with
# back-off, 120 s timeouts) spends minutes on a stopped server. With this budget a
# call gives up within worst_case_http_wait() seconds, under a minute. A user's own
# settings of these variables are kept.
HTTP_RETRY_BUDGET = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


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


# Loggers that speak once per request and attempt when a tracking server is gone: the
# run's own error names the server once (await_pending, run), rather than a retry warning
# per request.
PER_ATTEMPT_LOGGERS = ("urllib3.connectionpool",)


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


@dataclass
class Store:
    """An open store: its client, URI and experiment, and the thread that writes metric
    histories while the run goes on.

    The histories are written by a thread of the store's own rather than by MLflow's
    asynchronous logging: closing a run shuts MLflow's logging thread down, and that
    thread notices only when its one-second wait for more batches ends, so each close
    would wait for that wait.
    """

    client: MlflowClient
    uri: str
    experiment_id: str
    # The iterations a cost curve is logged at: every curve_every-th (tracking.curve_every).
    curve_every: int = 1
    # History batches sent to :attr:`writer` and not yet awaited; run() awaits them before
    # it closes the run, however the run ends.
    pending: list[Future[None]] = field(default_factory=list)
    _writer: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    @property
    def writer(self) -> ThreadPoolExecutor:
        """The history thread, started on first use: in the process that logs, never in
        one that only ships the store to its jobs (a launcher pickles it)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digits-nn-history")
        return self._writer

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "pending": [], "_writer": None}


def open_store(config: TrackingConfig, root: Path | None = None) -> Store | None:
    """Open (creating and migrating if new) the store and the experiment, or fail clearly;
    None when tracking is off. Called up front, so a broken store fails before any work.

    A fresh SQLite store opened by several processes at once is corrupted by racing
    schema migrations, so creation happens under a file lock beside the database. The
    experiment tag is written every time: it doubles as a check that the store is
    writable, before any training starts.
    """
    if not config.enabled:
        return None
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
    return Store(client, uri, experiment_id, config.curve_every)  # type: ignore[arg-type]


@contextlib.contextmanager
def as_global(store: Store) -> Iterator[None]:
    """``store`` as MLflow's process-wide tracking URI for the block, then as it was.

    For the few MLflow calls that look only there: a ``models:/`` URI is resolved in the
    global store (MLflow's own TODO in its SQL registry and models artifact repository),
    and ``mlflow.models.evaluate`` logs through the fluent API. Everything else names its
    store through the client.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils

    # set_tracking_uri writes MLFLOW_TRACKING_URI too, and a URI taken from that variable
    # is indistinguishable from a set one through the public API: both are put back as
    # they were, or a URI from the environment would outlive the variable (and the store
    # of this block would linger in the variable, which resolve_uri prefers).
    explicit, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(store.uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(explicit)
        if environment is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environment


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
