"""Conclusions you can trust, end to end: the scaler fitted on the training rows alone in
a real `dvc exp run`, `sweep=cv` on scikit-learn's own folds with scipy's statistics,
`python -m digits_nn.compare` telling noise from a difference, and `sweep=peers` putting
scikit-learn's peers in the store beside the network, with the same datasets and metrics."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from helpers import datasets_of, dvc, md5, mlflow_runs, run, run_app


def sweep_dir_of(repo: Path, parent) -> Path:
    folder = Path(parent.data.tags["sweep_dir"])
    return folder if folder.is_absolute() else repo / folder


def split_md5(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> str:
    """The md5 of split.npz for these rows, the scaler fitted on the training rows alone,
    computed with scikit-learn and numpy only."""
    import hashlib
    import io

    Xs = StandardScaler().fit(X[train]).transform(X)
    buffer = io.BytesIO()
    np.savez(buffer, X_train=Xs[train], X_test=Xs[test], y_train=y[train], y_test=y[test])
    return hashlib.md5(buffer.getvalue()).hexdigest()


def corrected_interval(values: np.ndarray, ratio: float) -> tuple[float, float]:
    """scipy's t interval with Nadeau and Bengio's corrected standard error."""
    n = len(values)
    se = scipy_stats.sem(values) * math.sqrt((1 / n + ratio) * n)
    return scipy_stats.t.interval(0.95, n - 1, loc=np.mean(values), scale=se)


def test_dvc_exp_run_fits_the_scaler_on_the_training_rows_alone(reproduced: Path) -> None:
    """The saved scaling equals one fitted on the training rows alone, the validation
    rows held out too; the classic outputs before it were the tutorial's (all rows)."""
    raw = np.load(reproduced / "data/raw/digits.npz")
    X, y = raw["X"], raw["y"]
    classic = np.load(reproduced / "data/interim/scaled.npz")
    np.testing.assert_array_equal(classic["mean"], StandardScaler().fit(X).mean_)

    dvc(
        "exp", "run", "-S", "data.scaler_rows=train", "-S", "train.optimizer=sgd",
        "-S", "train.iterations=3", "-S", "train.validation_size=0.2", cwd=reproduced,
    )  # fmt: skip
    scaled = np.load(reproduced / "data/interim/scaled.npz")
    split = np.load(reproduced / "data/processed/split.npz")
    train, test = train_test_split(np.arange(len(y)), test_size=0.4, random_state=0)
    fit, _ = train_test_split(
        np.arange(len(train)), test_size=0.2, random_state=0, stratify=y[train]
    )
    alone = StandardScaler().fit(X[train[fit]])
    np.testing.assert_array_equal(scaled["mean"], alone.mean_)
    np.testing.assert_array_equal(scaled["scale"], alone.scale_)
    np.testing.assert_array_equal(split["X_test"], alone.transform(X[test]))
    np.testing.assert_array_equal(split["y_test"], y[test])


def test_cv_sweep_runs_sklearns_folds_and_summarises_them_as_scipy_does(clone: Path) -> None:
    run_app(
        clone, "sweep=cv", "hydra.launcher.n_jobs=2", "data.folds=3", "data.repeat=range(2)",
        "data.scaler_rows=train", "train.iterations=20,40", "train.alpha=2.5",
    )  # fmt: skip
    client, runs = mlflow_runs(clone)
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "FINISHED" and len(children) == 12

    # Every fold is a child run on the rows of scikit-learn's own splitter.
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=0)
    expected = {
        divmod(number, 3): split_md5(X.astype(np.float64), y.astype(np.int64), train, test)
        for number, (train, test) in enumerate(splitter.split(X, y))
    }
    accuracy: dict[str, list[float]] = {"20": [], "40": []}
    for child in sorted(children, key=lambda r: r.info.run_name):
        params = child.data.params
        fold = (int(params["data.repeat"]), int(params["data.fold"]))
        assert child.data.tags["data_md5"] == expected[fold], child.info.run_name
        assert {d.digest for d in datasets_of(child).values()} == {expected[fold]}
        accuracy[params["train.iterations"]].append(child.data.metrics["test_accuracy"])

    # Budgets still share one training inside a fold: 6 launches for 12 configurations.
    sweep_dir = sweep_dir_of(clone, parent)
    jobs = list(csv.DictReader((sweep_dir / "sweep_summary.csv").open()))
    assert sum(bool(j["shared_training"]) for j in jobs) == 12
    assert len({j["shared_training"] for j in jobs}) == 6

    # Each configuration's mean, sd and corrected interval, as scipy computes them.
    rows = csv.DictReader((sweep_dir / "sweep_configurations.csv").open())
    table = {r["configuration"]: r for r in rows}
    metrics = client.get_run(parent.info.run_id).data.metrics
    for budget, values in accuracy.items():
        values = np.array(values)
        row = next(r for key, r in table.items() if f"train.iterations={budget}" in key)
        low, high = corrected_interval(values, 1 / 2)
        assert float(row["mean"]) == pytest.approx(values.mean())
        assert float(row["std"]) == pytest.approx(values.std(ddof=1))
        assert (float(row["ci95_low"]), float(row["ci95_high"])) == (
            pytest.approx(low),
            pytest.approx(high),
        )
        label = next(k for k in metrics if k.endswith("/mean") and f":{budget}" in k)
        assert metrics[label] == pytest.approx(values.mean())
    assert metrics["best_mean"] == pytest.approx(max(float(r["mean"]) for r in table.values()))
    assert "Configurations" in (sweep_dir / "sweep_summary.md").read_text()


def compare(repo: Path, a: str, b: str, tmp_path: Path) -> tuple[str, dict]:
    out = tmp_path / "compare.json"
    result = run([sys.executable, "-m", "digits_nn.compare", a, b, "--json", str(out)], repo)
    return result.stdout, json.loads(out.read_text())


def test_compare_tells_a_real_difference_from_noise_as_scipy_does(
    clone: Path, tmp_path: Path
) -> None:
    # A real difference: the RBF SVC against a logistic regression, on the same folds.
    text, real = compare(clone, "peer=logistic data.scaler_rows=train", "peer=svc", tmp_path)
    assert real["distinguishable"] and "peer=svc is better than" in text.splitlines()[-1]

    # Side A, computed here with scikit-learn alone: the same folds, the same accuracies.
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    splitter = RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=0)
    alone = {}
    for number, (train, test) in enumerate(splitter.split(X, y)):
        scaler = StandardScaler().fit(X[train])
        model = LogisticRegression(max_iter=5000).fit(scaler.transform(X[train]), y[train])
        alone[divmod(number, 5)] = model.score(scaler.transform(X[test]), y[test])
    got = {(r["data.repeat"], r["data.fold"]): r["accuracy"] for r in real["a"]["resamples"]}
    assert got == pytest.approx(alone)

    # The test's figures, from scipy's paired t-test with the correction.
    for result in (real, compare(clone, "peer=mlp data.scaler_rows=train",
                                 "peer=mlp data.scaler_rows=all", tmp_path)[1]):  # fmt: skip
        key = lambda r: (r["data.repeat"], r["data.fold"])  # noqa: E731
        a = np.array([r["accuracy"] for r in sorted(result["a"]["resamples"], key=key)])
        b = np.array([r["accuracy"] for r in sorted(result["b"]["resamples"], key=key)])
        plain = scipy_stats.ttest_rel(b, a)
        t = plain.statistic / math.sqrt((1 / 10 + 1 / 4) * 10)
        assert result["paired"]["t"] == pytest.approx(t)
        assert result["paired"]["p"] == pytest.approx(2 * scipy_stats.t.sf(abs(t), 9))
    # Noise: fitting the scaler on every row or on the training rows changes the MLP by a
    # row here and there, and the test says so.
    assert not result["distinguishable"] and np.any(a != b)
    assert "indistinguishable" in result["verdict"]


def test_compare_refuses_a_bad_side_in_one_line(clone: Path) -> None:
    result = run(
        [sys.executable, "-m", "digits_nn.compare", "train.alpha=-1", "peer=svc"],
        clone,
        check=False,
    )
    assert result.returncode == 2
    assert "train.alpha=-1.0 is not allowed" in result.stderr and "Traceback" not in result.stderr


def test_peers_run_on_the_same_folds_with_the_same_datasets_and_metrics(clone: Path) -> None:
    run_app(
        clone, "sweep=peers", "hydra.launcher.n_jobs=2", "data.folds=2", "data.repeat=range(1)",
        "experiment=modern", "train.iterations=3",
    )  # fmt: skip
    client, runs = mlflow_runs(clone)
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "FINISHED" and len(children) == 10
    by_fold: dict[str, dict[str, object]] = {}
    for child in children:
        assert child.info.status == "FINISHED"
        name = child.data.params.get("peer", "network")
        by_fold.setdefault(child.data.params["data.fold"], {})[name] = child
    for fold, named in by_fold.items():
        assert set(named) == {"network", "svc", "mlp", "logistic", "knn"}, fold
        ours = named.pop("network")
        assert "baseline" not in ours.data.tags
        ours_inputs = {k: (d.digest, d.source) for k, d in datasets_of(ours).items()}
        for name, peer in named.items():
            assert peer.data.tags["baseline"] == "true" and peer.data.tags["peer"] == name
            assert {k: (d.digest, d.source) for k, d in datasets_of(peer).items()} == ours_inputs
            assert {"test_accuracy", "train_accuracy"} <= set(peer.data.metrics)
            assert set(peer.data.metrics) <= set(ours.data.metrics)
            assert peer.data.params["data.scaler_rows"] == "train"
            files = {a.path for a in client.list_artifacts(peer.info.run_id)}
            assert {"metrics.json", "classes.json", "predictions.csv"} <= files
    table = (sweep_dir_of(clone, parent) / "sweep_configurations.csv").read_text()
    assert all(f"peer={name}" in table for name in ("svc", "mlp", "logistic", "knn"))


def test_a_dvc_stage_refuses_a_peer_and_nothing_is_lost(reproduced: Path) -> None:
    before = md5(reproduced / "models/model.npz")
    result = dvc("exp", "run", "-S", "peer=svc", cwd=reproduced, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "peer='svc' is not allowed in the DVC pipeline" in output
    # DVC deleted the refused stage's outputs; the cache gives them back.
    run(["git", "checkout", "--", "params.yaml"], cwd=reproduced)
    dvc("checkout", cwd=reproduced)
    assert md5(reproduced / "models/model.npz") == before


def test_compare_takes_two_revisions_params(reproduced: Path, tmp_path: Path) -> None:
    """rev:REV is the configuration a commit or a `dvc exp` recorded in params.yaml."""
    params = reproduced / "params.yaml"
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    params.write_text(params.read_text().replace("peer: null", "peer: logistic"))
    run([*git, "commit", "-qam", "logistic"], reproduced)
    params.write_text(params.read_text().replace("peer: logistic", "peer: svc"))
    dvc("exp", "save", "-n", "with-svc", "-f", cwd=reproduced)
    text, result = compare(reproduced, "rev:HEAD", "rev:with-svc", tmp_path)
    assert result["a"]["label"] == "rev:HEAD" and result["b"]["label"] == "rev:with-svc"
    assert result["distinguishable"] and "rev:with-svc is better than rev:HEAD" in text
    bad = run(
        [sys.executable, "-m", "digits_nn.compare", "rev:nope", "rev:HEAD"], reproduced, check=False
    )
    assert bad.returncode == 2 and "rev:nope: no such git revision" in bad.stderr
