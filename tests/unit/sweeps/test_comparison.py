"""The paired comparison behind ``python -m digits_nn.compare``, in this process and fast.

Checked here: which resamples both sides are measured on (``fold_resamples``, a sweep
side's own), how each kind of side is read (a sweep directory's records, a revision's
``params.yaml``, overrides of ``conf/``) and refused in one line, how a configuration is
trained and scored on one resample, the paired test of B against A and the report
(``Result.lines``, ``Result.details``) with its figures checked against scipy, and
``run`` putting it together. Trainings are a few iterations of a small network, or a
nearest-neighbours peer.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from omegaconf import DictConfig, OmegaConf
from scipy import stats as scipy_stats

from digits_nn import config
from digits_nn.errors import ConfigError
from digits_nn.pipeline import peers
from digits_nn.pipeline.fit import accuracy_on_test, fit
from digits_nn.pipeline.prepared import prepare
from digits_nn.sweeps import comparison
from digits_nn.sweeps.comparison import Side
from digits_nn.sweeps.protocol import JOBS_FILE, job_key
from digits_nn.sweeps.records import write_jobs, write_record
from helpers import ROOT, dvc, task_config

# A training small enough to run dozens of times: what is checked is where it runs.
TINY = ("train.iterations=2", "model.hidden_size=8")
# 3 folds, so each resample's n_test / n_train is 1 / 2.
FOLDS = 3


def key(fold: int, repeat: int, seed: int = 0) -> tuple[Any, ...]:
    """A resample as ``resamples.RESAMPLE_PARAMS`` values: a fold of the 3-fold split."""
    return (FOLDS, fold, repeat, seed, 0.4)


# ---- sweep directories, written as a sweep writes them ---------------------------------


@functools.cache
def folded_params(configuration: tuple[str, ...]) -> dict[str, Any]:
    """A configuration's params on the 3-fold split, as its jobs flatten them."""
    return config.flatten(config.parse(task_config(f"data.folds={FOLDS}", *configuration)))


def fold_job(configuration: list[str], fold: int, repeat: int, test: float | None) -> dict:
    """A `sweep=cv` job's record: its params are its composed config's, flattened."""
    overrides = [*configuration, f"data.fold={fold}", f"data.repeat={repeat}", "sweep=cv"]
    record: dict[str, Any] = {"key": job_key(overrides), "overrides": overrides}
    if test is None:
        return record | {"status": "FAILED", "error": "ConfigError: refused"}
    params = {**folded_params(tuple(configuration)), "data.fold": fold, "data.repeat": repeat}
    # The validation accuracy differs, so that taking it instead would show.
    return record | {
        "status": "FINISHED",
        "test_accuracy": test,
        "validation_accuracy": test - 0.5,
        "run_id": None,
        "params": params,
        "cost": [1.0, 0.5],
    }


def write_sweep(folder: Path, jobs: list[dict]) -> Path:
    """``jobs``' records and the sweep's list of them, in ``folder``."""
    for record in jobs:
        write_record(folder, record)
    write_jobs(folder, [record["key"] for record in jobs])
    return folder


# Two configurations on 2 repeats of 3 folds, alpha 1.0 first: a refusal lists them
# sorted, not in the sweep's order. Alpha 0.25's job on the second repeat failed.
SWEPT = {
    "1.0": {key(0, 0): 0.91, key(1, 0): 0.93, key(2, 0): 0.92, key(0, 1): 0.94},
    "0.25": {key(0, 0): 0.81, key(1, 0): 0.84, key(2, 0): 0.82, key(0, 1): None},
}


@pytest.fixture(scope="module")
def two_configurations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `sweep=cv` over ``train.alpha`` with the accuracies of :data:`SWEPT`."""
    jobs = [
        fold_job([f"train.alpha={alpha}"], fold, repeat, test)
        for alpha, values in SWEPT.items()
        for (_, fold, repeat, _, _), test in values.items()
    ]
    return write_sweep(tmp_path_factory.mktemp("multirun") / "two", jobs)


@pytest.fixture(scope="module")
def one_configuration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-fold sweep of the tiny training, one repeat, as a `sweep=cv` run of it."""
    values = {key(0, 0): 0.5, key(1, 0): 0.6, key(2, 0): 0.7}
    jobs = [
        fold_job(list(TINY), fold, repeat, test) for (_, fold, repeat, _, _), test in values.items()
    ]
    return write_sweep(tmp_path_factory.mktemp("multirun") / "one", jobs)


# ---- a git repository with params.yaml at several revisions ----------------------------

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
GIT += ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def params_with(**changes: Any) -> dict[str, Any]:
    """The project's params.yaml with ``changes``' sections updated."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in changes.items():
        if isinstance(params[section], dict):
            params[section].update(values)
        else:
            params[section] = values
    return params


SMALL = params_with(train={"iterations": 2}, model={"hidden_size": 8})
KNN = params_with(train={"iterations": 2}, model={"hidden_size": 8}, peer="knn")
SEEDED = params_with(train={"iterations": 2}, model={"hidden_size": 8}, seed=5)


@pytest.fixture(scope="module")
def revisions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project whose history is: no params.yaml (tag ``bare``), the small network
    (tag ``small``), the knn peer (``main``); and a ``dvc exp`` named ``seeded``, made
    from ``main``, whose params.yaml has seed 5."""
    repo = tmp_path_factory.mktemp("revisions")
    git(repo, "init", "-q", "-b", "main")
    # In a process of its own: in-process, DVC's log handler keeps whatever stream was
    # stdout when DVC first logged, which a runner that swaps stdout may have closed.
    dvc("init", "-q", cwd=repo)
    (repo / "README.md").write_text("a project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bare")
    git(repo, "tag", "bare")
    for name, params in (("small", SMALL), ("knn", KNN)):
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", name)
    git(repo, "tag", "small", "HEAD~1")
    # An experiment is a commit under refs/exps/<baseline sha in two parts>/<name>.
    baseline = git(repo, "rev-parse", "HEAD")
    (repo / "params.yaml").write_text(yaml.safe_dump(SEEDED))
    git(repo, "commit", "-qam", "seeded")
    git(repo, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/seeded", "HEAD")
    git(repo, "reset", "-q", "--hard", baseline)
    return repo


# ---- the resamples both sides share ------------------------------------------------------


def test_the_default_resamples_are_every_fold_of_every_repeat_with_the_seed() -> None:
    assert comparison.fold_resamples(3, 2, 7) == [
        {"data.folds": 3, "data.fold": 0, "data.repeat": 0, "seed": 7},
        {"data.folds": 3, "data.fold": 1, "data.repeat": 0, "seed": 7},
        {"data.folds": 3, "data.fold": 2, "data.repeat": 0, "seed": 7},
        {"data.folds": 3, "data.fold": 0, "data.repeat": 1, "seed": 7},
        {"data.folds": 3, "data.fold": 1, "data.repeat": 1, "seed": 7},
        {"data.folds": 3, "data.fold": 2, "data.repeat": 1, "seed": 7},
    ]


def test_one_repeat_of_two_folds_is_two_resamples() -> None:
    assert comparison.fold_resamples(2, 1, 0) == [
        {"data.folds": 2, "data.fold": 0, "data.repeat": 0, "seed": 0},
        {"data.folds": 2, "data.fold": 1, "data.repeat": 0, "seed": 0},
    ]


# ---- which side is a sweep ---------------------------------------------------------------


def test_a_folder_holding_the_sweeps_list_of_jobs_is_a_sweep(two_configurations: Path) -> None:
    assert comparison.is_sweep(str(two_configurations))
    # A configuration picked after '#' is no part of the folder.
    assert comparison.is_sweep(f"{two_configurations}#train.alpha=1.0")


def test_overrides_and_folders_without_the_list_are_not_sweeps(tmp_path: Path) -> None:
    assert not comparison.is_sweep("experiment=modern train.l2=1.0")
    assert not comparison.is_sweep(str(tmp_path))
    # The list must be a file: a folder of that name is not one.
    (tmp_path / JOBS_FILE).mkdir()
    assert not comparison.is_sweep(str(tmp_path))
    assert not comparison.is_sweep(f"{tmp_path / 'missing'}#train.alpha=1.0")


# ---- a sweep side ------------------------------------------------------------------------


def test_a_sweep_side_takes_the_test_accuracies_its_jobs_recorded(
    two_configurations: Path,
) -> None:
    spec = f"{two_configurations}#train.alpha=1.0"
    side, params = comparison.sweep_side(spec)
    assert side == Side(spec, SWEPT["1.0"], 0.5)
    # The resamples the other side is trained on: each job's, in the sweep's order.
    assert params == [
        {"data.folds": 3, "data.fold": 0, "data.repeat": 0, "seed": 0, "data.test_size": 0.4},
        {"data.folds": 3, "data.fold": 1, "data.repeat": 0, "seed": 0, "data.test_size": 0.4},
        {"data.folds": 3, "data.fold": 2, "data.repeat": 0, "seed": 0, "data.test_size": 0.4},
        {"data.folds": 3, "data.fold": 0, "data.repeat": 1, "seed": 0, "data.test_size": 0.4},
    ]


def test_a_sweep_side_leaves_out_the_jobs_that_failed(two_configurations: Path) -> None:
    spec = f"{two_configurations}#train.alpha=0.25"
    side, params = comparison.sweep_side(spec)
    assert side.accuracies == {key(0, 0): 0.81, key(1, 0): 0.84, key(2, 0): 0.82}
    assert [(p["data.fold"], p["data.repeat"]) for p in params] == [(0, 0), (1, 0), (2, 0)]


def test_a_sweep_of_one_configuration_needs_no_pick(one_configuration: Path) -> None:
    side, params = comparison.sweep_side(str(one_configuration))
    assert side == Side(
        str(one_configuration), {key(0, 0): 0.5, key(1, 0): 0.6, key(2, 0): 0.7}, 0.5
    )
    assert len(params) == 3


def test_a_sweep_of_several_configurations_is_refused_without_a_pick(
    two_configurations: Path,
) -> None:
    folder = str(two_configurations)
    with pytest.raises(ConfigError) as refused:
        comparison.sweep_side(folder)
    assert str(refused.value) == (
        f"{folder}: holds 2 configurations; pick one as {folder}#CONFIGURATION, one of:"
        " train.alpha=0.25, train.alpha=1.0."
    )


def test_a_pick_the_sweep_does_not_hold_is_refused(two_configurations: Path) -> None:
    spec = f"{two_configurations}#train.alpha=9"
    with pytest.raises(ConfigError) as refused:
        comparison.sweep_side(spec)
    assert str(refused.value) == (
        f"{spec}: no configuration 'train.alpha=9' in the sweep; one of:"
        " train.alpha=0.25, train.alpha=1.0."
    )


def test_a_sweep_without_a_finished_job_is_refused(tmp_path: Path) -> None:
    # One job failed, another never sent its record back.
    failed = fold_job(list(TINY), 0, 0, None)
    folder = write_sweep(tmp_path / "failed", [failed])
    write_jobs(folder, [failed["key"], job_key([*TINY, "data.fold=1", "data.repeat=0"])])
    with pytest.raises(ConfigError) as refused:
        comparison.sweep_side(f"{folder}#defaults")
    assert str(refused.value) == f"{folder}: the sweep has no finished job to compare."


# ---- the configuration a side names ------------------------------------------------------


def as_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


@pytest.mark.parametrize("spec", ["defaults", "", "  ", " defaults "])
def test_defaults_or_nothing_is_conf_composed_without_overrides(spec: str) -> None:
    assert as_dict(comparison.configuration(spec, ROOT)) == as_dict(task_config())


def test_overrides_in_one_argument_are_each_applied() -> None:
    cfg = comparison.configuration("experiment=modern train.l2=1.0", ROOT)
    assert as_dict(cfg) == as_dict(task_config("experiment=modern", "train.l2=1.0"))
    assert cfg.train.l2 == 1.0 and cfg.model.activation == "relu"


def test_the_overrides_apply_to_the_conf_of_the_root_given(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    top = tmp_path / "conf" / "config.yaml"
    top.write_text(top.read_text().replace("\nseed: 0\n", "\nseed: 11\n"))
    assert comparison.configuration("defaults", tmp_path).seed == 11
    assert comparison.configuration("seed=3", tmp_path).seed == 3


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("nope=1", "Could not override 'nope'."),
        ("experiment=nope", "In 'config': Could not find 'experiment/nope'"),
    ],
)
def test_what_conf_cannot_compose_is_refused_in_one_line(spec: str, why: str) -> None:
    with pytest.raises(ConfigError) as refused:
        comparison.configuration(spec, ROOT)
    assert str(refused.value) == f"{spec!r}: not a configuration of conf/ ({why})."


# ---- a revision's params.yaml ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rev", "params"),
    [("small", SMALL), ("HEAD~1", SMALL), ("main", KNN), ("HEAD", KNN), ("seeded", SEEDED)],
)
def test_a_revision_side_is_the_params_yaml_it_committed(
    revisions: Path, rev: str, params: dict[str, Any]
) -> None:
    cfg = comparison.configuration(f"rev:{rev}", revisions)
    assert isinstance(cfg, DictConfig)
    assert as_dict(cfg) == params


def test_a_revision_is_read_from_the_root_given_not_the_working_directory(
    revisions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert as_dict(comparison._revision_params("small", revisions)) == SMALL


def test_an_unknown_revision_is_refused_in_one_line(revisions: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        comparison.configuration("rev:nope", revisions)
    assert str(refused.value) == (
        "rev:nope: no such git revision or dvc experiment (see `dvc exp show`)."
    )


def test_a_revision_without_params_yaml_is_refused_in_one_line(revisions: Path) -> None:
    sha = git(revisions, "rev-parse", "bare")
    with pytest.raises(ConfigError) as refused:
        comparison._revision_params("bare", revisions)
    message = str(refused.value)
    # git's own reason, naming the commit the revision resolved to.
    assert message.startswith("rev:bare: has no params.yaml (fatal: path 'params.yaml' ")
    assert message.endswith(f"'{sha}').") and "\n" not in message


# ---- one resample's configuration, and its score -----------------------------------------

FOLD = {"data.folds": 4, "data.fold": 3, "data.repeat": 1, "seed": 9}


def test_a_resample_sets_its_rows_and_turns_tracking_off() -> None:
    raw = task_config(*TINY)
    cfg = comparison.resample_config(raw, {**FOLD, "data.test_size": 0.3})
    assert isinstance(cfg, config.Config)
    assert (cfg.data.folds, cfg.data.fold, cfg.data.repeat, cfg.seed) == (4, 3, 1, 9)
    assert cfg.data.test_size == 0.3
    assert cfg.tracking.enabled is False
    assert (cfg.train.iterations, cfg.model.hidden_size) == (2, 8)
    # The side's configuration serves every resample: it is left as it was.
    assert raw.tracking.enabled is True and raw.data.folds is None and raw.seed == 0
    assert raw.data.test_size == 0.4


def test_a_resample_adds_the_keys_an_older_params_yaml_lacks() -> None:
    older = OmegaConf.create({"train": {"iterations": 2}, "model": {"hidden_size": 8}})
    cfg = comparison.resample_config(older, FOLD)
    assert (cfg.data.folds, cfg.data.fold, cfg.data.repeat, cfg.seed) == (4, 3, 1, 9)
    assert cfg.tracking.enabled is False
    assert "data" not in older and "tracking" not in older


def test_a_networks_score_is_its_test_accuracy_on_the_resamples_rows() -> None:
    cfg = comparison.resample_config(task_config(*TINY), FOLD)
    data = prepare(cfg)
    expected = accuracy_on_test(fit(cfg, data).network, data.split)
    score = comparison.score(cfg)
    assert isinstance(score, float) and score == expected
    assert (score * len(data.split.y_test)).is_integer()


def test_a_peers_score_is_its_test_accuracy_fitted_without_the_validation_rows() -> None:
    raw = task_config("peer=knn", "train.validation_size=0.2")
    cfg = comparison.resample_config(
        raw, {"data.folds": 3, "data.fold": 1, "data.repeat": 0, "seed": 3}
    )
    data = prepare(cfg)

    def accuracy(seed: int, validation_size: float) -> float:
        fitted = peers.fit_peer("knn", data, seed, validation_size)
        return float(np.mean(fitted.test_predictions == data.split.y_test))

    expected = accuracy(3, 0.2)
    # The seed and the validation rows each change the score, so either lost would show.
    assert expected not in (accuracy(3, 0.0), accuracy(0, 0.2))
    assert comparison.score(cfg) == expected
    assert expected > 0.9


# ---- a side trained now ------------------------------------------------------------------


def test_a_trained_side_scores_its_configuration_on_each_resample(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = task_config(*TINY)
    on = comparison.fold_resamples(FOLDS, 1, 0)
    side = comparison.trained_side("train.iterations=2", raw, on)
    assert side.label == "train.iterations=2"
    assert side.ratio == 0.5
    assert list(side.accuracies) == [key(0, 0), key(1, 0), key(2, 0)]
    for resample, (fold, accuracy) in zip(on, side.accuracies.items(), strict=True):
        assert fold[1] == resample["data.fold"]
        assert accuracy == comparison.score(comparison.resample_config(raw, resample))
    assert len(set(side.accuracies.values())) == 3
    # No progress bar where no person watches (the tests' stderr is no terminal).
    assert capsys.readouterr().err == ""


def test_a_trained_side_on_seeded_splits_has_their_test_share_as_its_ratio() -> None:
    side = comparison.trained_side("seeds", task_config(*TINY), [{"seed": 1}, {"seed": 2}])
    assert list(side.accuracies) == [(None, None, None, 1, 0.4), (None, None, None, 2, 0.4)]
    # 719 of the 1797 rows are tested on: ceil(0.4 * 1797).
    assert side.ratio == pytest.approx(719 / 1078)


def test_a_side_trained_on_no_resample_is_empty() -> None:
    assert comparison.trained_side("none", task_config(*TINY), []) == Side("none", {}, 0.0)


# ---- the paired test ---------------------------------------------------------------------

A = [0.90, 0.92, 0.91, 0.93, 0.89, 0.94]
KEYS = [key(fold, repeat) for repeat in range(2) for fold in range(FOLDS)]


def side(label: str, values: list[float], ratio: float = 0.5) -> Side:
    return Side(label, dict(zip(KEYS, values, strict=True)), ratio)


def corrected_test(a: list[float], b: list[float], ratio: float) -> dict[str, float]:
    """Nadeau and Bengio's corrected paired t-test, from scipy's plain one."""
    n = len(a)
    plain = scipy_stats.ttest_rel(b, a)
    t = plain.statistic / math.sqrt((1 / n + ratio) * n)
    se = float(np.mean(np.subtract(b, a))) / t
    half = scipy_stats.t.ppf(0.975, n - 1) * se
    difference = float(np.mean(np.subtract(b, a)))
    return {
        "n": n,
        "difference": difference,
        "low": difference - half,
        "high": difference + half,
        "t": t,
        "p": 2 * scipy_stats.t.sf(abs(t), n - 1),
    }


def test_the_paired_test_is_scipys_corrected_with_as_ratio_on_shared_resamples() -> None:
    b_values = [0.95, 0.96, 0.97, 0.98, 0.93, 0.99]
    # A's ratio is the test's; B's differs, so that taking it would show. A has a
    # resample that B lacks: only the shared ones are paired.
    a = Side("A", {**side("A", A).accuracies, key(0, 2): 0.10}, 0.5)
    b = side("B", b_values, ratio=0.25)
    result = comparison.compare(a, b)
    assert result.a is a and result.b is b
    assert result.paired.__dict__ == pytest.approx(corrected_test(A, b_values, 0.5))


def test_two_shared_resamples_are_enough() -> None:
    a = Side("A", {key(0, 0): 0.9, key(1, 0): 0.8}, 0.5)
    b = Side("B", {key(0, 0): 0.7, key(1, 0): 0.8, key(2, 0): 0.1}, 0.5)
    assert comparison.compare(a, b).paired.__dict__ == pytest.approx(
        corrected_test([0.9, 0.8], [0.7, 0.8], 0.5)
    )


@pytest.mark.parametrize("shared", [0, 1])
def test_fewer_than_two_shared_resamples_are_refused(shared: int) -> None:
    a = Side("sweep#x", {key(fold, 0): 0.9 for fold in range(3)}, 0.5)
    b = Side("peer=svc", {key(fold, 1 - (fold < shared)): 0.8 for fold in range(3)}, 0.5)
    with pytest.raises(ConfigError) as refused:
        comparison.compare(a, b)
    assert str(refused.value) == (
        f"sweep#x and peer=svc share {shared} resamples; a paired comparison needs at least 2"
        " (the same folds, repeats and seed on both sides)."
    )


# ---- the report --------------------------------------------------------------------------


def test_the_report_gives_each_sides_spread_the_difference_and_the_verdict() -> None:
    # A's spread is over all 7 of its resamples, with its ratio; B's over its 6, with its
    # own (1/4); the difference over the 6 they share, with A's.
    a = Side("experiment=classic", {**side("A", A).accuracies, key(0, 2): 0.80}, 0.5)
    b = side("experiment=modern", [0.95, 0.96, 0.97, 0.98, 0.93, 0.99], ratio=0.25)
    assert comparison.compare(a, b).lines() == [
        "A: experiment=classic: mean 0.8986, sd 0.0467, 95 % interval 0.8069 to 0.9902"
        " over 7 resamples",
        "B: experiment=modern: mean 0.9633, sd 0.0216, 95 % interval 0.9275 to 0.9992"
        " over 6 resamples",
        "B - A: +0.0483 on 6 paired resamples, 95 % interval +0.0325 to +0.0641;"
        " corrected resampled t = 7.86, p = 0.000534",
        "experiment=modern is better than experiment=classic: B - A = +0.0483 (95 % interval"
        " +0.0325 to +0.0641, p = 0.000534, 6 paired resamples) is more than noise.",
    ]


@pytest.mark.parametrize(
    ("shift", "verdict"),
    [
        (
            [0.05, 0.04, 0.06, 0.05, 0.04, 0.06],
            "modern is better than classic: B - A = +0.0500 (95 % interval +0.0312 to"
            " +0.0688, p = 0.00102, 6 paired resamples) is more than noise.",
        ),
        (
            [-0.05, -0.04, -0.06, -0.05, -0.04, -0.06],
            "classic is better than modern: B - A = -0.0500 (95 % interval -0.0688 to"
            " -0.0312, p = 0.00102, 6 paired resamples) is more than noise.",
        ),
        (
            [0.01, -0.01, 0.02, -0.02, 0.01, -0.005],
            "modern and classic are indistinguishable: B - A = +0.0008 (95 % interval -0.0306"
            " to +0.0323, p = 0.948, 6 paired resamples) is within noise.",
        ),
    ],
)
def test_the_verdict_names_the_better_side_or_says_noise(shift: list[float], verdict: str) -> None:
    result = comparison.compare(side("classic", A), side("modern", list(np.add(A, shift))))
    assert result.lines()[-1] == verdict


def test_the_details_hold_every_accuracy_and_the_tests_figures() -> None:
    b_values = [0.95, 0.96, 0.97, 0.98, 0.93, 0.99]
    result = comparison.compare(side("A", A), side("B", b_values, ratio=0.25))
    details = result.details()
    rows = [
        {
            "data.folds": 3,
            "data.fold": fold,
            "data.repeat": repeat,
            "seed": 0,
            "data.test_size": 0.4,
            "accuracy": value,
        }
        for (_, fold, repeat, _, _), value in zip(KEYS, A, strict=True)
    ]
    assert details["a"] == {"label": "A", "ratio": 0.5, "resamples": rows}
    assert details["b"]["label"] == "B" and details["b"]["ratio"] == 0.25
    assert [r["accuracy"] for r in details["b"]["resamples"]] == b_values
    assert details["paired"] == pytest.approx(corrected_test(A, b_values, 0.5))
    assert details["distinguishable"] is True
    assert details["verdict"] == result.lines()[-1]
    assert details["verdict"].startswith("B is better than A: ")
    assert set(details) == {"a", "b", "paired", "distinguishable", "verdict"}


def test_the_details_say_when_the_sides_are_indistinguishable() -> None:
    noise = list(np.add(A, [0.01, -0.01, 0.02, -0.02, 0.01, -0.005]))
    details = comparison.compare(side("A", A), side("B", noise)).details()
    assert details["distinguishable"] is False
    assert details["verdict"].startswith("B and A are indistinguishable: ")


# ---- both sides, end to end --------------------------------------------------------------


def test_two_configurations_are_trained_on_the_default_resamples() -> None:
    specs = ("train.iterations=2 model.hidden_size=8", "train.iterations=3 model.hidden_size=8")
    default = comparison.fold_resamples(FOLDS, 1, 0)
    result = comparison.run(specs, default, ROOT)
    for spec, got in zip(specs, (result.a, result.b), strict=True):
        assert got == comparison.trained_side(spec, task_config(*spec.split()), default)
    assert list(result.a.accuracies) == [key(0, 0), key(1, 0), key(2, 0)]
    assert result.paired.n == 3


@pytest.mark.parametrize("sweep_is", ["a", "b"])
def test_the_other_side_is_trained_on_a_sweep_sides_resamples(
    one_configuration: Path, sweep_is: str
) -> None:
    sweep, overrides = str(one_configuration), " ".join(TINY)
    specs = (sweep, overrides) if sweep_is == "a" else (overrides, sweep)
    # Default resamples the sweep does not have: were they used, nothing would pair.
    result = comparison.run(specs, comparison.fold_resamples(5, 2, 1), ROOT)
    swept = {key(0, 0): 0.5, key(1, 0): 0.6, key(2, 0): 0.7}
    trained = result.b if sweep_is == "a" else result.a
    assert (result.a if sweep_is == "a" else result.b) == Side(sweep, swept, 0.5)
    on = comparison.sweep_side(sweep)[1]
    assert trained == comparison.trained_side(overrides, task_config(*TINY), on)
    assert result.paired.n == 3


def test_two_sweep_sides_are_compared_without_training(two_configurations: Path) -> None:
    a, b = f"{two_configurations}#train.alpha=0.25", f"{two_configurations}#train.alpha=1.0"
    result = comparison.run((a, b), [], ROOT)
    assert (result.a.label, result.b.label) == (a, b)
    # Alpha 0.25's failed fold leaves three shared resamples.
    assert result.paired.__dict__ == pytest.approx(
        corrected_test([0.81, 0.84, 0.82], [0.91, 0.93, 0.92], 0.5)
    )


def test_two_revisions_are_their_params_trained_on_the_default_resamples(
    revisions: Path,
) -> None:
    default = comparison.fold_resamples(FOLDS, 1, 0)
    result = comparison.run(("rev:small", "rev:main"), default, revisions)
    assert result.a == comparison.trained_side("rev:small", OmegaConf.create(SMALL), default)
    assert result.b == comparison.trained_side("rev:main", OmegaConf.create(KNN), default)
    # Two iterations of the network against nearest neighbours: no noise about it.
    assert result.lines()[-1].startswith("rev:main is better than rev:small: B - A = +0.")
