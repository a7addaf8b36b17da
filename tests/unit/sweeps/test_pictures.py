"""The best run's pictures, drawn when the sweep ends (``tracking.pictures=best``): the
same bytes the run would have drawn itself, from its folder or from its MLflow run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from digits_nn import config
from digits_nn.pipeline import app
from digits_nn.pipeline.outputs import PICTURES
from digits_nn.sweeps.pictures import draw_best
from digits_nn.tracking.store import Store

OVERRIDES = ["train.iterations=30", "train.validation_size=0.2"]


def run_as_a_child(store: Store, folder: Path, pictures: bool) -> dict:
    """One run placed as a sweep job's; its row of the summary."""
    cfg = config.parse({"train": {"iterations": 30, "validation_size": 0.2}})
    cfg.tracking.uri = store.uri
    outcome = app.run(cfg, app.RunPlace(folder, OVERRIDES, pictures=pictures))
    return {"key": folder.name, "run_id": outcome.run_id, "params": config.flatten(cfg)}


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("reports/plots/*.png"))}


@pytest.mark.parametrize("source", ["folder", "mlflow"])
def test_the_best_runs_pictures_are_the_ones_it_would_have_drawn(
    store: Store, tmp_path: Path, source: str
) -> None:
    drew_its_own = run_as_a_child(store, tmp_path / "own", pictures=True)
    sweep_dir = tmp_path / "sweep"
    best = run_as_a_child(store, sweep_dir / "job", pictures=False)
    assert pngs(sweep_dir / "job") == {}
    assert store.client.list_artifacts(best["run_id"], "plots") == []
    if source == "mlflow":  # the job ran on another machine: its folder is not here
        shutil.rmtree(sweep_dir / "job")

    files = draw_best(sweep_dir, best, store)

    assert sorted(f.name for f in files) == sorted(f"{name}.png" for name in PICTURES)
    assert pngs(sweep_dir / "job") == pngs(tmp_path / "own")
    logged = {a.path for a in store.client.list_artifacts(best["run_id"], "plots")}
    own = {a.path for a in store.client.list_artifacts(drew_its_own["run_id"], "plots")}
    assert logged == own and len(logged) == len(PICTURES)


def test_without_its_model_the_best_run_gets_no_pictures_and_the_sweep_goes_on(
    tmp_path: Path,
) -> None:
    best = {"key": "gone", "run_id": None, "params": config.flatten(config.parse({}))}
    assert draw_best(tmp_path, best, None) == []
