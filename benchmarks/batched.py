"""Section h: K configurations that differ only in ``train.alpha``, trained as one batch.

Issue 12 item 2 asks whether training such configurations together (same shape, same
seed, so the same initial network) beats training them one after another, on the
classic kernel (64-30-10, all 1078 training rows, one BLAS thread), and whether each
result stays bit-identical to its standalone training.

The batched loop is :class:`digits_nn.core.kernel.Workspace` with a leading configuration
axis: every array gains an axis of length K, a product becomes a stacked product (numpy
calls the same BLAS routine on each configuration's matrices), and the elementwise
steps and reductions run over all K at once. The batch itself is shared.

    python benchmarks/batched.py           # prints the section
    python benchmarks/batched.py --quick   # tiny sizes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel import Sizes, digits
from threadpoolctl import threadpool_limits
from timing import measure_alternating, ms, table

from digits_nn.core.activations import sigmoid, sigmoid_derivative
from digits_nn.core.kernel import Workspace, gradient_descent
from digits_nn.core.losses import classic_cost_of, half_squared_error_of
from digits_nn.core.network import Network, initialise
from digits_nn.core.training import TrainOptions

ALPHAS = (0.05, 0.25, 1.0, 2.5)  # the grid's alphas
LAYERS = [64, 30, 10]
SEED = 0


class BatchedWorkspace:
    """K copies of one network's parameters and buffers, one per alpha, one sample per
    column as in :class:`~digits_nn.core.kernel.Workspace`; ``params[l]`` is
    ``(K, n[l+1], n[l] + 1)``, ``activations[l]`` is ``(K, n[l] + 1, m)`` except the
    shared batch ``activations[0]``."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, alphas) -> None:
        single = Workspace(net, X, Y)
        k, m = len(alphas), X.shape[0]
        self.scales = (np.asarray(alphas, dtype=X.dtype) / m)[:, None, None]
        self.params = [np.repeat(p[None], k, axis=0) for p in single.params]
        self.batch = single.activations[0]
        self.batch_rows = single.batch_rows
        self.activations = [self.batch] + [np.ones((k, *h.shape), h.dtype) for h in
                                           single.activations[1:]]  # fmt: skip
        self.steps = [np.empty_like(p) for p in self.params]
        self.deltas = [np.empty((k, *d.shape), d.dtype) for d in single.deltas]
        self.fprimes = [np.empty_like(d) for d in self.deltas]
        self.targets = single.targets
        self.error = np.empty((k, *single.error.shape), single.error.dtype)
        self.squares = np.empty_like(self.error)
        self.norms = np.empty((k, m), single.norms.dtype)

    @property
    def output(self) -> np.ndarray:
        return self.activations[-1][:, :-1]

    def feed_forward(self) -> None:
        for params, h_in, h_out in zip(self.params, self.activations, self.activations[1:]):
            z = h_out[:, :-1]
            np.matmul(params, h_in, out=z)
            sigmoid(z, out=z)

    def output_error_norms(self) -> np.ndarray:
        np.subtract(self.output, self.targets, out=self.error)
        np.multiply(self.error, self.error, out=self.squares)
        return np.add.reduce(self.squares, axis=1, out=self.norms)

    def descend(self) -> None:
        last = len(self.params) - 1
        delta = self.deltas[last]
        np.multiply(self.error, sigmoid_derivative(self.output, self.fprimes[last]), out=delta)
        delta *= self.scales
        for layer in range(last, -1, -1):
            h_in = self.activations[layer]
            h_in_rows = self.batch_rows if layer == 0 else h_in.swapaxes(1, 2)
            np.matmul(delta, h_in_rows, out=self.steps[layer])
            if layer > 0:
                below = self.deltas[layer - 1]
                np.matmul(self.params[layer][:, :, :-1].swapaxes(1, 2), delta, out=below)
                below *= sigmoid_derivative(h_in[:, :-1], self.fprimes[layer - 1])
                delta = below
            self.params[layer] -= self.steps[layer]


def train_batched(X: np.ndarray, Y: np.ndarray, alphas, iterations: int):
    """The K trained parameter stacks and the K cost curves (both figures)."""
    workspace = BatchedWorkspace(initialise(LAYERS, "uniform", SEED), X, Y, alphas)
    cost = np.empty((len(alphas), iterations))
    classic = np.empty_like(cost)
    with np.errstate(over="ignore"):
        for i in range(iterations):
            workspace.feed_forward()
            norms = workspace.output_error_norms()
            for k in range(len(alphas)):
                # Per configuration, with the standalone loop's own functions, so that
                # each figure is summed exactly as there.
                cost[k, i] = half_squared_error_of(norms[k])
                classic[k, i] = classic_cost_of(norms[k].copy())
            workspace.descend()
    return workspace.params, cost, classic


def train_apart(X: np.ndarray, Y: np.ndarray, alphas, iterations: int):
    results = [
        gradient_descent(
            initialise(LAYERS, "uniform", SEED),
            X,
            Y,
            TrainOptions(alpha=alpha, iterations=iterations),
        )
        for alpha in alphas
    ]
    params = [
        np.stack([np.hstack([r.network.weights[layer], r.network.biases[layer][:, None]])
                  for r in results])
        for layer in range(len(LAYERS) - 1)
    ]  # fmt: skip
    cost = np.stack([r.cost_curve for r in results])
    classic = np.stack([r.classic_cost_curve for r in results])
    return params, cost, classic


def exact(X: np.ndarray, Y: np.ndarray, iterations: int) -> dict[str, bool]:
    """Whether every configuration's weights and both cost curves are bit-identical."""
    batched, apart = train_batched(X, Y, ALPHAS, iterations), train_apart(X, Y, ALPHAS, iterations)
    return {
        "weights": all(np.array_equal(b, a) for b, a in zip(batched[0], apart[0])),
        "cost curves": np.array_equal(batched[1], apart[1]),
        "classic cost curves": np.array_equal(batched[2], apart[2]),
    }


def section_batched(sizes: Sizes) -> tuple[str, dict]:
    X, Y, _ = digits(sizes)
    iterations, k = sizes.iterations, len(ALPHAS)
    timings = measure_alternating(
        {
            "apart": lambda: train_apart(X, Y, ALPHAS, iterations),
            "together": lambda: train_batched(X, Y, ALPHAS, iterations),
        },
        repeats=sizes.repeats,
    )
    apart, together = timings["apart"], timings["together"]
    check_iterations = sizes.accuracy_iterations
    identical = exact(X, Y, check_iterations)
    speedup = apart.median / together.median
    per_config = lambda t: ms(t.median / (k * iterations))  # noqa: E731
    rows = [
        ["apart (K standalone trainings)", ms(apart.median), ms(apart.min), per_config(apart)],
        ["batched (one K-stacked loop)", ms(together.median), ms(together.min),
         per_config(together)],
    ]  # fmt: skip
    verdict = "pays" if speedup >= 1.1 and all(identical.values()) else "does not pay"
    text = [
        f"### h. {k} configurations trained together (alphas {', '.join(map(str, ALPHAS))};"
        f" {'-'.join(map(str, LAYERS))}, {len(X)} rows, seed {SEED}, {iterations} iterations,"
        " one BLAS thread)\n",
        table(["", "median ms", "min ms", "ms per configuration-iteration"], rows),
        "",
        f"**Batched / apart: {speedup:.2f}× faster** ({verdict}: kept only if >= 1.1× and"
        " exact).\n",
        f"Bit-identical to the standalone trainings after {check_iterations} iterations"
        " (np.array_equal, every configuration): "
        + ", ".join(f"{name} {same}" for name, same in identical.items())
        + ".\n",
    ]
    return "\n".join(text), {"speedup": speedup, "exact": all(identical.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args()
    sizes = Sizes.quick() if args.quick else Sizes.full()
    with threadpool_limits(limits=1, user_api="blas"):
        print(section_batched(sizes)[0])


if __name__ == "__main__":
    main()
