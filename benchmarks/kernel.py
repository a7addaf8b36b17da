"""Sections a-d: the training iteration against its peers, its products, size and dtype.

Every function returns markdown (and writes its plot, if any); all timings run with
BLAS on one thread, which :mod:`bench` sets before calling them.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from peers import (
    enlarged_digits,
    naive_iteration,
    naive_products,
    per_sample_iteration,
    per_sample_vector_iteration,
    sklearn_peer,
)
from timing import Timing, measure, ms, table

from digits_nn import config
from digits_nn.core.activations import sigmoid
from digits_nn.core.kernel import Workspace, gradient_descent
from digits_nn.core.network import initialise
from digits_nn.core.training import TrainOptions
from digits_nn.pipeline.evaluation import evaluate
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare

ALPHA = 0.25


@dataclass
class Sizes:
    """How much work each measurement does; ``quick`` is for the smoke test."""

    repeats: int
    iterations: int  # per timed repeat of a training loop
    rows: int | None  # None: all 1078 training rows
    hidden: list[int]
    enlarge: list[int]
    depths: list[int]
    seeds: list[int]
    accuracy_iterations: int
    sklearn_iterations: tuple[int, int]
    target_seconds: float  # per repeat, for the scaling points

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            7,
            300,
            None,
            [10, 30, 100, 300, 1000],
            [1, 5, 25],
            [1, 2, 3, 4, 6],
            list(range(10)),
            3000,
            (50, 350),
            0.15,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(2, 3, 60, [10, 30], [1, 5], [1, 2], [0, 1], 10, (2, 5), 0.002)


def digits(sizes: Sizes, dtype: str = "float64"):
    data = prepare(config.parse({"train": {"dtype": dtype}}))
    rows = slice(None, sizes.rows)
    X = np.ascontiguousarray(data.split.X_train[rows], dtype=dtype)
    Y = np.ascontiguousarray(data.onehot.Y_train[rows], dtype=dtype)
    return X, Y, data.split.y_train[rows]


def uniform(layer_sizes: list[int], dtype: str = "float64"):
    """The classic network of seed 0: the one every implementation starts from."""
    return initialise(layer_sizes, "uniform", 0, dtype)


def per_iteration_ours(layer_sizes, X, Y, repeats, iterations) -> Timing:
    dtype = X.dtype.name
    fresh = lambda: uniform(layer_sizes, dtype)  # noqa: E731
    options = TrainOptions(alpha=ALPHA, iterations=iterations)
    timing = measure(
        lambda net: gradient_descent(net, X, Y, options),
        repeats=repeats,
        setup=fresh,
    )
    return Timing([t / iterations for t in timing.samples])


def per_iteration_naive(layer_sizes, X, Y, repeats, iterations) -> Timing:
    dtype = X.dtype.name

    def train(net):
        for _ in range(iterations):
            naive_iteration(net, X, Y, ALPHA)

    timing = measure(train, repeats=repeats, setup=lambda: uniform(layer_sizes, dtype))
    return Timing([t / iterations for t in timing.samples])


def per_iteration_sklearn(hidden, X, labels, repeats, counts) -> Timing:
    """(fit with n2 epochs - fit with n1 epochs) / (n2 - n1): set-up and checks cancel."""

    def fit_for(iterations):
        def run(_):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the budget
                sklearn_peer(hidden, ALPHA, iterations, len(X)).fit(X, labels)

        return measure(run, repeats=repeats)

    short, long = fit_for(counts[0]), fit_for(counts[1])
    steps = counts[1] - counts[0]
    return Timing([(b - a) / steps for a, b in zip(sorted(short.samples), sorted(long.samples))])


def per_iteration_per_sample(X, Y, repeats, step=per_sample_iteration) -> Timing:
    net = uniform([64, 30, 10])
    return measure(
        lambda state: step(*state, X, Y, ALPHA),
        repeats=repeats,
        setup=lambda: (copy.deepcopy(net.weights), copy.deepcopy(net.biases)),
    )


def sigmoid_in_place(z: np.ndarray) -> np.ndarray:
    """The sigmoid as the kernel applies it, overwriting its input."""
    return sigmoid(z, out=z)


def kernel_products(workspace: Workspace) -> None:
    """The five products of one training iteration, exactly as Workspace runs them."""
    (P1, P2), (A0, A1, A2) = workspace.params, workspace.activations
    D1, D2 = workspace.deltas
    np.matmul(P1, A0, out=A1[:-1])
    np.matmul(P2, A1, out=A2[:-1])
    np.matmul(D2, A1.T, out=workspace.steps[1])
    np.matmul(P2[:, :-1].T, D2, out=D1)
    np.matmul(D1, workspace.batch_rows, out=workspace.steps[0])


def section_peers(sizes: Sizes) -> tuple[str, dict]:
    """a, b: time per iteration against peers, and against the iteration's products."""
    rows, ratios, profile_rows = [], {}, []
    results: dict[str, dict[str, Timing]] = {}
    for dtype in ("float64", "float32"):
        X, Y, labels = digits(sizes, dtype)
        layer_sizes = [64, 30, 10]
        r = results[dtype] = {}
        r["ours"] = per_iteration_ours(layer_sizes, X, Y, sizes.repeats, sizes.iterations)
        r["naive"] = per_iteration_naive(layer_sizes, X, Y, sizes.repeats, sizes.iterations)
        r["sklearn"] = per_iteration_sklearn(30, X, labels, sizes.repeats, sizes.sklearn_iterations)
        net = uniform(layer_sizes, dtype)
        workspace = Workspace(net, X, Y)
        n = max(1, sizes.iterations)
        r["kernel products"] = measure(
            lambda _, w=workspace: kernel_products(w), repeats=sizes.repeats, number=n
        )
        five = naive_products(net, X)
        r["naive products"] = measure(
            lambda _, five=five: [f() for f in five], repeats=sizes.repeats, number=n
        )
        if dtype == "float64":
            r["per-sample"] = per_iteration_per_sample(X, Y, max(sizes.repeats - 2, 2))
            r["per-sample (vector)"] = per_iteration_per_sample(
                X, Y, max(sizes.repeats - 2, 2), per_sample_vector_iteration
            )
            ws = workspace
            parts = {
                "feed forward (2 products, 2 sigmoids)": ws.feed_forward,
                "output error and ||y - h||^2": ws.output_error_norms,
                "backprop and step (3 products)": lambda ws=ws: ws.descend(0.0),
                "sigmoid of the hidden layer alone": lambda ws=ws: sigmoid_in_place(
                    ws.activations[1][:-1]
                ),
                "exp of the hidden layer alone": lambda ws=ws: np.exp(
                    ws.activations[1][:-1], out=ws.fprimes[0]
                ),
            }
            with np.errstate(over="ignore"):
                for name, part in parts.items():
                    t = measure(lambda _, part=part: part(), repeats=sizes.repeats, number=n)
                    profile_rows.append([name, ms(t.median), ms(t.min)])
    for dtype, r in results.items():
        ours = r["ours"]
        for name in ("ours", "naive", "sklearn", "per-sample", "per-sample (vector)"):
            if name not in r:
                continue
            t = r[name]
            rows.append([dtype, name, ms(t.median), ms(t.min), f"{t.median / ours.median:.2f}"])
        ratios[dtype] = {
            "vs sklearn": r["sklearn"].median / ours.median,
            "vs naive": r["naive"].median / ours.median,
            "overhead (kernel products)": ours.median / r["kernel products"].median,
            "overhead (naive products)": ours.median / r["naive products"].median,
            "naive overhead (naive products)": r["naive"].median / r["naive products"].median,
        }
        if "per-sample" in r:
            ratios[dtype]["vs per-sample"] = r["per-sample"].median / ours.median
            ratios[dtype]["vs per-sample (vector)"] = r["per-sample (vector)"].median / ours.median
    m = len(digits(sizes)[0])
    text = [
        f"### a. Time per training iteration (64-30-10, m = {m}, one BLAS thread)\n",
        "`ours` is `digits_nn.core.kernel.gradient_descent`; `naive` the plain vectorised numpy it"
        " replaced (benchmarks/peers.py); `sklearn` MLPClassifier(logistic, sgd, lr 0.25,"
        " batch = all rows, momentum 0, alpha 0, no shuffle), timed as the difference of two"
        " fits so that its set-up cancels (its output layer is softmax + cross-entropy, the"
        " only one it has); `per-sample` the looped form of algorithm.md (loops over samples"
        " and nodes); `per-sample (vector)` loops over samples only, each in vector form."
        " Last column: time"
        " relative to ours (higher is slower).\n",
        table(["dtype", "implementation", "median ms/it", "min ms/it", "× ours"], rows),
        "",
        "### b. Overhead: one iteration against its matrix products alone\n",
        table(
            [
                "dtype",
                "kernel products (ms)",
                "ours / kernel products",
                "naive products (ms)",
                "ours / naive products",
                "naive / naive products",
            ],
            [
                [
                    dtype,
                    ms(r["kernel products"].median),
                    f"{ratios[dtype]['overhead (kernel products)']:.2f}",
                    ms(r["naive products"].median),
                    f"{ratios[dtype]['overhead (naive products)']:.2f}",
                    f"{ratios[dtype]['naive overhead (naive products)']:.2f}",
                ]
                for dtype, r in results.items()
            ],
        ),
        "",
        "*kernel products*: the five products exactly as the optimised iteration runs them"
        " (one sample per column, bias folded in as a row of ones, so 65 and 31 inputs);"
        " *naive products*: the five products of the issue's definition (`X @ W1.T`,"
        " `H1 @ W2.T`, `D2.T @ H1`, `D2 @ W2`, `D1.T @ X`). The layout change made the"
        " products themselves faster, which makes the first ratio the stricter one.\n",
        "Profile of one float64 iteration of ours (median / min ms):\n",
        table(["part", "median ms", "min ms"], profile_rows),
        "",
    ]
    return "\n".join(text), {"ratios": ratios, "results": results}


def _timed_point(layer_sizes, X, Y, sizes: Sizes) -> tuple[Timing, Timing]:
    probe = per_iteration_ours(layer_sizes, X, Y, 1, 1).median
    iterations = max(2, int(sizes.target_seconds / max(probe, 1e-6)))
    ours = per_iteration_ours(layer_sizes, X, Y, max(sizes.repeats - 2, 2), iterations)
    naive = per_iteration_naive(layer_sizes, X, Y, max(sizes.repeats - 2, 2), iterations)
    return ours, naive


def _exponent(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def section_scaling(sizes: Sizes, img_dir: Path) -> tuple[str, dict]:
    """c: iteration time against hidden size, sample count and depth."""
    X, Y, _ = digits(sizes)
    series: dict[str, tuple[list[int], list[Timing], list[Timing]]] = {}
    xs, ours_t, naive_t = [], [], []
    for hidden in sizes.hidden:
        ours, naive = _timed_point([64, hidden, 10], X, Y, sizes)
        xs.append(hidden), ours_t.append(ours), naive_t.append(naive)
    series["hidden size (64-h-10)"] = (xs, ours_t, naive_t)
    xs, ours_t, naive_t = [], [], []
    for factor in sizes.enlarge:
        Xe, Ye = enlarged_digits(X, Y, factor)
        ours, naive = _timed_point([64, 30, 10], Xe, Ye, sizes)
        xs.append(len(Xe)), ours_t.append(ours), naive_t.append(naive)
    series["samples m (digits ×1, ×5, ×25 by 1-pixel shifts; 64-30-10)"] = (xs, ours_t, naive_t)
    xs, ours_t, naive_t = [], [], []
    for depth in sizes.depths:
        ours, naive = _timed_point([64, *[30] * depth, 10], X, Y, sizes)
        xs.append(depth), ours_t.append(ours), naive_t.append(naive)
    series["hidden layers of 30 (depth)"] = (xs, ours_t, naive_t)

    text = ["### c. Scaling of the iteration time (float64, one BLAS thread)\n"]
    exponents = {}
    for name, (xs, ours_t, naive_t) in series.items():
        k_ours = _exponent(xs, [t.median for t in ours_t])
        k_naive = _exponent(xs, [t.median for t in naive_t])
        exponents[name] = (k_ours, k_naive)
        text.append(
            f"**{name}**: fitted exponent (time ∝ x^k) ours k = {k_ours:.2f},"
            f" naive k = {k_naive:.2f}\n"
        )
        text.append(
            table(
                ["x", "ours median ms/it", "ours min", "naive median ms/it", "naive / ours"],
                [
                    [x, ms(o.median), ms(o.min), ms(n.median), f"{n.median / o.median:.2f}"]
                    for x, o, n in zip(xs, ours_t, naive_t)
                ],
            )
        )
        text.append("")
    plot = img_dir / "bench-scaling.png"
    _plot_scaling(series, exponents, plot)
    text.append(f"![scaling, log-log]({plot.parent.name}/{plot.name})\n")
    return "\n".join(text), {"exponents": exponents}


def _plot_scaling(series, exponents, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 4))
    for ax, (name, (xs, ours_t, naive_t)) in zip(axes, series.items()):
        k_ours, k_naive = exponents[name]
        ax.loglog(xs, [t.median * 1e3 for t in ours_t], "o-", label=f"ours, k = {k_ours:.2f}")
        ax.loglog(xs, [t.median * 1e3 for t in naive_t], "s--", label=f"naive, k = {k_naive:.2f}")
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("ms per iteration")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Iteration time, one BLAS thread (log-log, fitted exponent k)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def section_dtype(sizes: Sizes, peers: dict) -> tuple[str, dict]:
    """d: float32 against float64, speed (from a) and test accuracy of whole runs."""
    results = peers["results"]
    speedup = results["float64"]["ours"].median / results["float32"]["ours"].median
    rows, accuracy = [], {}
    for seed in sizes.seeds:
        row = [seed]
        for dtype in ("float64", "float32"):
            cfg = config.parse(
                {"seed": seed, "train": {"dtype": dtype, "iterations": sizes.accuracy_iterations}}
            )
            data = prepare(cfg)
            timing = measure(lambda _, cfg=cfg, data=data: fit(cfg, data), repeats=1, warmup=0)
            result = fit(cfg, data)
            acc = evaluate(result.network, data.split).test_accuracy
            accuracy.setdefault(dtype, []).append(acc)
            row += [f"{acc:.4f}", f"{timing.min:.3f}"]
        row.append("yes" if row[1] == row[3] else "**no**")
        rows.append(row)
    same = all(a == b for a, b in zip(accuracy["float64"], accuracy["float32"]))
    text = [
        "### d. float32 against float64\n",
        f"Per iteration (from a): float64 {ms(results['float64']['ours'].median)} ms,"
        f" float32 {ms(results['float32']['ours'].median)} ms: **float32 is"
        f" {speedup:.2f}× faster**. Test accuracy of whole runs"
        f" ({sizes.accuracy_iterations} iterations), seeds {sizes.seeds[0]}..{sizes.seeds[-1]}:"
        f" {'identical on every seed' if same else 'NOT identical on every seed'}.\n",
        table(
            [
                "seed",
                "float64 test acc",
                "float64 fit s",
                "float32 test acc",
                "float32 fit s",
                "same",
            ],
            rows,
        ),
        "",
    ]
    return "\n".join(text), {"float32 speedup": speedup, "same accuracy": same}
