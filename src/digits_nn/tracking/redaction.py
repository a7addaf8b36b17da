"""Secrets never leave the process: URIs' passwords are redacted from everything logged.

A config holding a URI with credentials is refused (:mod:`digits_nn.credentials`), but
``MLFLOW_TRACKING_URI`` may carry them: the store's URI then reaches messages, and any
text may quote it. :class:`RedactingClient` passes every param, tag, run name and text
file through :func:`~digits_nn.credentials.redact` on its way out.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digits_nn.credentials import redact

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Text artifacts small enough to be scanned for a URI with credentials before logging.
REDACTED_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".md", ".txt", ".log"}


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
        # MLflow's return value (the operations to await, when asynchronous) is passed on.
        return self._client.log_batch(run_id, metrics, params, tags, **kwargs)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        with _redacted_copy(Path(local_path)) as path:
            self._client.log_artifact(run_id, str(path), artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        with _redacted_copy(Path(local_dir)) as path:
            self._client.log_artifacts(run_id, str(path), artifact_path)

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        for field in ("params", "tags"):
            if kwargs.get(field):
                kwargs[field] = {key: redact(str(v)) for key, v in kwargs[field].items()}
        return self._client.create_logged_model(experiment_id, name, source_run_id, **kwargs)

    def log_model_artifacts(
        self, model_id: str, local_dir: str, artifact_path: str | None = None
    ) -> None:
        with _redacted_copy(Path(local_dir)) as path:
            self._client.log_model_artifacts(model_id, str(path), artifact_path)


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
