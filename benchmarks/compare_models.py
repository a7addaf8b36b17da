"""Test accuracy of the classic and modern presets against scikit-learn, on the same splits.

    python benchmarks/compare_models.py            # seeds 0..9, writes docs/comparison.md
    python benchmarks/compare_models.py --seeds 3  # a quicker look

Every model sees the same rows: the digits split 60/40 with ``random_state=seed``. Our
presets are composed by Hydra from conf/ exactly as ``pipelines/run.py
experiment=<name>`` would compose them, each with its own scaling (the classic one fitted
on every row, as the tutorial did; the modern one on the training rows alone). The
scikit-learn peers are those of ``sweep=peers`` (:mod:`digits_nn.pipeline.peers`), their
scaling fitted on the training rows alone.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from threadpoolctl import threadpool_limits

from digits_nn import config
from digits_nn.pipeline import peers
from digits_nn.pipeline.evaluation import evaluate
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare

ROOT = Path(__file__).resolve().parents[1]


def preset(name: str, seed: int) -> config.Config:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        raw = compose("config", overrides=[f"experiment={name}", f"seed={seed}"])
    return config.parse(raw)


def ours(name: str) -> Callable[[int], float]:
    def accuracy(seed: int) -> float:
        cfg = preset(name, seed)
        data = prepare(cfg)
        return evaluate(fit(cfg, data).network, data.split).test_accuracy

    return accuracy


def peer(name: str) -> Callable[[int], float]:
    def accuracy(seed: int) -> float:
        data = prepare(config.parse({"seed": seed, "data": {"scaler_rows": "train"}}))
        fitted = peers.fit_peer(name, data, seed, 0.0)
        return float(np.mean(fitted.test_predictions == data.split.y_test))

    return accuracy


def described(name: str) -> str:
    p = peers.PEERS_BY_NAME[name]
    return f"scikit-learn `{p.label}` on the {p.inputs} pixels (`peer={name}`)"


MODELS: dict[str, tuple[str, Callable[[int], float]]] = {
    "classic": (
        "`experiment=classic` (64-30-10 sigmoid, U[0,1), GD alpha 0.25, 3000 it)",
        ours("classic"),
    ),
    "modern": ("`experiment=modern` (see conf/experiment/modern.yaml)", ours("modern")),
    **{f"peer {name}": (described(name), peer(name)) for name in peers.PEERS_BY_NAME},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/comparison.md")
    args = parser.parse_args()
    seeds = range(args.seeds)
    rows, per_seed = [], {}
    with threadpool_limits(limits=1, user_api="blas"):  # same footing for every model
        for name, (what, accuracy) in MODELS.items():
            started = time.perf_counter()
            scores = [accuracy(seed) for seed in seeds]
            seconds = (time.perf_counter() - started) / len(scores)
            per_seed[name] = scores
            rows.append(
                f"| {name} | {what} | **{np.mean(scores):.4f}** | {min(scores):.4f} |"
                f" {max(scores):.4f} | {seconds:.1f} s |"
            )
            print(f"{name:20s} mean {np.mean(scores):.4f} [{min(scores):.4f}-{max(scores):.4f}]")
    lines = [
        "# Classic, modern and scikit-learn on the same splits",
        "",
        f"Test accuracy over seeds 0..{args.seeds - 1}: the digits split 60/40 with"
        " `random_state=seed` (1078 train / 719 test rows), the same split for every model."
        " The classic preset's scaler is fitted on every row (the tutorial's order); every"
        " other model's only on the training rows. One BLAS thread.",
        "",
        "Regenerate with `python benchmarks/compare_models.py`"
        f" ({platform.machine()}, Python {platform.python_version()}).",
        "",
        "| model | what | mean | min | max | time per fit |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Per seed:",
        "",
        "| seed | " + " | ".join(per_seed) + " |",
        "|---|" + "---|" * len(per_seed),
        *(
            f"| {seed} | " + " | ".join(f"{per_seed[n][i]:.4f}" for n in per_seed) + " |"
            for i, seed in enumerate(seeds)
        ),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
