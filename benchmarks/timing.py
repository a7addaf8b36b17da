"""Timing with warm-up and repeats, the machine's description, and markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    """Seconds per call, one value per repeat."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)


def measure(
    work: Callable[[Any], Any],
    *,
    repeats: int,
    number: int = 1,
    warmup: int = 1,
    setup: Callable[[], Any] = lambda: None,
) -> Timing:
    """Time ``work(setup())`` ``number`` times per repeat; ``setup`` is not timed."""
    for _ in range(warmup):
        work(setup())
    samples = []
    for _ in range(repeats):
        state = setup()
        start = time.perf_counter()
        for _ in range(number):
            work(state)
        samples.append((time.perf_counter() - start) / number)
    return Timing(samples)


def measure_alternating(
    works: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Time each of ``works`` once per repeat, taking turns, after one warm-up round: on
    a busy machine a drift in load then falls on all of them alike, so their ratio holds.
    ``clock=time.process_time`` gives the CPU time of this process instead of wall time."""
    for work in works.values():
        work()
    samples: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            start = clock()
            work()
            samples[name].append(clock() - start)
    return {name: Timing(values) for name, values in samples.items()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_description() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    return [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]


def machine() -> dict[str, str]:
    import numpy as np

    pools = blas_description()
    blas = "; ".join(
        f"{p.get('internal_api')} {p.get('version')}, kernel {p.get('architecture')},"
        f" {p.get('num_threads')} threads available ({os.path.basename(p.get('filepath', ''))})"
        for p in pools
    )
    return {
        "CPU": f"{cpu_model()}, {os.cpu_count()} logical cores",
        "BLAS": blas or "none found",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(not set)"),
        "Python / numpy": f"{platform.python_version()} / {np.__version__}",
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
