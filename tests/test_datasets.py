"""Each MLflow run records the data it saw as two dataset inputs, `digits-train` and
`digits-test`, whose digest is the run's `data_md5` (split.npz's md5, as in dvc.lock) and
whose source is the DVC path of split.npz; `mlflow.search_runs` can filter on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import mlflow_runs, run
from digits_nn import config, data, pipeline, tracking

SPLIT_PATH = "data/processed/split.npz"
EXPECTED = {("digits-train", "training"), ("digits-test", "testing")}


def datasets_of(run_) -> dict[tuple[str, str], object]:
    """(name, context) -> the mlflow Dataset entity, for each dataset input of a run."""
    found = {}
    for item in run_.inputs.dataset_inputs:
        [context] = [tag.value for tag in item.tags if tag.key == "mlflow.data.context"]
        found[(item.dataset.name, context)] = item.dataset
    return found


def search(store_uri: str, filter_string: str = "") -> list:
    import mlflow

    mlflow.set_tracking_uri(store_uri)
    try:
        return mlflow.search_runs(
            experiment_names=["digits-nn"], filter_string=filter_string, output_format="list"
        )
    finally:
        mlflow.set_tracking_uri(None)


# Slow although it calls the library directly: creating a SQLite MLflow store (its schema
# migrations) takes some 10 s of CPU.
@pytest.mark.slow
def test_a_new_run_records_its_train_and_test_rows_as_datasets(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    split = data.Split(
        rng.normal(size=(30, 64)), rng.normal(size=(20, 64)), np.arange(30) % 10, np.arange(20) % 10
    )
    cfg = config.parse({"tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}})
    store = tracking.open_store(cfg.tracking, tmp_path)
    run_data = pipeline.RunData(split, "0123456789abcdef0123456789abcdef", SPLIT_PATH)
    with pipeline.recording(store, cfg, run_data=run_data) as recorder:
        run_id = recorder.run_id
    # Reopening the run (the evaluate stage does) adds no second pair.
    with pipeline.recording(store, cfg, run_data=run_data, run_id=run_id):
        pass

    [found] = search(store.uri)
    assert found.data.tags["data_md5"] == run_data.md5
    datasets = datasets_of(found)
    assert set(datasets) == EXPECTED and len(found.inputs.dataset_inputs) == 2
    for (name, _), dataset in datasets.items():
        assert dataset.digest == run_data.md5
        assert dataset.source_type == "local"
        assert json.loads(dataset.source) == {"uri": SPLIT_PATH}
        rows = 30 if name == "digits-train" else 20
        assert json.loads(dataset.profile)["features_shape"] == [rows, 64]
    assert search(store.uri, "dataset.name = 'digits-test'") != []
    assert search(store.uri, f"dataset.digest = '{run_data.md5}'") != []
    assert search(store.uri, "dataset.digest = 'something else'") == []


@pytest.mark.slow
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
    assert len(search(store, f"dataset.digest = '{split_md5}'")) == 2
