"""PNG pictures of a run, drawn with matplotlib's Agg backend (no display needed).

matplotlib is imported inside the functions: only the stages that draw pay for it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from digits_nn.artifacts import atomic_path


def pyplot() -> ModuleType:
    """matplotlib's pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_cost_curve(path: str | Path, cost: np.ndarray, classic_cost: np.ndarray) -> None:
    """Both cost figures against the iteration, on a log scale so late progress shows."""
    plt = pyplot()
    iterations = np.arange(1, len(cost) + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(iterations, cost, label="cost (mean ½‖y − h‖², minimised)")
    ax.plot(iterations, classic_cost, label="classic_cost (mean ‖y − h‖)", alpha=0.8)
    ax.set(xlabel="iteration", ylabel="cost", yscale="log", title="Training cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)


def save_confusion_matrix(path: str | Path, confusion: np.ndarray, accuracy: float) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 5), layout="constrained")
    image = ax.imshow(confusion, cmap="Blues")
    labels = np.arange(len(confusion))
    ax.set(
        xticks=labels,
        yticks=labels,
        xlabel="predicted digit",
        ylabel="true digit",
        title=f"Test confusion matrix (accuracy {accuracy:.3f})",
    )
    threshold = confusion.max() / 2
    for (row, col), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if count > threshold else "black"
            ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8)
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        # No timestamp in the metadata, so the same numbers give the same bytes.
        fig.savefig(tmp, dpi=100, metadata={"Software": None})
    pyplot().close(fig)


# The heatmap's rows and columns, and the one swept key its cells may average over.
HEATMAP_AXES = ("train.alpha", "model.hidden_size", "seed")
MAX_PANELS = 16


def save_sweep_heatmap(
    path: str | Path, rows: list[dict], panel_keys: list[str], metric: str = "test_accuracy"
) -> bool:
    """``metric`` over alpha x hidden_size, one panel per value of the other swept keys.

    A cell averages only over seeds, and says how many when more than one: any other
    swept key gets panels of its own, so that no two settings are ever merged. Returns
    False, drawing nothing, when that would take more than ``MAX_PANELS`` panels.
    """

    def panel_of(row: dict) -> tuple[str, ...]:
        given = dict(o.partition("=")[::2] for o in row.get("overrides") or [])
        return tuple(f"{k}={given.get(k, '')}" for k in panel_keys)

    panels = sorted({panel_of(r) for r in rows})
    if len(panels) > MAX_PANELS:
        return False
    plt = pyplot()
    alphas = sorted({r["params"]["train.alpha"] for r in rows})
    hiddens = sorted({r["params"]["model.hidden_size"] for r in rows})
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(1.2 + 0.9 * len(hiddens) * len(panels) + 1.2, 1.5 + 0.55 * len(alphas)),
        layout="constrained",
        squeeze=False,
    )
    image = None
    for ax, panel in zip(axes[0], panels):
        values: dict[tuple[int, int], list[float]] = {}
        for r in rows:
            if panel_of(r) == panel:
                cell = (
                    alphas.index(r["params"]["train.alpha"]),
                    hiddens.index(r["params"]["model.hidden_size"]),
                )
                values.setdefault(cell, []).append(r[metric])
        grid = np.full((len(alphas), len(hiddens)), np.nan)
        for cell, scores in values.items():
            grid[cell] = np.mean(scores)
        image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        for (i, j), scores in values.items():
            label = f"{grid[i, j]:.3f}" + (f"\n(n={len(scores)})" if len(scores) > 1 else "")
            colour = "black" if grid[i, j] > 0.6 else "white"
            ax.text(j, i, label, ha="center", va="center", fontsize=7, color=colour)
        ax.set(
            xticks=range(len(hiddens)),
            xticklabels=hiddens,
            yticks=range(len(alphas)),
            yticklabels=[f"{a:g}" for a in alphas],
            xlabel="model.hidden_size",
            title="\n".join(panel),
        )
    axes[0][0].set_ylabel("train.alpha")
    fig.colorbar(image, ax=axes[0].tolist(), label=metric.replace("_", " "), shrink=0.9)
    _save(fig, path)
    return True


def save_cost_curves(path: str | Path, curves: dict[str, np.ndarray]) -> None:
    """The cost curves of several runs overlaid, on a log scale."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    for label, cost in curves.items():
        ax.plot(np.arange(1, len(cost) + 1), cost, label=label, linewidth=1)
    ax.set(xlabel="iteration", ylabel="cost (mean ½‖y − h‖²)", yscale="log")
    ax.set_title(f"Cost curves of {len(curves)} runs")
    ax.grid(True, which="both", alpha=0.3)
    if len(curves) <= 16:
        ax.legend(fontsize=7)
    _save(fig, path)


def _mosaic(images: np.ndarray, columns: int, fill: float) -> np.ndarray:
    """8x8 images side by side, one pixel of ``fill`` between them: one array, so one
    imshow draws them all (a subplot each costs tens of milliseconds)."""
    rows = max(1, -(-len(images) // columns))
    mosaic = np.full((rows * 9 + 1, columns * 9 + 1), fill, dtype=float)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        mosaic[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = image.reshape(8, 8)
    return mosaic


def save_misclassified(
    path: str | Path,
    pixels: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    limit: int = 60,
) -> None:
    """The test digits the network gets wrong, as 8x8 images labelled true -> predicted."""
    plt = pyplot()
    wrong = np.flatnonzero(actual != predicted)[:limit]
    columns = 10
    rows = max(1, -(-len(wrong) // columns))
    fig, ax = plt.subplots(figsize=(columns * 0.95, rows * 1.05 + 0.6))
    ax.imshow(_mosaic(pixels[wrong], columns, fill=0.0), cmap="gray_r", vmin=0, vmax=16)
    for k, index in enumerate(wrong):
        r, c = divmod(k, columns)
        ax.text(9 * c + 1, 9 * r + 0.9, f"{actual[index]}→{predicted[index]}", fontsize=7,
                color="firebrick", va="bottom", ha="left")  # fmt: skip
    ax.axis("off")
    total = int(np.sum(actual != predicted))
    shown = f" (first {len(wrong)})" if total > len(wrong) else ""
    ax.set_title(f"{total} misclassified test digits{shown}: true → predicted", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def save_first_layer_weights(path: str | Path, weights: np.ndarray) -> None:
    """Each hidden unit's 64 input weights drawn as an 8x8 image: what it looks for.

    Each unit is centred on its own mean: U[0, 1) weights share a large positive
    offset that would otherwise hide the pattern.
    """
    plt = pyplot()
    centred = weights - weights.mean(axis=1, keepdims=True)
    spread = np.abs(centred).max(axis=1, keepdims=True)
    scaled = centred / np.where(spread > 0, spread, 1.0)
    columns = min(10, len(weights))
    rows = -(-len(weights) // columns)
    fig, ax = plt.subplots(figsize=(columns * 0.9, rows * 0.95 + 0.6))
    ax.imshow(_mosaic(scaled, columns, fill=np.nan), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.axis("off")
    ax.set_title("First-layer weights of each hidden unit (red: above its mean)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
