"""A run whose config names a scikit-learn peer (``peer=...``) instead of the network:
what ``peer_and_record`` fits, writes and records in a real store, with and without
validation rows, and the DVC stages' one-line refusal of such a config (``refuse_peer``).

The expected figures come from scikit-learn's own estimator and splitter, fitted here
on the run's rows, not from the pipeline's helpers.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from digits_nn.config import PEERS, Config, parse
from digits_nn.errors import ConfigError
from digits_nn.pipeline.evaluation import Evaluation
from digits_nn.pipeline.prepared import PreparedData, prepare
from digits_nn.pipeline.recording import new_run
from digits_nn.pipeline.steps import RunContext, peer_and_record, refuse_peer
from digits_nn.tracking.store import Store
from helpers import tiny_run_data

# The cheapest peer to fit: a few hundredths of a second on the whole training split,
# on the run's standardised pixels as they are (no pixel map to redo here).
PEER = "logistic"
LABEL = "LogisticRegression(max_iter=5000)"

# What every peer's run logs of the data section, for the default data config: the
# network's sections play no part in a peer's run, so none of them is there.
DATA_PARAMS = {
    "data.test_size": "0.4",
    "data.scaler_rows": "all",
    "data.scaling": "per_pixel",
    "data.augment.copies": "0",
    "data.augment.rotation": "0.0",
    "data.augment.shift": "0.0",
    "data.augment.zoom": "0.0",
}


def fitted_alone(X: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """The peer's estimator, as scikit-learn makes it, fitted on ``X``; one BLAS thread,
    as the pipeline fits it, so that both round alike."""
    with threadpool_limits(limits=1, user_api="blas"):
        return LogisticRegression(max_iter=5000).fit(X, y)


def accuracy(estimator: LogisticRegression, X: np.ndarray, y: np.ndarray) -> float:
    with threadpool_limits(limits=1, user_api="blas"):
        return float(np.mean(estimator.predict(X) == y))


def record_peer(
    store: Store, cfg: Config, data: PreparedData, folder: Path
) -> tuple[tuple[Evaluation, float | None], str, Path]:
    """``peer_and_record`` in a new run of ``store``, writing under ``folder/out`` and
    given ``folder/params.yaml``: what it returned, the run's id and the outputs' root."""
    params_file = folder / "params.yaml"
    params_file.write_text(f"peer: {cfg.peer}\n")
    root = folder / "out"
    with new_run(store, cfg, tiny_run_data()) as run:
        returned = peer_and_record(RunContext(cfg, run, cfg.paths.under(root), params_file), data)
    return returned, str(run.run_id), root


def written(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def logged_files(store: Store, run_id: str) -> set[str]:
    top = store.client.list_artifacts(run_id)
    return {a.path for a in top if not a.is_dir} | {
        a.path
        for folder in top
        if folder.is_dir
        for a in store.client.list_artifacts(run_id, folder.path)
    }


# ---- without validation rows ---------------------------------------------------------------


def test_a_peer_fitted_on_every_training_row_logs_its_two_accuracies_and_no_validation(
    store: Store, tmp_path: Path
) -> None:
    cfg = parse({"peer": PEER})
    data = prepare(cfg)
    split = data.split
    alone = fitted_alone(split.X_train, split.y_train)
    expected = {
        "test_accuracy": accuracy(alone, split.X_test, split.y_test),
        "train_accuracy": accuracy(alone, split.X_train, split.y_train),
    }

    (evaluation, validation), run_id, _ = record_peer(store, cfg, data, tmp_path)

    assert validation is None
    assert evaluation.test_accuracy == expected["test_accuracy"]
    assert evaluation.train_accuracy == expected["train_accuracy"]
    np.testing.assert_array_equal(evaluation.test_predictions, alone.predict(split.X_test))
    logged = store.client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.metrics == expected
    # The seed, the data section and the peer: the params that act on a peer's run.
    assert logged.data.params == {
        "seed": "0",
        **DATA_PARAMS,
        "peer": PEER,
        "peer.estimator": LABEL,
        "peer.inputs": "standardised",
    }


def test_a_peer_runs_files_are_its_reports_and_two_pictures_logged_as_written(
    store: Store, tmp_path: Path
) -> None:
    cfg = parse({"peer": PEER})
    data = prepare(cfg)
    (evaluation, _), run_id, root = record_peer(store, cfg, data, tmp_path)

    # No model, cost curve, platform or weights: a peer has no network to describe.
    assert written(root) == [
        "reports/classes.json",
        "reports/metrics.json",
        "reports/plots/confusion.png",
        "reports/plots/misclassified.png",
        "reports/predictions.csv",
    ]
    reports = root / "reports"
    assert json.loads((reports / "metrics.json").read_text()) == {
        "test_accuracy": evaluation.test_accuracy,
        "train_accuracy": evaluation.train_accuracy,
    }
    assert json.loads((reports / "classes.json").read_text()) == evaluation.per_class
    with (reports / "predictions.csv").open() as handle:
        rows = [(int(r["actual"]), int(r["predicted"])) for r in csv.DictReader(handle)]
    assert rows == list(zip(data.split.y_test.tolist(), evaluation.test_predictions.tolist()))

    # The reports and the params file at the run's top, the pictures under plots/, each
    # the very bytes written.
    assert logged_files(store, run_id) == {
        "params.yaml",
        "metrics.json",
        "classes.json",
        "predictions.csv",
        "plots/confusion.png",
        "plots/misclassified.png",
    }
    copy = Path(store.client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    for name in ("metrics.json", "classes.json", "predictions.csv"):
        assert (copy / name).read_bytes() == (reports / name).read_bytes(), name
    for name in ("confusion.png", "misclassified.png"):
        assert (copy / "plots" / name).read_bytes() == (reports / "plots" / name).read_bytes()
    assert (copy / "params.yaml").read_text() == f"peer: {PEER}\n"


def test_a_peer_run_says_which_estimator_it_fits_and_its_test_accuracy(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = parse({"peer": PEER})
    with caplog.at_level(logging.INFO, logger="digits_nn.pipeline.steps"):
        (evaluation, _), _, _ = record_peer(store, cfg, prepare(cfg), tmp_path)
    said = [r.getMessage() for r in caplog.records if r.name == "digits_nn.pipeline.steps"]
    assert said == [
        f"fitting the peer {LABEL}",
        f"peer {PEER}: test accuracy {evaluation.test_accuracy:.4f}",
    ]


# ---- with validation rows ------------------------------------------------------------------


# A seed other than 0: the split and the validation rows must both follow the run's seed.
def test_with_validation_rows_a_peer_fits_on_the_rest_and_logs_their_accuracy(
    store: Store, tmp_path: Path
) -> None:
    seed, size = 3, 0.2
    cfg = parse({"seed": seed, "peer": PEER, "train": {"validation_size": size}})
    data = prepare(cfg)
    split = data.split
    fit, held = train_test_split(
        np.arange(len(split.y_train)), test_size=size, random_state=seed, stratify=split.y_train
    )
    alone = fitted_alone(split.X_train[fit], split.y_train[fit])
    expected = {
        "test_accuracy": accuracy(alone, split.X_test, split.y_test),
        # Measured on the rows fitted on, as a network's train accuracy is.
        "train_accuracy": accuracy(alone, split.X_train[fit], split.y_train[fit]),
        "validation_accuracy": accuracy(alone, split.X_train[held], split.y_train[held]),
    }

    (evaluation, validation), run_id, root = record_peer(store, cfg, data, tmp_path)

    assert validation == expected["validation_accuracy"]
    assert evaluation.test_accuracy == expected["test_accuracy"]
    assert evaluation.train_accuracy == expected["train_accuracy"]
    logged = store.client.get_run(run_id)
    assert logged.data.metrics == expected
    assert json.loads((root / "reports/metrics.json").read_text()) == expected
    assert logged.data.params == {
        "seed": str(seed),
        **DATA_PARAMS,
        "peer": PEER,
        "peer.estimator": LABEL,
        "peer.inputs": "standardised",
        "train.validation_size": str(size),
    }


# ---- the DVC stages ------------------------------------------------------------------------


@pytest.mark.parametrize("peer", PEERS)
def test_the_dvc_stages_refuse_a_peer_in_one_line_saying_where_to_train_it(peer: str) -> None:
    with pytest.raises(ConfigError) as refused:
        refuse_peer(parse({"peer": peer}))
    assert str(refused.value) == (
        f"peer='{peer}' is not allowed in the DVC pipeline: null (the network). Train a peer"
        f" with `python pipelines/run.py peer={peer}` or `sweep=peers`."
    )


def test_the_dvc_stages_take_the_network() -> None:
    assert refuse_peer(parse({})) is None
