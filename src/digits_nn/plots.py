"""PNG pictures of a run, drawn with matplotlib's Agg backend (no display needed).

matplotlib is imported inside the functions: only the stages that draw pay for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_nn.artifacts import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_cost_curve(path: str | Path, cost: np.ndarray, classic_cost: np.ndarray) -> None:
    """Both cost figures against the iteration, on a log scale so late progress shows."""
    plt = _pyplot()
    iterations = np.arange(1, len(cost) + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(iterations, cost, label="cost (mean ½‖y − h‖², minimised)")
    ax.plot(iterations, classic_cost, label="classic_cost (mean ‖y − h‖)", alpha=0.8)
    ax.set(xlabel="iteration", ylabel="cost", yscale="log", title="Training cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)


def save_confusion_matrix(path: str | Path, confusion: np.ndarray, accuracy: float) -> None:
    plt = _pyplot()
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
    _pyplot().close(fig)
