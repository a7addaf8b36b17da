"""A DVC remote shares one member's trained outputs with the others: a local
path remote, as on shared storage, between temporary clones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers import dvc, mlflow_runs

OUTPUTS = ("models/model.npz", "reports/metrics.json", "data/processed/split.npz")


def share(reproduced: Path, remote: Path) -> None:
    """Add ``remote`` as the default remote and commit it, as a team would."""
    dvc("remote", "add", "-d", "shared", str(remote), cwd=reproduced)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "commit", "-qam", "shared remote"], cwd=reproduced, check=True)


def git_clone(source: Path, destination: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(destination)], check=True)
    return destination


def test_push_then_pull_in_a_fresh_clone_is_clean_with_nothing_retrained(
    reproduced: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    share(reproduced, remote)
    dvc("push", cwd=reproduced)
    assert any(remote.rglob("*")), "dvc push sent nothing"
    other = git_clone(reproduced, tmp_path / "other")
    dvc("pull", cwd=other)
    for name in OUTPUTS:
        assert (other / name).read_bytes() == (reproduced / name).read_bytes(), name
    status = dvc("status", cwd=other).stdout
    assert "Data and pipelines are up to date" in status, status
    # Nothing was retrained: no stage ran, so no MLflow run exists in the new clone.
    assert not (other / "mlflow.db").exists() or mlflow_runs(other)[1] == []


def test_push_run_cache_then_repro_pull_elsewhere_restores_without_training(
    reproduced: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    share(reproduced, remote)
    dvc("push", "--run-cache", cwd=reproduced)
    other = git_clone(reproduced, tmp_path / "other")
    # The lock file alone would also let `dvc pull` restore; without it, only the run
    # cache can tell that these exact stages already ran.
    (other / "dvc.lock").unlink()
    result = dvc("repro", "--pull", cwd=other)
    for stage in ("load", "scale", "split", "onehot", "train"):
        assert f"Stage '{stage}' is cached - skipping run" in result.stdout, result.stdout
    # Only evaluate may run, training nothing: `dvc push --run-cache` does not send the
    # run cache's copies of its uncached metrics (committed to git instead), so DVC
    # recomputes them from the restored model, byte for byte.
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if "Running stage" in line}
    assert ran <= {"evaluate"}, result.stdout
    for name in (*OUTPUTS, "reports/platform.json"):
        assert (other / name).read_bytes() == (reproduced / name).read_bytes(), name
    if (other / "mlflow.db").exists():
        client, runs = mlflow_runs(other)
        assert all(not client.get_metric_history(r.info.run_id, "train_cost") for r in runs)


def test_pull_without_the_remote_fails_naming_it(reproduced: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    share(reproduced, remote)
    dvc("push", cwd=reproduced)
    shutil.rmtree(remote)
    other = git_clone(reproduced, tmp_path / "other")
    result = dvc("pull", cwd=other, check=False)
    assert result.returncode != 0
    assert "missing" in (result.stdout + result.stderr).lower()
