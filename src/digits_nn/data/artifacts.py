"""The readers and writers of the data stages' artifacts, one pair per file.

Each reader checks that its file holds what its stage promises (names, shapes, dtypes,
labels, matching row counts) and raises :class:`ArtifactError` naming the file if not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_nn.data.digits import N_CLASSES, N_PIXELS
from digits_nn.data.files import check_rows, read_npz, write_npz
from digits_nn.data.steps import Dataset, OneHot, Scaled, Split
from digits_nn.errors import ArtifactError


def check_labels(path: str | Path, name: str, y: np.ndarray) -> None:
    if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
        raise ArtifactError(f"{path}: array '{name}' holds labels outside 0..{N_CLASSES - 1}.")


def write_dataset(path: str | Path, data: Dataset) -> None:
    write_npz(path, X=data.X, y=data.y)


def read_dataset(path: str | Path) -> Dataset:
    a = read_npz(path, {"X": ("f", 2), "y": ("i", 1)})
    check_rows(path, {"X": a["X"], "y": a["y"]}, {"X": N_PIXELS})
    check_labels(path, "y", a["y"])
    return Dataset(a["X"], a["y"])


def write_scaled(path: str | Path, scaled: Scaled) -> None:
    write_npz(path, X=scaled.X, y=scaled.y, mean=scaled.mean, scale=scaled.scale)


def read_scaled(path: str | Path) -> Scaled:
    a = read_npz(path, {"X": ("f", 2), "y": ("i", 1), "mean": ("f", 1), "scale": ("f", 1)})
    check_rows(path, {"X": a["X"], "y": a["y"]}, {"X": N_PIXELS})
    check_labels(path, "y", a["y"])
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
    check_rows(path, {"X_train": a["X_train"], "y_train": a["y_train"]}, {"X_train": N_PIXELS})
    check_rows(path, {"X_test": a["X_test"], "y_test": a["y_test"]}, {"X_test": N_PIXELS})
    check_labels(path, "y_train", a["y_train"])
    check_labels(path, "y_test", a["y_test"])
    return Split(a["X_train"], a["X_test"], a["y_train"], a["y_test"])


def write_onehot(path: str | Path, onehot: OneHot) -> None:
    write_npz(path, Y_train=onehot.Y_train, Y_test=onehot.Y_test)


def read_onehot(path: str | Path, split: Split | None = None) -> OneHot:
    """Read the one-hot targets; with ``split``, check they describe the same rows."""
    a = read_npz(path, {"Y_train": ("f", 2), "Y_test": ("f", 2)})
    for name in ("Y_train", "Y_test"):
        if a[name].shape[1] != N_CLASSES:
            raise ArtifactError(
                f"{path}: '{name}' has {a[name].shape[1]} columns, expected {N_CLASSES}."
            )
    if split is not None and (
        len(a["Y_train"]) != len(split.y_train) or len(a["Y_test"]) != len(split.y_test)
    ):
        raise ArtifactError(
            f"{path}: {len(a['Y_train'])}/{len(a['Y_test'])} train/test rows, but the split"
            f" has {len(split.y_train)}/{len(split.y_test)}; rerun `dvc repro onehot`."
        )
    return OneHot(a["Y_train"], a["Y_test"])
