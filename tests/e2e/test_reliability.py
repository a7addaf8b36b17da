"""Faults, interruptions and provenance, tried as a user would meet them.

Every scenario here is listed in docs/reliability.md with the behaviour it guards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from digits_nn.data import files
from helpers import default_sigint, dvc, make_clone, md5, mlflow_runs, project_env, run, run_app

LONG_RUN = "train.iterations=2000000"  # minutes of training: always interrupted first


def app(repo: Path, *overrides: str, check: bool = False, **env: str):
    return run_app(repo, *overrides, check=check, **env)


def start(repo: Path, *args: str) -> subprocess.Popen[str]:
    """A command in its own process group, as a terminal would start it.

    Ctrl-C works there even when the test suite itself was started in the background
    (``cmd &`` in a script), which leaves SIGINT ignored in every process it starts.
    """
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=repo,
        env=project_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )


def wait_for_training(repo: Path, process: subprocess.Popen[str], runs: int = 1) -> None:
    """Wait until ``runs`` MLflow runs are open, then a little more, so the signal lands
    in the middle of training."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        if (repo / "mlflow.db").exists():
            _, open_runs = mlflow_runs(repo)
            if sum(r.info.status == "RUNNING" for r in open_runs) >= runs:
                time.sleep(2)
                return
        time.sleep(0.5)
    raise AssertionError("training did not start within 60 s")


# ---- interruptions ------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_training_kills_the_run_and_leaves_no_partial_output(
    clone: Path, sig: signal.Signals, status: int
) -> None:
    process = start(clone, "pipelines/run.py", LONG_RUN, "hydra.run.dir=outputs/interrupted")
    wait_for_training(clone, process)
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == status, output
    assert "Traceback" not in output
    _, runs = mlflow_runs(clone)
    assert [r.info.status for r in runs] == ["KILLED"]
    written = {p.name for p in (clone / "outputs/interrupted").rglob("*") if p.is_file()}
    assert "model.npz" not in written and "metrics.json" not in written
    assert not [name for name in written if name.startswith(".") and name != ".hydra"]


def test_sigterm_to_the_train_stage_keeps_the_previous_model(reproduced: Path) -> None:
    model = reproduced / "models/model.npz"
    before = md5(model)
    (reproduced / "params.yaml").write_text(
        (reproduced / "params.yaml").read_text().replace("iterations: 3000", "iterations: 2000000")
    )
    process = start(reproduced, "pipelines/train.py")
    wait_for_training(reproduced, process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143, output
    assert md5(model) == before  # written whole or not at all: here, not at all
    assert not list(model.parent.glob(".model.npz*"))
    _, runs = mlflow_runs(reproduced)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]


def test_ctrl_c_during_a_parallel_sweep_stops_workers_and_closes_every_run(clone: Path) -> None:
    process = start(
        clone,
        "pipelines/run.py",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        LONG_RUN,
        "seed=0,1,2",
    )
    wait_for_training(clone, process, runs=3)  # the parent and two children
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    output = process.communicate(timeout=90)[0]
    assert process.returncode == 130, output
    _, runs = mlflow_runs(clone)
    assert len(runs) >= 3
    assert {r.info.status for r in runs} == {"KILLED"}
    deadline = time.monotonic() + 30  # loky workers notice the interrupt and exit
    while time.monotonic() < deadline:
        workers = subprocess.run(["pgrep", "-a", "-g", str(process.pid)], capture_output=True)
        if not workers.stdout.strip():
            break
        time.sleep(1)
    assert workers.stdout.decode().strip() == ""  # no worker outlives the sweep


# ---- atomic writes --------------------------------------------------------------------


def test_sigkill_during_a_write_leaves_the_previous_file_or_the_new_one(tmp_path: Path) -> None:
    target = tmp_path / "big.npz"
    writer = textwrap.dedent(
        f"""
        import numpy as np
        from digits_nn.data import files
        value = 0.0
        while True:
            value += 1.0
            files.write_npz({str(target)!r}, X=np.full((2000, 500), value))
        """
    )
    files.write_npz(target, X=np.zeros((2000, 500)))  # the previous file, whatever the pace
    for delay in (0.3, 0.55, 0.8, 1.1, 1.4):
        process = subprocess.Popen([sys.executable, "-c", writer], env=project_env())
        time.sleep(delay)
        process.kill()
        process.wait()
        with np.load(target, allow_pickle=False) as archive:
            X = archive["X"]
        assert X.shape == (2000, 500)
        assert np.all(X[0, 0] == X)  # one whole write, never a mix or a cut


# ---- divergence -----------------------------------------------------------------------


def test_divergence_stops_with_alpha_and_iteration_and_keeps_the_curve(clone: Path) -> None:
    # float32 cannot hold alpha = 1e100: the first update overflows, the cost turns NaN.
    result = app(clone, "train.dtype=float32", "train.alpha=1e100")
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "train.alpha=1e+100" in output and "iteration 2" in output
    assert "Traceback" not in output
    client, runs = mlflow_runs(clone)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "diverged" in runs[0].data.tags["error"]
    history = client.get_metric_history(runs[0].info.run_id, "train_cost")
    assert [m.step for m in history] == [1]


# ---- tracking faults ------------------------------------------------------------------


def _corrupt_store(repo: Path) -> str:
    (repo / "mlflow.db").write_bytes(b"this is not a database" * 100)
    return f"sqlite:///{repo / 'mlflow.db'}"


def _read_only_store(repo: Path) -> str:
    app(repo, "train.iterations=5", check=True)  # a real store, then opened read-only
    return f"sqlite:///file:{repo / 'mlflow.db'}?mode=ro&uri=true"


def _unreachable_server(repo: Path) -> str:
    return "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.mark.parametrize("make_store", [_corrupt_store, _read_only_store, _unreachable_server])
def test_a_broken_store_fails_before_training(clone: Path, make_store) -> None:
    uri = make_store(clone)
    started = time.monotonic()
    result = app(clone, MLFLOW_TRACKING_URI=uri)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"MLflow store {uri}" in output and "tracking.enabled=false" in output
    assert "training 64-" not in output and "Traceback" not in output  # refused before work
    assert time.monotonic() - started < 60


def test_tracking_disabled_runs_without_mlflow(clone: Path) -> None:
    result = run(
        [sys.executable, "-X", "importtime", "pipelines/run.py", "tracking.enabled=false"],
        cwd=clone,
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",
    )
    assert "test accuracy 0.8901" in result.stderr + result.stdout
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()]
    assert "mlflow" not in imported
    assert not (clone / "mlflow.db").exists()


def test_four_processes_on_a_fresh_store_all_succeed(clone: Path) -> None:
    processes = [
        start(clone, "pipelines/run.py", "train.iterations=30", f"seed={seed}",
              f"hydra.run.dir=outputs/p{seed}")
        for seed in range(4)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
    _, runs = mlflow_runs(clone)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}


# ---- configuration and artifacts at the entry points ---------------------------------


def test_a_bad_override_prints_one_line_and_writes_nothing(clone: Path) -> None:
    result = app(clone, "train.alpha=abc", "hydra.run.dir=outputs/bad")
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "train.alpha='abc' is not allowed: a number." in output
    assert "Traceback" not in output
    written = {
        p.relative_to(clone / "outputs/bad").parts[0] for p in (clone / "outputs/bad").rglob("*")
    }
    assert written <= {".hydra", "run.log"}  # Hydra's own bookkeeping only
    assert not (clone / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupt"),
        (lambda p: p.unlink(), "missing"),
        (lambda p: np.savez(p, X=np.zeros(3)), "holds arrays"),
    ],
    ids=["truncated", "missing", "wrong-arrays"],
)
def test_a_damaged_artifact_stops_the_stage_naming_the_file(
    reproduced: Path, damage, message: str
) -> None:
    split = reproduced / "data/processed/split.npz"
    damage(split)
    result = run([sys.executable, "pipelines/train.py"], cwd=reproduced, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "data/processed/split.npz" in output and message in output
    assert "Traceback" not in output
    # The next `dvc repro` sees the damaged output of `split` and rebuilds it.
    dvc("repro", cwd=reproduced)
    assert np.load(split, allow_pickle=False)["X_train"].shape == (1078, 64)


# ---- reproducibility and provenance --------------------------------------------------


def test_two_fresh_clones_give_byte_identical_results(
    reproduced_once: Path, tmp_path: Path
) -> None:
    # The first fresh clone is the session's, reproduced once (conftest.py); the second is
    # made and reproduced here, in a process of its own.
    repo = make_clone(tmp_path / "second")
    dvc("repro", cwd=repo)
    outputs = {
        name: {f: md5(clone / f) for f in ("models/model.npz", "reports/metrics.json")}
        for name, clone in (("first", reproduced_once), ("second", repo))
    }
    assert outputs["first"] == outputs["second"]
    # And `dvc repro --force` gives the same output hashes in dvc.lock.
    lock = (repo / "dvc.lock").read_text()
    dvc("repro", "--force", cwd=repo)
    assert (repo / "dvc.lock").read_text() == lock


def test_runs_record_provenance_and_no_secret(clone: Path) -> None:
    secret = "fake-password-do-not-log-1234"
    result = app(clone, "train.iterations=20", check=True, MLFLOW_TRACKING_PASSWORD=secret)
    assert secret not in result.stdout + result.stderr
    client, runs = mlflow_runs(clone)
    tags, params = runs[0].data.tags, runs[0].data.params
    assert secret not in str(tags) and secret not in str(params)
    assert len(tags["git_commit"]) == 40 and tags["git_dirty"] == "false"
    assert len(tags["data_md5"]) == 32 and tags["overrides"] == "train.iterations=20"
    for package in ("numpy", "scikit-learn", "dvc", "hydra-core", "mlflow"):
        assert tags[f"version.{package}"][0].isdigit()
    assert "threads" in tags["blas"]
    assert "params.yaml" in {a.path for a in client.list_artifacts(runs[0].info.run_id)}
