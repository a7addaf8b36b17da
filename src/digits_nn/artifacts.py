"""Reading and writing the artifacts that pass between stages.

Every write goes to a temporary file in the target's folder and is then renamed into
place, so a killed process leaves the previous file or none, never half of one. Every
npz is read with ``allow_pickle=False`` and checked against the names, shapes and
dtypes its stage promises; a problem raises :class:`ArtifactError` naming the file.
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

from digits_nn.data import N_CLASSES, Dataset, OneHot, Scaled, Split
from digits_nn.errors import ArtifactError
from digits_nn.inference import ACTIVATIONS, OUTPUTS
from digits_nn.network import Network

N_PIXELS = 64
_UMASK = os.umask(0)
os.umask(_UMASK)  # reading the umask means setting it; this puts it back at once


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: numpy and matplotlib choose the format from it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open would.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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
    arrays = _load_npz(path)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ArtifactError(
            f"{path}: holds arrays {sorted(arrays)}, expected {sorted(expected)}"
            f" (missing {missing or 'none'}, unexpected {extra or 'none'})."
        )
    for name, (kind, ndim) in expected.items():
        _check_array(path, name, arrays[name], kind, ndim)
    return arrays


def _load_npz(path: str | Path) -> dict[str, np.ndarray]:
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


def _check_array(path: str | Path, name: str, array: np.ndarray, kind: str, ndim: int) -> None:
    kinds = {"f": "a float", "i": "an integer", "U": "a text"}
    if array.dtype.kind != kind or array.ndim != ndim:
        raise ArtifactError(
            f"{path}: array '{name}' is {array.dtype} with shape {array.shape};"
            f" expected {kinds[kind]} array with {ndim} dimension(s)."
        )
    if kind == "f" and not np.isfinite(array).all():
        raise ArtifactError(f"{path}: array '{name}' holds NaN or infinite values.")


def _check_rows(path: str | Path, named: dict[str, np.ndarray], columns: dict[str, int]) -> None:
    """Arrays that describe the same rows must agree on the row count and width."""
    lengths = {name: len(array) for name, array in named.items()}
    if len(set(lengths.values())) != 1:
        raise ArtifactError(f"{path}: row counts disagree: {lengths}.")
    for name, width in columns.items():
        if named[name].shape[1] != width:
            raise ArtifactError(
                f"{path}: array '{name}' has {named[name].shape[1]} columns, expected {width}."
            )


def _check_labels(path: str | Path, name: str, y: np.ndarray) -> None:
    if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
        raise ArtifactError(f"{path}: array '{name}' holds labels outside 0..{N_CLASSES - 1}.")


# ---- one reader and writer per artifact of the pipeline -------------------------------


def write_dataset(path: str | Path, data: Dataset) -> None:
    write_npz(path, X=data.X, y=data.y)


def read_dataset(path: str | Path) -> Dataset:
    a = read_npz(path, {"X": ("f", 2), "y": ("i", 1)})
    _check_rows(path, {"X": a["X"], "y": a["y"]}, {"X": N_PIXELS})
    _check_labels(path, "y", a["y"])
    return Dataset(a["X"], a["y"])


def write_scaled(path: str | Path, scaled: Scaled) -> None:
    write_npz(path, X=scaled.X, y=scaled.y, mean=scaled.mean, scale=scaled.scale)


def read_scaled(path: str | Path) -> Scaled:
    a = read_npz(path, {"X": ("f", 2), "y": ("i", 1), "mean": ("f", 1), "scale": ("f", 1)})
    _check_rows(path, {"X": a["X"], "y": a["y"]}, {"X": N_PIXELS})
    _check_labels(path, "y", a["y"])
    if a["mean"].shape != (N_PIXELS,) or a["scale"].shape != (N_PIXELS,):
        raise ArtifactError(f"{path}: 'mean' and 'scale' must each hold {N_PIXELS} values.")
    return Scaled(a["X"], a["y"], a["mean"], a["scale"])


def split_arrays(split: Split) -> dict[str, np.ndarray]:
    return {
        "X_train": split.X_train,
        "X_test": split.X_test,
        "y_train": split.y_train,
        "y_test": split.y_test,
    }


def write_split(path: str | Path, split: Split) -> None:
    write_npz(path, **split_arrays(split))


def read_split(path: str | Path) -> Split:
    spec = {"X_train": ("f", 2), "X_test": ("f", 2), "y_train": ("i", 1), "y_test": ("i", 1)}
    a = read_npz(path, spec)
    _check_rows(path, {"X_train": a["X_train"], "y_train": a["y_train"]}, {"X_train": N_PIXELS})
    _check_rows(path, {"X_test": a["X_test"], "y_test": a["y_test"]}, {"X_test": N_PIXELS})
    _check_labels(path, "y_train", a["y_train"])
    _check_labels(path, "y_test", a["y_test"])
    return Split(a["X_train"], a["X_test"], a["y_train"], a["y_test"])


def write_onehot(path: str | Path, onehot: OneHot) -> None:
    write_npz(path, Y_train=onehot.Y_train, Y_test=onehot.Y_test)


def read_onehot(path: str | Path, split: Split | None = None) -> OneHot:
    """Read the one-hot targets; with ``split``, check they describe the same rows."""
    a = read_npz(path, {"Y_train": ("f", 2), "Y_test": ("f", 2)})
    for name in ("Y_train", "Y_test"):
        if a[name].shape[1] != N_CLASSES:
            raise ArtifactError(f"{path}: '{name}' has {a[name].shape[1]} columns, expected 10.")
    if split is not None and (
        len(a["Y_train"]) != len(split.y_train) or len(a["Y_test"]) != len(split.y_test)
    ):
        raise ArtifactError(
            f"{path}: {len(a['Y_train'])}/{len(a['Y_test'])} train/test rows, but the split"
            f" has {len(split.y_train)}/{len(split.y_test)}; rerun `dvc repro onehot`."
        )
    return OneHot(a["Y_train"], a["Y_test"])


def write_model(path: str | Path, network: Network) -> None:
    """W1..WL and b1..bL in the orientation of algorithm.md, plus what rebuilds the net:
    the layer sizes, the hidden activation and the output layer."""
    arrays: dict[str, np.ndarray] = {}
    for layer, (W, b) in enumerate(zip(network.weights, network.biases), start=1):
        arrays[f"W{layer}"] = W
        arrays[f"b{layer}"] = b
    arrays["layer_sizes"] = np.asarray(network.layer_sizes, dtype=np.int64)
    arrays["activation"] = np.asarray(network.activation)
    arrays["output"] = np.asarray(network.output)
    write_npz(path, **arrays)


def read_model(path: str | Path, n_inputs: int | None = None) -> Network:
    """The network; with ``n_inputs``, check that it fits the data."""
    arrays = _load_npz(path)
    if "layer_sizes" not in arrays or "activation" not in arrays:
        raise ArtifactError(f"{path}: not a model file (no 'layer_sizes' or 'activation').")
    sizes = arrays["layer_sizes"]
    _check_array(path, "layer_sizes", sizes, "i", 1)
    n_layers = len(sizes) - 1
    spec = {"layer_sizes": ("i", 1), "activation": ("U", 0), "output": ("U", 0)}
    spec |= {f"W{k}": ("f", 2) for k in range(1, n_layers + 1)}
    spec |= {f"b{k}": ("f", 1) for k in range(1, n_layers + 1)}
    arrays = read_npz(path, spec)
    weights = [arrays[f"W{k}"] for k in range(1, n_layers + 1)]
    biases = [arrays[f"b{k}"] for k in range(1, n_layers + 1)]
    for k, (W, b) in enumerate(zip(weights, biases), start=1):
        expected = (int(sizes[k]), int(sizes[k - 1]))
        if W.shape != expected or b.shape != (expected[0],):
            raise ArtifactError(
                f"{path}: W{k} is {W.shape} and b{k} is {b.shape}, but layer_sizes"
                f" {sizes.tolist()} needs {expected} and ({expected[0]},)."
            )
    if n_inputs is not None and sizes[0] != n_inputs:
        raise ArtifactError(
            f"{path}: the model takes {sizes[0]} inputs but the data has {n_inputs} columns;"
            " retrain it (`dvc repro train`)."
        )
    activation, output = str(arrays["activation"]), str(arrays["output"])
    if activation not in ACTIVATIONS or output not in OUTPUTS:
        raise ArtifactError(
            f"{path}: unknown activation {activation!r} or output {output!r}; allowed:"
            f" {', '.join(ACTIVATIONS)} and {', '.join(OUTPUTS)}."
        )
    return Network(weights, biases, activation, output)


def write_cost_curve(
    path: str | Path,
    cost: np.ndarray,
    classic_cost: np.ndarray,
    validation_cost: np.ndarray | None = None,
) -> None:
    """iteration,cost,classic_cost[,validation_cost], one row per iteration."""
    columns = [np.arange(1, len(cost) + 1), cost, classic_cost]
    header = ["iteration", "cost", "classic_cost"]
    if validation_cost is not None:
        columns.append(validation_cost)
        header.append("validation_cost")
    # repr() of a float round-trips exactly, so the CSV loses nothing.
    rows = ([int(row[0]), *(repr(float(v)) for v in row[1:])] for row in zip(*columns))
    write_csv(path, header, rows)


def read_cost_curve(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing. Run `dvc repro train`, or `dvc checkout`.")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as error:
        raise ArtifactError(f"{path}: not a cost curve CSV ({error}).") from None
    if table.shape[1] not in (3, 4) or len(table) == 0:
        raise ArtifactError(f"{path}: expected rows of iteration,cost,classic_cost.")
    if not np.isfinite(table).all():
        raise ArtifactError(f"{path}: holds NaN or infinite costs.")
    return table[:, 1], table[:, 2]
