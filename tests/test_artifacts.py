"""Reading and writing the files that pass between stages."""

import os
import pickle
import stat
import subprocess
import sys

import numpy as np
import pytest

from conftest import default_sigint, project_env
from digits_nn import artifacts, data, network
from digits_nn.errors import ArtifactError

# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset():
    return data.load_digits()


@pytest.fixture(scope="module")
def split(dataset):
    return data.split(dataset.X, dataset.y, test_size=0.4, seed=0)


@pytest.fixture(scope="module")
def onehot(split):
    return data.OneHot(data.one_hot(split.y_train), data.one_hot(split.y_test))


@pytest.fixture
def model_arrays(tmp_path):
    """The arrays of a valid 64-30-10 model file, to be tampered with."""
    path = tmp_path / "valid_model.npz"
    artifacts.write_model(path, network.init_uniform([64, 30, 10], seed=0))
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def assert_artifact_error(read, path, *fragments):
    with pytest.raises(ArtifactError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


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
    scaled = data.standardise(dataset)
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


@pytest.mark.parametrize("sizes", [[64, 30, 10], [64, 100, 50, 10]], ids=["one", "two-hidden"])
def test_model_round_trip_and_array_names(tmp_path, sizes):
    net = network.init_uniform(sizes, seed=2)
    path = tmp_path / "model.npz"
    artifacts.write_model(path, net)

    n_layers = len(sizes) - 1
    with np.load(path) as archive:
        names = set(archive.files)
        stored_sizes = archive["layer_sizes"]
        stored_activation = archive["activation"]
        stored_w1 = archive["W1"]
    expected_names = {f"W{k}" for k in range(1, n_layers + 1)}
    expected_names |= {f"b{k}" for k in range(1, n_layers + 1)}
    assert names == expected_names | {"layer_sizes", "activation", "output"}
    np.testing.assert_array_equal(stored_sizes, sizes)
    assert stored_activation.ndim == 0
    assert str(stored_activation) == "sigmoid"
    assert stored_w1.shape == (sizes[1], sizes[0])  # algorithm.md's orientation

    back = artifacts.read_model(path, n_inputs=64)
    assert (back.activation, back.output) == ("sigmoid", "sigmoid")
    assert back.layer_sizes == sizes
    for got, want in zip([*back.weights, *back.biases], [*net.weights, *net.biases], strict=True):
        np.testing.assert_array_equal(got, want)


def test_cost_curve_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    cost = rng.random(50) * 10.0 ** rng.integers(-300, 3, size=50)
    classic = np.array([1 / 3, np.pi, 5e-324, 1e308, 0.1, *rng.random(45)])
    path = tmp_path / "cost.csv"
    artifacts.write_cost_curve(path, cost, classic)

    lines = path.read_text().splitlines()
    assert lines[0] == "iteration,cost,classic_cost"
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in range(1, 51)]
    back_cost, back_classic = artifacts.read_cost_curve(path)
    np.testing.assert_array_equal(back_cost, cost)
    np.testing.assert_array_equal(back_classic, classic)


def test_single_row_cost_curve_reads_as_one_value(tmp_path):
    path = tmp_path / "cost.csv"
    artifacts.write_cost_curve(path, np.array([0.5]), np.array([0.75]))
    cost, classic = artifacts.read_cost_curve(path)
    np.testing.assert_array_equal(cost, [0.5])
    np.testing.assert_array_equal(classic, [0.75])


# ---- atomic writes -----------------------------------------------------------------------


def test_writes_leave_no_temporary_files(tmp_path, dataset, split, onehot):
    artifacts.write_dataset(tmp_path / "digits.npz", dataset)
    artifacts.write_split(tmp_path / "split.npz", split)
    artifacts.write_onehot(tmp_path / "onehot.npz", onehot)
    artifacts.write_model(tmp_path / "model.npz", network.init_uniform([64, 3, 10], 0))
    artifacts.write_cost_curve(tmp_path / "cost.csv", np.ones(3), np.ones(3))
    artifacts.write_json(tmp_path / "metrics.json", {"a": 1})
    # Overwriting goes through the same path.
    artifacts.write_dataset(tmp_path / "digits.npz", dataset)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cost.csv",
        "digits.npz",
        "metrics.json",
        "model.npz",
        "onehot.npz",
        "split.npz",
    ]


def test_failed_write_keeps_previous_file_and_removes_temporary(tmp_path):
    target = tmp_path / "report.json"
    artifacts.write_bytes(target, b"previous")

    with pytest.raises(RuntimeError, match="killed"), artifacts.atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.suffix == target.suffix
        assert tmp != target
        tmp.write_bytes(b"half of the new cont")
        raise RuntimeError("killed mid-write")

    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path, keep={"report.json"}) == []


def test_failed_first_write_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "model.npz"
    with pytest.raises(ValueError), artifacts.atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError("boom")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_target_is_only_replaced_when_the_block_succeeds(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with artifacts.atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path, keep={"data.bin"}) == []


# ---- errors ------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    """The path and the command that writes it, as docs/reliability.md promises."""
    path = tmp_path / "nowhere" / "digits.npz"
    assert_artifact_error(artifacts.read_dataset, path, "missing", "`dvc repro`", "`dvc checkout`")
    assert_artifact_error(artifacts.read_model, path, "missing", "`dvc repro`", "`dvc checkout`")
    cost = tmp_path / "cost.csv"
    assert_artifact_error(artifacts.read_cost_curve, cost, "missing", "`dvc repro train`")


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


class _Tripwire:
    """Unpickling this creates ``marker``: proof that a reader ran pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _touch(path):
    with open(path, "w") as handle:
        handle.write("unpickled")
    return path


def test_read_npz_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled.txt"
    in_npz = tmp_path / "digits.npz"
    np.savez(in_npz, X=np.array([_Tripwire(marker)], dtype=object), y=np.zeros(1, np.int64))
    raw_pickle = tmp_path / "raw.npz"
    raw_pickle.write_bytes(pickle.dumps({"X": _Tripwire(marker)}))

    assert_artifact_error(artifacts.read_dataset, in_npz, "pickle")
    for path in (in_npz, raw_pickle):
        with pytest.raises(ArtifactError):
            artifacts.read_npz(path, {"X": ("f", 2), "y": ("i", 1)})
    assert_artifact_error(artifacts.read_model, in_npz)
    assert not marker.exists()
    # Control: the tripwire does fire when something does unpickle.
    with np.load(in_npz, allow_pickle=True) as archive:
        archive["X"]
    assert marker.read_text() == "unpickled"


def test_plain_npy_file_under_an_npz_name_is_refused(tmp_path, dataset):
    path = tmp_path / "digits.npz"
    with path.open("wb") as handle:
        np.save(handle, dataset.X)
    assert_artifact_error(artifacts.read_dataset, path)


def test_model_weights_not_matching_layer_sizes_are_refused(tmp_path, model_arrays):
    model_arrays["W1"] = model_arrays["W1"][:, :32]
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(artifacts.read_model, path, "W1", "[64, 30, 10]")


def test_model_layer_sizes_not_matching_weights_are_refused(tmp_path, model_arrays):
    model_arrays["layer_sizes"] = np.array([64, 31, 10])
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(artifacts.read_model, path, "[64, 31, 10]")


def test_model_missing_a_layer_is_refused(tmp_path, model_arrays):
    model_arrays["layer_sizes"] = np.array([64, 30, 10, 5])
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(artifacts.read_model, path, "W3")


def test_model_without_activation_is_refused(tmp_path, model_arrays):
    del model_arrays["activation"]
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(artifacts.read_model, path, "not a model file")


def test_model_with_non_finite_weight_is_refused(tmp_path, model_arrays):
    model_arrays["W2"][0, 0] = np.nan
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(artifacts.read_model, path, "'W2'")


def test_model_input_width_must_match_the_data(tmp_path):
    path = tmp_path / "model.npz"
    artifacts.write_model(path, network.init_uniform([64, 30, 10], seed=0))
    assert_artifact_error(lambda p: artifacts.read_model(p, n_inputs=32), path, "64", "32")
    artifacts.read_model(path, n_inputs=64)  # the matching width is accepted


def test_onehot_rows_must_match_the_split(tmp_path, dataset, onehot):
    path = tmp_path / "onehot.npz"
    artifacts.write_onehot(path, onehot)
    other = data.split(dataset.X, dataset.y, test_size=0.3, seed=0)
    assert_artifact_error(lambda p: artifacts.read_onehot(p, other), path, "1078/719")
    artifacts.read_onehot(path)  # without a split, nothing to compare


def test_onehot_needs_ten_columns(tmp_path, onehot):
    path = tmp_path / "onehot.npz"
    np.savez(path, Y_train=onehot.Y_train[:, :9], Y_test=onehot.Y_test)
    assert_artifact_error(artifacts.read_onehot, path, "Y_train", "10")


@pytest.mark.filterwarnings("ignore:loadtxt")
@pytest.mark.parametrize(
    "text",
    ["iteration,cost,classic_cost\n1,abc,2\n", "iteration,cost\n1,2\n", "iteration,cost,c\n"],
    ids=["not-a-number", "two-columns", "no-rows"],
)
def test_malformed_cost_curve_is_refused(tmp_path, text):
    path = tmp_path / "cost.csv"
    path.write_text(text)
    assert_artifact_error(artifacts.read_cost_curve, path)


# ---- what a finished write looks like, and an interrupted one -------------------------

MODE_CHILD = """
import sys
import numpy as np
from digits_nn import artifacts
artifacts.write_json(sys.argv[1] + "/metrics.json", {"a": 1})
artifacts.write_npz(sys.argv[1] + "/model.npz", W=np.ones(3))
"""


def test_written_files_get_the_mode_a_plain_open_would_give(tmp_path):
    """Not mkstemp's private 0600: with umask 027 a new file is 0640, as `open` makes it."""
    subprocess.run(
        [sys.executable, "-c", MODE_CHILD, str(tmp_path)],
        check=True,
        env=project_env(),
        preexec_fn=lambda: os.umask(0o027),
    )
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"metrics.json": 0o640, "model.npz": 0o640}


# The child writes a previous model, then writes a new one through a file whose first
# write() stops half-way and sends the process a real signal: the handler (Ctrl-C's
# KeyboardInterrupt, or the entry points' SIGTERM handler) runs in the middle of the write.
SIGNAL_CHILD = """
import io, os, signal, sys
import numpy as np
from digits_nn import artifacts, cli

target, signal_name = sys.argv[1], sys.argv[2]
cli.prepare_exit()
artifacts.write_npz(target, X=np.zeros((300, 200)))
real_open = io.open


class SignalMidWrite:
    def __init__(self, file):
        self.file = file

    def write(self, data):
        half = len(data) // 2
        self.file.write(data[:half])
        self.file.flush()
        print("signal sent after", half, "bytes", flush=True)
        os.kill(os.getpid(), getattr(signal, signal_name))
        return half + self.file.write(data[half:])

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def opening(file, mode="r", *args, **kwargs):
    opened = real_open(file, mode, *args, **kwargs)
    same_folder = os.path.dirname(os.fspath(file)) == os.path.dirname(target)
    return SignalMidWrite(opened) if "w" in mode and same_folder else opened


io.open = opening
with cli.exit_on_user_error():
    artifacts.write_npz(target, X=np.ones((300, 200)))
print("the write finished")
"""


@pytest.mark.parametrize(("signal_name", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_a_write_leaves_the_previous_file_whole(tmp_path, signal_name, status):
    target = tmp_path / "model.npz"
    child = subprocess.run(
        [sys.executable, "-c", SIGNAL_CHILD, str(target), signal_name],
        capture_output=True,
        text=True,
        env=project_env(),
        preexec_fn=default_sigint,  # as a terminal starts it (mutmut runs in the background)
    )
    assert "signal sent after" in child.stdout, child.stderr  # it did land mid-write
    assert child.returncode == status, child.stdout + child.stderr
    assert "the write finished" not in child.stdout
    assert "Traceback" not in child.stderr
    with np.load(target, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["X"], np.zeros((300, 200)))
    assert leftovers(tmp_path, keep={"model.npz"}) == []
