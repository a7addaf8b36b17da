"""How far apart two numeric platforms train (issue 21): the classic and modern presets,
float64 and float32, seeds 0-9, each trained on this machine as it is and with numpy's
AVX-512 paths turned off (NPY_DISABLE_CPU_FEATURES), the other platform one machine can
simulate. OpenBLAS's variables are never touched.

    python benchmarks/platforms.py      # rewrites the measured table in docs/reproducibility.md

Each platform trains in a fresh process (numpy reads the variable at import), on one BLAS
thread as every training does; this process compares what they saved.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from timing import table  # noqa: E402

PLATFORMS = {"native": {}, "noavx512": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}}
PRESETS = ("classic", "modern")
DTYPES = ("float64", "float32")
SEEDS = range(10)
DOC = ROOT / "docs" / "reproducibility.md"
BEGIN, END = "<!-- platforms.py: begin -->", "<!-- platforms.py: end -->"


def config(preset: str, dtype: str, seed: int):
    from hydra import compose, initialize_config_dir

    from digits_nn.config import parse

    overrides = [f"experiment={preset}", f"train.dtype={dtype}", f"seed={seed}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return parse(
            compose(config_name="config", overrides=[*overrides, "tracking.enabled=false"])
        )


def train_all(folder: Path, seeds: range) -> None:
    """Train every case on this process's platform; one npz per case in ``folder``."""
    from threadpoolctl import threadpool_limits

    from digits_nn.pipeline.evaluation import evaluate
    from digits_nn.pipeline.fit import fit
    from digits_nn.pipeline.prepared import prepare

    with threadpool_limits(limits=1, user_api="blas"):
        for preset in PRESETS:
            for dtype in DTYPES:
                for seed in seeds:
                    cfg = config(preset, dtype, seed)
                    data = prepare(cfg)
                    result = fit(cfg, data)
                    evaluation = evaluate(result.network, data.split)
                    network = result.network
                    np.savez(
                        folder / f"{preset}-{dtype}-{seed}.npz",
                        weights=np.concatenate(
                            [a.ravel().astype(np.float64) for a in network.weights + network.biases]
                        ),
                        predictions=evaluation.test_predictions,
                        test_accuracy=evaluation.test_accuracy,
                        train_accuracy=evaluation.train_accuracy,
                        final_cost=result.final_cost,
                        final_classic_cost=result.classic_cost_curve[-1],
                    )


def compare(folders: dict[str, Path], seeds: range) -> tuple[list[list[str]], dict]:
    a, b = (folders[name] for name in PLATFORMS)
    rows, found = [], {}
    for preset in PRESETS:
        for dtype in DTYPES:
            worst = dict.fromkeys(("test", "train", "cost", "relative cost", "weight"), 0.0)
            rows_changed, identical = 0, 0
            for seed in seeds:
                x, y = (np.load(f / f"{preset}-{dtype}-{seed}.npz") for f in (a, b))
                worst["test"] = max(worst["test"], abs(x["test_accuracy"] - y["test_accuracy"]))
                worst["train"] = max(worst["train"], abs(x["train_accuracy"] - y["train_accuracy"]))
                cost = abs(x["final_cost"] - y["final_cost"])
                worst["cost"] = max(worst["cost"], cost)
                worst["relative cost"] = max(worst["relative cost"], cost / abs(x["final_cost"]))
                worst["weight"] = max(worst["weight"], np.abs(x["weights"] - y["weights"]).max())
                rows_changed = max(rows_changed, int((x["predictions"] != y["predictions"]).sum()))
                identical += bool(np.array_equal(x["weights"], y["weights"]))
            found[f"{preset} {dtype}"] = worst | {"rows": rows_changed, "identical": identical}
            rows.append(
                [preset, dtype]
                + [f"{worst[k]:.2g}" for k in ("test", "train", "cost", "relative cost", "weight")]
                + [str(rows_changed), f"{identical}/{len(seeds)}"]
            )
    return rows, found


def measured_section(rows: list[list[str]], seconds: float, seeds: range) -> str:
    from digits_nn.pipeline import numeric_platform

    machine = numeric_platform.summary(numeric_platform.describe())
    header = ["preset", "dtype", "Δ test accuracy", "Δ train accuracy", "Δ final cost"]
    header += ["relative Δ cost", "Δ weight (max)", "test rows changed", "seeds bit-identical"]
    return "\n".join(
        [
            BEGIN,
            f"Measured by `python benchmarks/platforms.py` in {seconds:.0f} s: each cell is"
            f" the largest difference over seeds {seeds.start}–{seeds.stop - 1} between this"
            f" machine as it is ({machine}) and with numpy's AVX-512 paths off.\n",
            table(header, rows),
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, help="train every case into this folder")
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args()
    seeds = range(args.seeds)
    if args.worker:
        train_all(args.worker, seeds)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, steering in PLATFORMS.items():
            folders[name] = Path(tmp) / name
            folders[name].mkdir()
            print(f"training on the platform {name}", flush=True)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(folders[name]),
                    "--seeds",
                    str(args.seeds),
                ],
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **steering},
                check=True,
            )
        rows, found = compare(folders, seeds)
    section = measured_section(rows, time.perf_counter() - started, seeds)
    print(section)
    print(json.dumps(found, indent=1, default=float))
    document = args.out.read_text() if args.out.is_file() else f"{BEGIN}\n{END}\n"
    start, end = document.index(BEGIN), document.index(END) + len(END)
    args.out.write_text(document[:start] + section + document[end:])
    print(f"updated {args.out}")


if __name__ == "__main__":
    main()
