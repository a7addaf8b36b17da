"""Files, written whole or not at all and read with checks.

Every write goes to a temporary file in the target's folder, is synced to the disk, and
is then renamed into place (the folder synced too), so a killed process or a power cut
leaves the previous file or the new one, never half of one. Every npz is read with
``allow_pickle=False`` and checked against the names, shapes and dtypes its reader
promises; a problem raises :class:`ArtifactError` naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from digits_nn.errors import ArtifactError

_UMASK = os.umask(0)
os.umask(_UMASK)  # reading the umask means setting it; this puts it back at once


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    A path that cannot be written raises :class:`ArtifactError` naming it and why."""
    path = Path(path)
    with _written(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Keep the suffix: numpy and matplotlib choose the format from it.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
    try:
        with _written(path):
            # mkstemp makes the file private (0600); give it the permissions a plain open
            # would.
            os.chmod(tmp, 0o666 & ~_UMASK)
            yield Path(tmp)
            # The bytes reach the disk before the new name points at them, and the rename
            # itself after: a power cut leaves the previous file or the whole new one.
            _sync(tmp)
            os.replace(tmp, path)
            _sync(path.parent, os.O_DIRECTORY)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _sync(path: str | Path, flags: int = 0) -> None:
    """fsync a file, or with ``os.O_DIRECTORY`` a folder (its entries: a rename)."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _written(path: Path) -> Iterator[None]:
    """An operating-system error while writing ``path``, as one line naming it and why."""
    try:
        yield
    except OSError as error:
        # mkdir reports a file in the way as "File exists", naming the file, not the path.
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is not a folder" if blocker else error.strerror or str(error)
        raise ArtifactError(f"{path}: cannot be written ({reason}).") from None


def write_bytes(path: str | Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """The exact bytes :func:`write_npz` writes (numpy's zip entries carry no timestamp)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    write_bytes(path, npz_bytes(**arrays))


def write_json(path: str | Path, payload: Any) -> None:
    write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def write_csv(path: str | Path, header: list[str], rows: Any) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_bytes(path, buffer.getvalue().encode())


def read_npz(path: str | Path, expected: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """Load ``path`` and check it holds exactly the arrays in ``expected``.

    ``expected`` maps each name to ``(dtype kind, ndim)``: ``"f"`` float, ``"i"`` integer,
    ``"U"`` text. Float arrays must be free of NaN and infinity.
    """
    arrays = load_npz(path)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ArtifactError(
            f"{path}: holds arrays {sorted(arrays)}, expected {sorted(expected)}"
            f" (missing {missing or 'none'}, unexpected {extra or 'none'})."
        )
    for name, (kind, ndim) in expected.items():
        check_array(path, name, arrays[name], kind, ndim)
    return arrays


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(
            f"{path}: missing. Run the stage that writes it (`dvc repro`), or `dvc checkout`."
        )
    # np.load guesses the format from the first bytes and would fall back to pickle;
    # an npz is a zip archive, so anything else is refused before numpy sees it.
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: not an npz archive (truncated, corrupt or another format).")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error):
            raise ArtifactError(
                f"{path}: holds object arrays that need pickle; refused (only plain numeric"
                " and text arrays are loaded)."
            ) from None
        raise ArtifactError(f"{path}: not a readable npz archive ({error}).") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise ArtifactError(f"{path}: truncated or corrupt npz archive ({error}).") from None


def check_array(path: str | Path, name: str, array: np.ndarray, kind: str, ndim: int) -> None:
    kinds = {"f": "a float", "i": "an integer", "U": "a text"}
    if array.dtype.kind != kind or array.ndim != ndim:
        raise ArtifactError(
            f"{path}: array '{name}' is {array.dtype} with shape {array.shape};"
            f" expected {kinds[kind]} array with {ndim} dimension(s)."
        )
    if kind == "f" and not np.isfinite(array).all():
        raise ArtifactError(f"{path}: array '{name}' holds NaN or infinite values.")


def check_rows(path: str | Path, named: dict[str, np.ndarray], columns: dict[str, int]) -> None:
    """Arrays that describe the same rows must agree on the row count and width."""
    lengths = {name: len(array) for name, array in named.items()}
    if len(set(lengths.values())) != 1:
        raise ArtifactError(f"{path}: row counts disagree: {lengths}.")
    for name, width in columns.items():
        if named[name].shape[1] != width:
            raise ArtifactError(
                f"{path}: array '{name}' has {named[name].shape[1]} columns, expected {width}."
            )
