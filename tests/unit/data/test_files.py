"""Files written whole or not at all, with a plain file's permissions, and npz files
read without ever unpickling."""

import os
import pickle
import stat
import subprocess
import sys

import numpy as np
import pytest

from digits_nn.core.network import initialise
from digits_nn.core.training import TrainingResult
from digits_nn.data import artifacts, files, steps
from digits_nn.data.model_file import read_model, write_model
from digits_nn.errors import ArtifactError
from digits_nn.pipeline.outputs import write_cost_curve
from helpers import assert_artifact_error, default_sigint, project_env


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ---- atomic writes -----------------------------------------------------------------------


def test_writes_leave_no_temporary_files(tmp_path):
    dataset = steps.load_digits()
    split = steps.split(dataset.X, dataset.y, test_size=0.4, seed=0)
    artifacts.write_dataset(tmp_path / "digits.npz", dataset)
    artifacts.write_split(tmp_path / "split.npz", split)
    artifacts.write_onehot(tmp_path / "onehot.npz", steps.one_hot_split(split))
    network = initialise([64, 3, 10], "uniform", 0)
    write_model(tmp_path / "model.npz", network)
    write_cost_curve(tmp_path / "cost.csv", TrainingResult(network, np.ones(3), np.ones(3)))
    files.write_json(tmp_path / "metrics.json", {"a": 1})
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
    files.write_bytes(target, b"previous")

    with pytest.raises(RuntimeError, match="killed"), files.atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.suffix == target.suffix
        assert tmp != target
        tmp.write_bytes(b"half of the new cont")
        raise RuntimeError("killed mid-write")

    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path, keep={"report.json"}) == []


def test_failed_first_write_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "model.npz"
    with pytest.raises(ValueError), files.atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError("boom")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


# Without an fsync around the rename, after a power cut the new name can point at a file
# whose bytes never reached the disk, or the rename itself be lost.
def test_a_write_reaches_the_disk_before_its_rename_and_the_rename_after(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def spy_replace(source, target):
        calls.append(("replace", str(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    target = tmp_path / "metrics.json"
    files.write_json(target, {"a": 1})
    [(_, synced_file), *rest] = calls
    assert synced_file.startswith(f"{tmp_path}/.metrics.json.")  # the temporary file
    assert rest == [("replace", str(target)), ("fsync", str(tmp_path))]


def test_target_is_only_replaced_when_the_block_succeeds(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with files.atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path, keep={"data.bin"}) == []


# Without this, paths.model=/dev/null/x.npz ends in a traceback (FileExistsError: [Errno 17]
# File exists: '/dev/null') instead of one line naming the path and the reason.
@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("/dev/null/x.npz", "/dev/null is not a folder"),
        ("a-file/x.json", "a-file is not a folder"),
        ("a-folder", "Is a directory"),
    ],
)
def test_a_path_that_cannot_be_written_is_named_with_the_reason(tmp_path, where, reason):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    target = where if where.startswith("/") else tmp_path / where
    reason = reason if where.startswith("/") else reason.replace("a-", f"{tmp_path}/a-")
    with pytest.raises(ArtifactError) as refused:
        files.write_bytes(target, b"payload")
    assert str(refused.value) == f"{target}: cannot be written ({reason})."
    assert leftovers(tmp_path, keep={"a-file", "a-folder"}) == []


def test_an_npz_is_the_same_bytes_for_the_same_arrays(tmp_path):
    """What makes a DVC output reproducible: no timestamp in numpy's zip entries."""
    files.write_npz(tmp_path / "a.npz", X=np.arange(6.0), y=np.arange(3))
    assert (tmp_path / "a.npz").read_bytes() == files.npz_bytes(X=np.arange(6.0), y=np.arange(3))


# ---- reading -----------------------------------------------------------------------------


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
            files.read_npz(path, {"X": ("f", 2), "y": ("i", 1)})
    assert_artifact_error(read_model, in_npz)
    assert not marker.exists()
    # Control: the tripwire does fire when something does unpickle.
    with np.load(in_npz, allow_pickle=True) as archive:
        archive["X"]
    assert marker.read_text() == "unpickled"


# ---- what a finished write looks like, and an interrupted one -------------------------

MODE_CHILD = """
import sys
import numpy as np
from digits_nn.data import files
files.write_json(sys.argv[1] + "/metrics.json", {"a": 1})
files.write_npz(sys.argv[1] + "/model.npz", W=np.ones(3))
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
from digits_nn import cli
from digits_nn.data import files

target, signal_name = sys.argv[1], sys.argv[2]
cli.prepare_exit()
files.write_npz(target, X=np.zeros((300, 200)))
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
    files.write_npz(target, X=np.ones((300, 200)))
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
