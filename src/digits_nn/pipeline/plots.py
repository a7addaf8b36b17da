"""PNG pictures of a run, drawn with matplotlib's Agg backend (no display needed).

matplotlib is imported inside the functions: only the stages that draw pay for it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from digits_nn.data.files import atomic_path


def pyplot() -> ModuleType:
    """matplotlib's pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(width: float, height: float):
    """A bare figure, in inches, outside pyplot's registry: nothing to close, and no
    pyplot import or figure manager to pay for on every run."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


# The per-run pictures use fixed geometry (axes placed in figure fractions) instead of a
# layout engine: constrained or tight layout measures every text once more before the
# real draw, which cost about half of each picture's time.
DPI = 100


def save_cost_curve(path: str | Path, cost: np.ndarray, classic_cost: np.ndarray) -> None:
    """Both cost figures against the iteration, on a log scale so late progress shows."""
    iterations = np.arange(1, len(cost) + 1)
    fig = figure(7, 4.2)
    ax = fig.add_axes((0.09, 0.12, 0.885, 0.8))
    ax.plot(iterations, cost, label="cost (mean ½‖y − h‖², minimised)")
    ax.plot(iterations, classic_cost, label="classic_cost (mean ‖y − h‖)", alpha=0.8)
    ax.set(xlabel="iteration", ylabel="cost", yscale="log", title="Training cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _write_png(fig, path)


def save_confusion_matrix(path: str | Path, confusion: np.ndarray, accuracy: float) -> None:
    fig = figure(5.6, 5)
    ax = fig.add_axes((0.09, 0.09, 0.75, 0.84))
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
    fig.colorbar(image, cax=fig.add_axes((0.86, 0.17, 0.025, 0.68)))
    _write_png(fig, path)


def _write_png(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        # No timestamp in the metadata, so the same numbers give the same bytes.
        fig.savefig(tmp, dpi=DPI, metadata={"Software": None})


def _save(fig, path: str | Path) -> None:
    _write_png(fig, path)
    pyplot().close(fig)


# The heatmap's rows and columns (alpha; the hidden layers, one width or several), and
# the one swept key its cells may average over.
HEATMAP_AXES = ("train.alpha", "model.hidden_size", "model.hidden_sizes", "seed")
MAX_PANELS = 16


def heatmap_cells(
    rows: list[dict], panel_keys: list[str], metric: str
) -> dict[tuple[str, ...], dict[tuple[float, int], list[float]]]:
    """panel -> (alpha, hidden layer widths) -> the scores of that cell, one per seed.

    A panel is one value of every key in ``panel_keys`` (the swept keys other than the
    axes and the seed; each row holds its own value of each, as the sweep gave it), so
    a cell only ever gathers jobs that differ in their seed.
    """
    cells: dict[tuple[str, ...], dict[tuple[float, int], list[float]]] = {}
    for row in rows:
        panel = tuple(f"{k}={row.get(k, '')}" for k in panel_keys)
        cell = (row["params"]["train.alpha"], hidden_layers(row["params"]))
        cells.setdefault(panel, {}).setdefault(cell, []).append(row[metric])
    return cells


def hidden_layers(params: dict) -> tuple[int, ...]:
    """The widths of a job's hidden layers, from its params: ``hidden_sizes`` where set,
    else the one ``hidden_size`` (the heatmap's columns, in this order)."""
    return tuple(params.get("model.hidden_sizes") or [params["model.hidden_size"]])


def save_sweep_heatmap(
    path: str | Path, rows: list[dict], panel_keys: list[str], metric: str = "test_accuracy"
) -> bool:
    """``metric`` over alpha x hidden layers, one panel per value of the other swept keys.

    A cell averages only over seeds, and says how many when more than one: any other
    swept key gets panels of its own, so that no two settings are ever merged. Returns
    False, drawing nothing, when that would take more than ``MAX_PANELS`` panels.
    """
    cells = heatmap_cells(rows, panel_keys, metric)
    if len(cells) > MAX_PANELS:
        return False
    plt = pyplot()
    alphas = sorted({r["params"]["train.alpha"] for r in rows})
    hiddens = sorted({hidden_layers(r["params"]) for r in rows}, key=lambda h: (len(h), h))
    fig, axes = plt.subplots(
        1,
        len(cells),
        figsize=(1.2 + 0.9 * len(hiddens) * len(cells) + 1.2, 1.5 + 0.55 * len(alphas)),
        layout="constrained",
        squeeze=False,
    )
    image = None
    for ax, (panel, panel_cells) in zip(axes[0], sorted(cells.items())):
        values = {
            (alphas.index(alpha), hiddens.index(hidden)): scores
            for (alpha, hidden), scores in panel_cells.items()
        }
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
            xticklabels=["-".join(map(str, h)) for h in hiddens],
            yticks=range(len(alphas)),
            yticklabels=[f"{a:g}" for a in alphas],
            xlabel="hidden layers",
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


def _mosaic_figure(mosaic: np.ndarray, title: str, cmap: str, limits: tuple[float, float]):
    """A figure that is the mosaic itself, 9 pixels of mosaic to the inch-tenth grid the
    pictures always had, with the title in a strip above it."""
    columns = (mosaic.shape[1] - 1) // 9
    rows = (mosaic.shape[0] - 1) // 9
    width, height, strip = columns * 0.95, rows * 1.0 + 0.1, 0.45
    fig = figure(width, height + strip)
    ax = fig.add_axes((0.01, 0.01, 0.98, (height - 0.02) / (height + strip)))
    ax.imshow(mosaic, cmap=cmap, vmin=limits[0], vmax=limits[1])
    ax.axis("off")
    fig.text(0.5, 1 - 0.5 * strip / (height + strip), title, ha="center", va="center",
             fontsize=10)  # fmt: skip
    return fig, ax


def save_misclassified(
    path: str | Path,
    pixels: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    limit: int = 60,
) -> None:
    """The test digits the network gets wrong, as 8x8 images labelled true -> predicted."""
    wrong = np.flatnonzero(actual != predicted)[:limit]
    columns = 10
    total = int(np.sum(actual != predicted))
    shown = f" (first {len(wrong)})" if total > len(wrong) else ""
    fig, ax = _mosaic_figure(
        _mosaic(pixels[wrong], columns, fill=0.0),
        f"{total} misclassified test digits{shown}: true → predicted",
        "gray_r",
        (0, 16),
    )
    for k, index in enumerate(wrong):
        r, c = divmod(k, columns)
        ax.text(9 * c + 1, 9 * r + 0.9, f"{actual[index]}→{predicted[index]}", fontsize=7,
                color="firebrick", va="bottom", ha="left")  # fmt: skip
    _write_png(fig, path)


def save_first_layer_weights(path: str | Path, weights: np.ndarray) -> None:
    """Each hidden unit's 64 input weights drawn as an 8x8 image: what it looks for.

    Each unit is centred on its own mean: U[0, 1) weights share a large positive
    offset that would otherwise hide the pattern.
    """
    centred = weights - weights.mean(axis=1, keepdims=True)
    spread = np.abs(centred).max(axis=1, keepdims=True)
    scaled = centred / np.where(spread > 0, spread, 1.0)
    fig, _ = _mosaic_figure(
        _mosaic(scaled, min(10, len(weights)), fill=np.nan),
        "First-layer weights of each hidden unit (red: above its mean)",
        "RdBu_r",
        (-1, 1),
    )
    _write_png(fig, path)
