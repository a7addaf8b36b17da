"""The numeric platform: what, besides the code, the data and the config, decides the last
bits of a trained network.

Two libraries choose their code by CPU at run time: numpy dispatches its ufuncs (float64
``exp`` among them) to the widest SIMD targets the CPU has, and OpenBLAS picks a kernel
per CPU, which sums in its own order. So the same commit trains weights that differ in
their last bits on another CPU. A run records the platform it ran on
(:func:`describe`): the fields of :data:`KEY` decide the bits, the others are for a
person. Two platforms with the same key give the same bits; when a key field differs,
the metrics still agree within :data:`ACCURACY_ROWS` and :data:`COST_RTOL`
(docs/reproducibility.md has the measurements).

Nothing here sets anything: ``NPY_DISABLE_CPU_FEATURES``, ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` are read, never written.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np

# The fields that decide the bits. Conservative: a field that may change them is here,
# since a platform wrongly called the same would demand bits it cannot give.
KEY = (
    "machine",
    "libc",
    "numpy",
    "numpy_baseline",
    "numpy_simd",
    "npy_disable_cpu_features",
    "blas",
    "blas_kernel",
    "openblas_coretype",
    "openblas_l2_size",
    "scikit-learn",
)
# For a person: the CPU by name (two models may share a key), Python, BLAS threads (every
# training runs on one BLAS thread whatever the machine has).
INFORMATIVE = ("cpu", "python", "blas_threads")
# Read from the environment where set: numpy's dispatch steered by hand, OpenBLAS's kernel
# and cache size fixed by the machine's administrators.
STEERING = {
    "npy_disable_cpu_features": "NPY_DISABLE_CPU_FEATURES",
    "openblas_coretype": "OPENBLAS_CORETYPE",
    "openblas_l2_size": "OPENBLAS_L2_SIZE",
}

# How far the metrics of one configuration move between platforms (measured across
# the classic and modern presets, float64 and float32, seeds 0-9, numpy's AVX-512 paths
# on and off): an accuracy by at most this many rows of the set it is measured on, a
# cost by at most this relative difference.
ACCURACY_ROWS = 1
COST_RTOL = 1e-6


def describe() -> dict[str, str]:
    """This process's numeric platform: every field of :data:`KEY` and
    :data:`INFORMATIVE` that applies, as strings."""
    from digits_nn.pipeline.provenance import installed_version

    blas = numpy_blas()
    found = {
        "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()).strip() or "unknown",
        "numpy": np.__version__,
        "numpy_baseline": " ".join(simd_targets()[0]),
        "numpy_simd": " ".join(simd_targets()[1]) or "none",
        "blas": f"{blas.get('internal_api', '?')} {blas.get('version', '?')}",
        "blas_kernel": str(blas.get("architecture", "?")),
        "blas_threads": str(blas.get("num_threads", "?")),
        "scikit-learn": installed_version("scikit-learn"),
        "cpu": cpu_model(),
        "python": platform.python_version(),
    }
    found |= {field: os.environ[name] for field, name in STEERING.items() if os.environ.get(name)}
    return found


def simd_targets() -> tuple[list[str], list[str]]:
    """numpy's SIMD baseline, and the dispatch targets this CPU runs (what
    ``NPY_DISABLE_CPU_FEATURES`` turned off is not among them)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
    features = umath.__cpu_features__
    dispatched = [target for target in umath.__cpu_dispatch__ if features.get(target)]
    return list(umath.__cpu_baseline__), dispatched


def numpy_blas() -> dict:
    """threadpoolctl's description of the BLAS numpy's matrix products call: the one
    shipped in numpy's own folder, else every BLAS loaded (a system numpy's)."""
    from threadpoolctl import threadpool_info

    pools = sorted(
        (pool for pool in threadpool_info() if pool.get("user_api") == "blas"),
        key=lambda pool: str(pool.get("filepath")),
    )
    numpy_home = Path(np.__file__).resolve().parent
    own = [pool for pool in pools if Path(pool["filepath"]).parent.name.startswith("numpy")]
    own = own or [pool for pool in pools if numpy_home in Path(pool["filepath"]).parents]
    if own or len(pools) == 1:
        return (own or pools)[0]
    return {
        key: " + ".join(str(pool.get(key, "?")) for pool in pools)
        for key in ("internal_api", "version", "architecture", "num_threads")
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def key(described: Mapping[str, str]) -> dict[str, str]:
    """The fields that decide the bits, an unset one as ''."""
    return {field: str(described.get(field, "")) for field in KEY}


def recorded(described: Mapping[str, str]) -> dict[str, str]:
    """What reports/platform.json holds: the key fields that apply. The fields for a
    person stay out of it, since the file is a DVC output: a clone on the same key
    must write it byte for byte, whatever the CPU's name, Python or BLAS threads."""
    return {field: value for field, value in described.items() if field in KEY}


def same_bits(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether two platforms give the same bits for the same code, data and config."""
    return key(a) == key(b)


def differences(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Each key field that differs, as ``field recorded -> current``."""
    old, new = key(recorded), key(current)
    return [f"{f} {old[f] or 'unset'} -> {new[f] or 'unset'}" for f in KEY if old[f] != new[f]]


def summary(described: Mapping[str, str]) -> str:
    """The platform in a few words, e.g. ``numpy 2.4.6 [X86_V3 X86_V4], openblas ...``."""
    cpu = f"{described['cpu']}: " if described.get("cpu") else ""
    return (
        f"{cpu}numpy {described.get('numpy', '?')}"
        f" [{described.get('numpy_simd', '?')}], {described.get('blas', '?')}"
        f" {described.get('blas_kernel', '?')}, {described.get('libc', '?')}"
    )


def notice(recorded: Mapping[str, str] | None, current: Mapping[str, str]) -> str | None:
    """One line for a training whose platform differs from the one that computed the
    committed outputs (``recorded``); None when the bits will be the same, or nothing
    was recorded."""
    if not recorded or same_bits(recorded, current):
        return None
    return (
        f"platform: the committed outputs (dvc.lock, reports/platform.json) were computed on"
        f" {summary(recorded)}; this machine is {summary(current)}"
        f" ({'; '.join(differences(recorded, current))}). The weights will differ in their"
        " last bits, so dvc.lock's hashes of the model, cost curve and metrics will change;"
        f" the metrics will agree with the committed ones within {ACCURACY_ROWS} row of"
        f" accuracy and a relative {COST_RTOL:g} of cost (docs/reproducibility.md). Commit"
        " the new dvc.lock, or `dvc pull` the team's outputs to get the committed bits."
    )


def tags(described: Mapping[str, str]) -> dict[str, str]:
    """The platform as MLflow tags, ``platform.<field>``."""
    return {f"platform.{field}": value for field, value in described.items()}
