"""What produced a result: git state, data hash, package versions and BLAS set-up."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

from digits_nn.data.artifacts import split_arrays
from digits_nn.data.files import npz_bytes
from digits_nn.data.steps import Split

PACKAGES = ("numpy", "scikit-learn", "dvc", "hydra-core", "mlflow")


def md5(path: str | Path) -> str:
    """The md5 of a file's bytes, as DVC records it in dvc.lock."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def split_md5(split: Split) -> str:
    """The md5 that ``split.npz`` holding ``split`` has, without writing the file."""
    return hashlib.md5(npz_bytes(**split_arrays(split))).hexdigest()


def git_state(root: Path) -> dict[str, str]:
    """The commit checked out at ``root`` and whether tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def package_versions() -> dict[str, str]:
    return {name: installed_version(name) for name in PACKAGES}


@functools.cache
def installed_version(name: str) -> str:
    """The installed version of the distribution ``name``, or "not installed". Read once per
    process: every run of a sweep's worker asks, and reading the package metadata costs
    milliseconds each time."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def blas_info() -> str:
    """One line per BLAS library numpy and scipy loaded: API, version, kernel, threads."""
    from threadpoolctl import threadpool_info

    return "; ".join(
        f"{pool.get('internal_api')} {pool.get('version')}"
        f" ({pool.get('architecture', '?')}, {pool.get('num_threads')} threads)"
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    )
