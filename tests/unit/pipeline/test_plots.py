"""The run's four pictures: valid PNGs of a fixed size, the same bytes for the same
numbers (they are DVC outputs), and different bytes when what they show changes; and a
sweep's heatmap, which never merges two settings into one cell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_nn.pipeline import plots
from helpers import sweep_record

rng = np.random.RandomState(0)
COST = np.geomspace(4.0, 0.03, 3000)
PIXELS = rng.randint(0, 17, size=(60, 64)).astype(float)
ACTUAL = np.arange(60) % 10
PREDICTED = np.where(np.arange(60) % 7 == 0, (ACTUAL + 1) % 10, ACTUAL)
CONFUSION = np.bincount(ACTUAL * 10 + PREDICTED, minlength=100).reshape(10, 10)
WEIGHTS = rng.random_sample((30, 64))

# name -> (draw it, draw it with one thing changed, expected size in pixels)
PICTURES: dict[str, tuple[Callable[[Path], None], Callable[[Path], None], tuple[int, int]]] = {
    "cost": (
        lambda p: plots.save_cost_curve(p, COST, np.sqrt(COST)),
        lambda p: plots.save_cost_curve(p, COST * 1.5, np.sqrt(COST)),
        (700, 420),
    ),
    "confusion": (
        lambda p: plots.save_confusion_matrix(p, CONFUSION, 0.9),
        lambda p: plots.save_confusion_matrix(p, CONFUSION.T, 0.9),
        (560, 500),
    ),
    "misclassified": (
        lambda p: plots.save_misclassified(p, PIXELS, ACTUAL, PREDICTED),
        lambda p: plots.save_misclassified(p, PIXELS, ACTUAL, (PREDICTED + 1) % 10),
        (950, 155),
    ),
    "weights": (
        lambda p: plots.save_first_layer_weights(p, WEIGHTS),
        lambda p: plots.save_first_layer_weights(p, WEIGHTS[::-1]),
        (950, 355),
    ),
}


@pytest.mark.parametrize("name", PICTURES)
def test_a_picture_is_the_same_bytes_for_the_same_numbers(name: str, tmp_path: Path) -> None:
    draw, _, size = PICTURES[name]
    draw(tmp_path / "a.png")
    draw(tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with Image.open(tmp_path / "a.png") as image:
        assert image.format == "PNG"
        assert image.size == size


@pytest.mark.parametrize("name", PICTURES)
def test_a_picture_changes_with_what_it_shows(name: str, tmp_path: Path) -> None:
    draw, draw_changed, _ = PICTURES[name]
    draw(tmp_path / "a.png")
    draw_changed(tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


def test_pictures_are_drawn_without_pyplot(tmp_path: Path) -> None:
    """pyplot keeps every figure it made until it is closed: the per-run pictures make
    bare figures, so a long-lived worker drawing many runs holds none of them."""
    pyplot = plots.pyplot()
    before = pyplot.get_fignums()
    for draw, _, _ in PICTURES.values():
        draw(tmp_path / "p.png")
    assert pyplot.get_fignums() == before


# Averaging over anything but seeds mixes configurations: two hidden_sizes in one cell
# would be drawn as their mean ("0.460 (n=2)"), under a hidden_size they do not use.
def test_the_heatmap_averages_over_seeds_only(tmp_path: Path) -> None:
    def row(test: float, seed: str, **params) -> dict:
        record = sweep_record("0.1", test)
        del record["params"]["model.hidden_size"]
        return {**record, "params": {**record["params"], **params}, "seed": seed}

    rows = [
        row(0.5647, "0", **{"model.hidden_sizes": [5]}),
        row(0.3561, "0", **{"model.hidden_sizes": [60]}),
        row(0.3000, "1", **{"model.hidden_sizes": [60]}),
        row(0.2000, "0", **{"model.hidden_sizes": [60, 10]}),
        row(0.9000, "0", **{"model.hidden_size": 30, "model.hidden_sizes": None}),
    ]
    cells = plots.heatmap_cells(rows, [], "test_accuracy")
    assert cells == {
        (): {
            (0.1, (5,)): [0.5647],
            (0.1, (60,)): [0.3561, 0.3000],
            (0.1, (60, 10)): [0.2000],
            (0.1, (30,)): [0.9000],
        }
    }
    assert "model.hidden_sizes" in plots.HEATMAP_AXES  # an axis, not a panel
    assert plots.save_sweep_heatmap(tmp_path / "h.png", rows, [])
    many = [{**sweep_record("0.1", 0.5), "seed": "0", "l2": str(i)} for i in range(17)]
    assert not plots.save_sweep_heatmap(tmp_path / "none.png", many, ["l2"])
    assert not (tmp_path / "none.png").exists()
