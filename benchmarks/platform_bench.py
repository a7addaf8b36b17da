"""Section p: the price of making the classic kernel independent of numpy's SIMD dispatch
(issue 21), on this machine as it is and with numpy's AVX-512 paths turned off.

Each platform is a fresh process (numpy reads NPY_DISABLE_CPU_FEATURES at import), which
times one classic float64 iteration with numpy's ``exp`` and with
:mod:`independent_exp`'s, taking turns, in CPU time, and trains 300 iterations with each
to show whose weights depend on the platform. OpenBLAS's variables are never touched.

    python benchmarks/platform_bench.py --worker native   # one platform's figures, as JSON
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from timing import measure_alternating, table  # noqa: E402

PLATFORMS = {
    "as it is": {},
    "numpy's AVX-512 paths off": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"},
}
BITS_ITERATIONS = 300
NUMPY, INDEPENDENT = "numpy's exp", "independent exp"


def independent_workspace(network, X, Y):
    """The classic kernel's workspace, its sigmoid on :mod:`independent_exp`."""
    import independent_exp

    from digits_nn.core import kernel

    class Independent(kernel.Workspace):
        def feed_forward(self) -> None:
            for params, h_in, h_out in zip(self.params, self.activations, self.activations[1:]):
                z = h_out[:-1]
                np.matmul(params, h_in, out=z)
                independent_exp.sigmoid(z, out=z)

    return Independent(network, X, Y)


def classic_data():
    from digits_nn.config import parse
    from digits_nn.pipeline.fit import initial_network
    from digits_nn.pipeline.prepared import prepare

    cfg = parse({"tracking": {"enabled": False}})
    data = prepare(cfg)
    return cfg, data, initial_network


def worker(repeats: int, block: int) -> dict:
    """One platform's figures: the iteration's CPU time both ways, and the md5 of the
    weights after BITS_ITERATIONS iterations both ways."""
    from threadpoolctl import threadpool_limits

    from digits_nn.core import kernel
    from digits_nn.pipeline import numeric_platform

    cfg, data, initial_network = classic_data()
    X, Y = data.split.X_train, data.onehot.Y_train

    def workspaces() -> dict:
        return {
            NUMPY: kernel.Workspace(initial_network(cfg), X, Y),
            INDEPENDENT: independent_workspace(initial_network(cfg), X, Y),
        }

    spaces = workspaces()

    def iterations(space, count: int):
        def run() -> None:
            for _ in range(count):
                space.feed_forward()
                space.output_error_norms()
                space.descend(cfg.train.alpha)

        return run

    with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore"):
        timings = measure_alternating(
            {name: iterations(space, block) for name, space in spaces.items()},
            repeats=repeats,
            clock=time.process_time,
        )
        bits = {}
        for name, space in workspaces().items():
            iterations(space, BITS_ITERATIONS)()
            bits[name] = hashlib.md5(b"".join(p.tobytes() for p in space.params)).hexdigest()
    described = numeric_platform.describe()
    return {
        "microseconds": {k: t.median / block * 1e6 for k, t in timings.items()},
        "bits": bits,
        "simd": described["numpy_simd"],
        "blas": f"{described['blas']} {described['blas_kernel']}",
    }


def section_platform(quick: bool) -> tuple[str, dict]:
    repeats, block = (3, 2) if quick else (41, 20)
    load = os.getloadavg()[0]
    found = {}
    for name, steering in PLATFORMS.items():
        command = [sys.executable, __file__, "--worker", "--repeats", str(repeats)]
        done = subprocess.run(
            [*command, "--block", str(block)],
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **steering},
            capture_output=True,
            text=True,
            check=True,
        )
        found[name] = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for name, figures in found.items():
        us, bits = figures["microseconds"], figures["bits"]
        ratio = us[INDEPENDENT] / us[NUMPY]
        times = [f"{us[NUMPY]:.0f}", f"{us[INDEPENDENT]:.0f}", f"{ratio:.2f}"]
        rows.append([name, figures["simd"], *times, bits[NUMPY][:8], bits[INDEPENDENT][:8]])
    same = {k: len({f["bits"][k] for f in found.values()}) == 1 for k in (NUMPY, INDEPENDENT)}
    blas = next(iter(found.values()))["blas"]
    found["same bits on both platforms"] = same
    header = ["numpy's SIMD", "dispatch targets", f"{NUMPY} (µs)", f"{INDEPENDENT} (µs)"]
    header += ["ratio", f"weights, {NUMPY}", f"weights, {INDEPENDENT}"]
    text = "\n".join(
        [
            "### p. The price of a platform-independent `exp` (one classic float64 iteration,"
            " 64-30-10, 1078 rows, one BLAS thread)\n",
            f"Each platform in a fresh process; CPU time per iteration, median of {repeats}"
            f" blocks of {block} iterations, the two taking turns; {blas}; load average"
            f" {load:.1f} at the start. The md5s are of the weights after"
            f" {BITS_ITERATIONS} iterations. See [reproducibility.md](reproducibility.md)"
            " for the decision.\n",
            table(header, rows),
            "",
            f"Same weights on both platforms: with {NUMPY} {same[NUMPY]}, with the"
            f" {INDEPENDENT} {same[INDEPENDENT]}.",
        ]
    )
    return text + "\n", found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--block", type=int, default=20)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.repeats, args.block)))
    else:
        print(section_platform(quick=False)[0])


if __name__ == "__main__":
    main()
