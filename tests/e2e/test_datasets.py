"""Every MLflow run, from the DVC stages or from run.py, records the data it saw as two
dataset inputs, `digits-train` and `digits-test`, whose digest is the run's `data_md5`
(split.npz's md5, as in dvc.lock) and whose source is the DVC path of split.npz.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import datasets_of, mlflow_runs, run, search_runs

SPLIT_PATH = "data/processed/split.npz"
EXPECTED = {("digits-train", "training"), ("digits-test", "testing")}


def test_every_dvc_and_run_py_run_has_two_datasets_whose_digest_is_its_data_md5(
    reproduced: Path,
) -> None:
    # A run.py sweep over two seeds beside the DVC stages' run: three runs, two splits.
    command = ["python", "pipelines/run.py", "-m", "seed=0,1", "train.iterations=50"]
    run(command, cwd=reproduced)
    _, runs = mlflow_runs(reproduced)
    children = [r for r in runs if "data_md5" in r.data.tags]
    assert len(children) == 3, [r.info.run_name for r in runs]
    for child in children:
        datasets = datasets_of(child)
        assert set(datasets) == EXPECTED, child.info.run_name
        assert {d.digest for d in datasets.values()} == {child.data.tags["data_md5"]}
        assert {json.loads(d.source)["uri"] for d in datasets.values()} == {SPLIT_PATH}
    assert len({r.data.tags["data_md5"] for r in children}) == 2
    # The DVC run's digest is dvc.lock's md5 of split.npz; so is seed 0's in run.py.
    lock = (reproduced / "dvc.lock").read_text()
    store = f"sqlite:///{reproduced / 'mlflow.db'}"
    [split_md5] = {r.data.tags["data_md5"] for r in children if r.data.tags["data_md5"] in lock}
    assert len(search_runs(store, f"dataset.digest = '{split_md5}'")) == 2
