"""The data stages' files: each round-trips, and a reader refuses what its stage does not
promise, naming the file."""

import numpy as np
import pytest

from digits_nn.data import artifacts, steps
from digits_nn.data.model_file import read_model
from digits_nn.pipeline.outputs import read_cost_curve
from helpers import assert_artifact_error


@pytest.fixture(scope="module")
def dataset():
    return steps.load_digits()


@pytest.fixture(scope="module")
def split(dataset):
    return steps.split(dataset.X, dataset.y, test_size=0.4, seed=0)


@pytest.fixture(scope="module")
def onehot(split):
    return steps.one_hot_split(split)


# ---- round trips -------------------------------------------------------------------------


def test_dataset_round_trip(tmp_path, dataset):
    path = tmp_path / "raw" / "digits.npz"
    artifacts.write_dataset(path, dataset)
    back = artifacts.read_dataset(path)
    np.testing.assert_array_equal(back.X, dataset.X)
    np.testing.assert_array_equal(back.y, dataset.y)
    assert back.X.dtype == np.float64
    assert back.y.dtype == np.int64


def test_scaled_round_trip(tmp_path, dataset):
    scaled = steps.standardise(dataset)
    path = tmp_path / "scaled.npz"
    artifacts.write_scaled(path, scaled)
    back = artifacts.read_scaled(path)
    for name in ("X", "y", "mean", "scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(scaled, name))


def test_split_round_trip(tmp_path, split):
    path = tmp_path / "split.npz"
    artifacts.write_split(path, split)
    back = artifacts.read_split(path)
    for name in ("X_train", "X_test", "y_train", "y_test"):
        np.testing.assert_array_equal(getattr(back, name), getattr(split, name))


def test_onehot_round_trip(tmp_path, split, onehot):
    path = tmp_path / "onehot.npz"
    artifacts.write_onehot(path, onehot)
    back = artifacts.read_onehot(path, split)
    np.testing.assert_array_equal(back.Y_train, onehot.Y_train)
    np.testing.assert_array_equal(back.Y_test, onehot.Y_test)


# ---- errors ------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    """The path and the command that writes it, as docs/reliability.md promises."""
    path = tmp_path / "nowhere" / "digits.npz"
    assert_artifact_error(artifacts.read_dataset, path, "missing", "`dvc repro`", "`dvc checkout`")
    assert_artifact_error(read_model, path, "missing", "`dvc repro`", "`dvc checkout`")
    cost = tmp_path / "cost.csv"
    assert_artifact_error(read_cost_curve, cost, "missing", "`dvc repro train`")


def test_truncated_npz_is_refused(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    artifacts.write_dataset(path, dataset)
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    assert_artifact_error(artifacts.read_dataset, path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "digits.npz"
    path.write_bytes(b"")
    assert_artifact_error(artifacts.read_dataset, path)


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "digits.npz"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    assert_artifact_error(artifacts.read_dataset, path)


def test_wrong_array_names_are_listed(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, features=dataset.X, y=dataset.y)
    assert_artifact_error(artifacts.read_dataset, path, "'features'", "'X'")


def test_extra_array_is_refused(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, X=dataset.X, y=dataset.y, extra=np.zeros(3))
    assert_artifact_error(artifacts.read_dataset, path, "'extra'")


def test_labels_stored_as_float_are_refused(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, X=dataset.X, y=dataset.y.astype(np.float64))
    assert_artifact_error(artifacts.read_dataset, path, "'y'", "float64")


def test_wrong_ndim_is_refused(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, X=dataset.X.reshape(1797, 8, 8), y=dataset.y)
    assert_artifact_error(artifacts.read_dataset, path, "'X'", "2 dimension")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_pixels_are_refused(tmp_path, dataset, bad):
    X = dataset.X.copy()
    X[100, 17] = bad
    path = tmp_path / "digits.npz"
    np.savez(path, X=X, y=dataset.y)
    assert_artifact_error(artifacts.read_dataset, path, "'X'", "NaN")


@pytest.mark.parametrize("label", [-1, 10, 255], ids=["negative", "ten", "large"])
def test_labels_out_of_range_are_refused(tmp_path, dataset, label):
    y = dataset.y.copy()
    y[5] = label
    path = tmp_path / "digits.npz"
    np.savez(path, X=dataset.X, y=y)
    assert_artifact_error(artifacts.read_dataset, path, "0..9")


def test_split_labels_out_of_range_are_refused(tmp_path, split):
    y_test = split.y_test.copy()
    y_test[0] = 10
    path = tmp_path / "split.npz"
    np.savez(path, X_train=split.X_train, X_test=split.X_test, y_train=split.y_train, y_test=y_test)
    assert_artifact_error(artifacts.read_split, path, "y_test")


def test_rows_of_x_and_y_must_agree(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, X=dataset.X[:-1], y=dataset.y)
    assert_artifact_error(artifacts.read_dataset, path, "row counts")


def test_pixel_count_must_be_64(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, X=dataset.X[:, :32], y=dataset.y)
    assert_artifact_error(artifacts.read_dataset, path, "32 columns")


def test_object_array_is_refused_as_pickle(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    np.savez(path, X=np.array([[1.0, "a", None]], dtype=object), y=dataset.y[:1])
    assert_artifact_error(artifacts.read_dataset, path, "pickle")


def test_plain_npy_file_under_an_npz_name_is_refused(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    with path.open("wb") as handle:
        np.save(handle, dataset.X)
    assert_artifact_error(artifacts.read_dataset, path)


def test_onehot_rows_must_match_the_split(tmp_path, dataset, onehot):
    path = tmp_path / "onehot.npz"
    artifacts.write_onehot(path, onehot)
    other = steps.split(dataset.X, dataset.y, test_size=0.3, seed=0)
    assert_artifact_error(lambda p: artifacts.read_onehot(p, other), path, "1078/719")
    artifacts.read_onehot(path)  # without a split, nothing to compare


def test_onehot_needs_ten_columns(tmp_path, onehot):
    path = tmp_path / "onehot.npz"
    np.savez(path, Y_train=onehot.Y_train[:, :9], Y_test=onehot.Y_test)
    assert_artifact_error(artifacts.read_onehot, path, "Y_train", "10")


# ---- each refusal in full: what was wrong, in which array ----------------------------------


@pytest.fixture(scope="module")
def stages(dataset, split):
    """Each reader of rows and labels, with the arrays its stage writes."""
    scaled = steps.standardise(dataset)
    return {
        "dataset": (artifacts.read_dataset, {"X": dataset.X, "y": dataset.y}),
        "scaled": (
            artifacts.read_scaled,
            {"X": scaled.X, "y": scaled.y, "mean": scaled.mean, "scale": scaled.scale},
        ),
        "split": (artifacts.read_split, artifacts.split_arrays(split)),
    }


@pytest.mark.parametrize(
    ("stage", "short", "counts"),
    [
        ("dataset", "X", "{'X': 1796, 'y': 1797}"),
        ("scaled", "X", "{'X': 1796, 'y': 1797}"),
        ("split", "X_train", "{'X_train': 1077, 'y_train': 1078}"),
        ("split", "X_test", "{'X_test': 718, 'y_test': 719}"),
    ],
)
def test_rows_that_disagree_are_refused_with_each_arrays_count(
    tmp_path, stages, stage, short, counts
):
    read, arrays = stages[stage]
    path = tmp_path / f"{stage}.npz"
    np.savez(path, **{**arrays, short: arrays[short][:-1]})
    message = assert_artifact_error(read, path)
    assert message == f"{path}: row counts disagree: {counts}."


@pytest.mark.parametrize(
    ("stage", "labels"),
    [("dataset", "y"), ("scaled", "y"), ("split", "y_train"), ("split", "y_test")],
)
def test_labels_out_of_range_are_refused_naming_their_array(tmp_path, stages, stage, labels):
    read, arrays = stages[stage]
    bad = arrays[labels].copy()
    bad[5] = 10
    path = tmp_path / f"{stage}.npz"
    np.savez(path, **{**arrays, labels: bad})
    message = assert_artifact_error(read, path)
    assert message == f"{path}: array '{labels}' holds labels outside 0..9."


@pytest.mark.parametrize("short", ["mean", "scale"])
def test_a_scaling_without_one_value_per_pixel_is_refused(tmp_path, stages, short):
    """Either of the two, alone, is enough: the scaling is applied pixel by pixel."""
    read, arrays = stages["scaled"]
    path = tmp_path / "scaled.npz"
    np.savez(path, **{**arrays, short: arrays[short][:-1]})
    message = assert_artifact_error(read, path)
    assert message == f"{path}: 'mean' and 'scale' must each hold 64 values."


@pytest.mark.parametrize("side", ["train", "test"])
def test_onehot_targets_are_refused_when_either_side_of_the_split_differs(
    tmp_path, split, onehot, side
):
    path = tmp_path / "onehot.npz"
    artifacts.write_onehot(path, onehot)
    shorter = {f"{kind}_{side}": getattr(split, f"{kind}_{side}")[:-1] for kind in ("X", "y")}
    other = steps.Split(**{**artifacts.split_arrays(split), **shorter})
    counts = "1077/719" if side == "train" else "1078/718"
    message = assert_artifact_error(lambda p: artifacts.read_onehot(p, other), path)
    assert message == (
        f"{path}: 1078/719 train/test rows, but the split has {counts}; rerun `dvc repro onehot`."
    )
