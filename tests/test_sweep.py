"""The sweep's pieces that need no subprocess: the plan of jobs, the records they send
back, the summary and its ranking, the parent run's metrics, shared budgets, and what
the fork server preloads."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import open_dict, read_write

from digits_nn import budgets, config, pipeline, plots, runner, sweep, sweeper

ROOT = Path(__file__).resolve().parents[1]


def sweep_config(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"hydra.sweep.dir={tmp_path}", *overrides],
            return_hydra_config=True,
        )


def test_the_fork_server_preloads_modules_that_exist() -> None:
    # The fork server skips a module it cannot import without a word; a typo here would
    # quietly make every worker import it again.
    for module in sweep.JOB_MODULES + sweep.TRACKING_MODULES:
        assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize(
    ("launcher", "expected"), [("hydra/launcher=joblib", True), ("hydra/launcher=basic", False)]
)
def test_only_the_joblib_launcher_gets_the_fork_server(
    tmp_path: Path, launcher: str, expected: bool
) -> None:
    assert sweep.uses_joblib(sweep_config(tmp_path, launcher)) is expected


def test_the_parent_run_id_travels_in_each_jobs_own_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A launcher recomposes each job from the sweep's Hydra overrides plus the job's own
    # (ConfigLoader.load_sweep_config), and Hydra sets hydra.job.env_set in the job's
    # environment, wherever it runs: no file on the launching machine's disk is needed.
    config = sweep_config(tmp_path)
    sweep.send_to_jobs(config, "abc123")
    hydra_overrides = list(config.hydra.overrides.hydra)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        job = compose(
            config_name="config",
            overrides=[*hydra_overrides, "train.alpha=1.0"],
            return_hydra_config=True,
        )
    assert dict(job.hydra.job.env_set) == {runner.PARENT_RUN_ENV: "abc123"}
    assert "abc123" not in " ".join(job.hydra.overrides.task)  # not in the run's overrides
    monkeypatch.delenv(runner.PARENT_RUN_ENV, raising=False)
    assert runner.sweep_parent_run() is None
    monkeypatch.setenv(runner.PARENT_RUN_ENV, "abc123")
    assert runner.sweep_parent_run() == "abc123"


PROBE = """
import gc, json
from joblib import Parallel, delayed
from digits_nn import sweep

def probe(_):
    from threadpoolctl import threadpool_info
    import sys
    return {
        "threads": sorted({pool["num_threads"] for pool in threadpool_info()}),
        "frozen": gc.get_freeze_count(),
        "warm": "sklearn.datasets" in sys.modules and "matplotlib.pyplot" in sys.modules,
    }

if __name__ == "__main__":
    sweep.start_fork_server(tracking_enabled=False)
    print(json.dumps(Parallel(n_jobs=2)(delayed(probe)(i) for i in range(2))))
"""


@pytest.mark.slow
def test_joblib_workers_are_warm_one_thread_forks_of_the_server(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    )
    for worker in json.loads(result.stdout.strip().splitlines()[-1]):
        assert worker["threads"] == [1]  # BLAS and OpenMP: one thread per worker
        assert worker["frozen"] > 0  # forked from the server after its gc.freeze()
        assert worker["warm"]  # sklearn and matplotlib came with the fork


# ---- the plan and the records ---------------------------------------------------------


def test_a_jobs_key_is_its_configuration_whatever_the_order() -> None:
    assert sweeper.job_key(["train.alpha=1.0", "seed=2"]) == "seed=2,train.alpha=1.0"
    assert sweeper.job_key(["seed=2", "train.alpha=1.0"]) == "seed=2,train.alpha=1.0"
    assert sweeper.job_key(["seed=2"]) != sweeper.job_key(["seed=3"])
    odd = [
        sweeper.job_key(["model.hidden_sizes=[5,6]"]),
        sweeper.job_key(["model.hidden_sizes=[56]"]),
    ]
    assert len(set(odd)) == 2 and all("/" not in k and "[" not in k for k in odd)
    assert len(sweeper.job_key([f"k{i}=value-{i}" for i in range(40)])) < 120


GRID = [
    [f"train.alpha={alpha}", f"train.iterations={budget}"]
    for alpha in ("0.25", "1.0")
    for budget in (500, 1000, 3000)
]


def test_budgets_of_one_configuration_are_one_launch_trained_to_the_largest() -> None:
    launches = sweeper.plan(GRID, done=set(), share_budgets=True)
    assert [launch.members[0] for launch in launches] == [
        ["train.alpha=0.25", "train.iterations=3000"],
        ["train.alpha=1.0", "train.iterations=3000"],
    ]
    assert [launch.shared for launch in launches] == [[1000, 500], [1000, 500]]
    assert sorted(
        map(sweeper.job_key, (m for launch in launches for m in launch.members))
    ) == sorted(map(sweeper.job_key, GRID))
    unshared = sweeper.plan(GRID, done=set(), share_budgets=False)
    assert [launch.members for launch in unshared] == [[job] for job in GRID]
    assert all(not launch.shared for launch in unshared)


def test_finished_configurations_are_not_launched_again() -> None:
    done = {sweeper.job_key(GRID[2]), sweeper.job_key(GRID[3])}  # a0.25 i3000, a1.0 i500
    launches = sweeper.plan(GRID, done, share_budgets=True)
    planned = [m for launch in launches for m in launch.members]
    assert sorted(map(sweeper.job_key, planned)) == sorted(
        sweeper.job_key(j) for j in GRID if sweeper.job_key(j) not in done
    )
    assert launches[0].members[0] == ["train.alpha=0.25", "train.iterations=1000"]
    assert launches[0].shared == [500]


def test_a_launch_carries_its_folder_and_budgets_in_its_hydra_config(tmp_path: Path) -> None:
    (launch, *_) = sweeper.plan(GRID, done=set(), share_budgets=True)
    job = sweep_config(tmp_path, "hydra.job.num=0", *launch.overrides)
    assert job.hydra.sweep.subdir == sweeper.job_key(launch.members[0])
    assert dict(job.hydra.job.env_set) == {sweeper.BUDGETS_ENV: "1000,500"}
    assert list(job.hydra.overrides.task) == launch.members[0]  # the run's own overrides


def test_the_launches_with_the_most_training_go_first() -> None:
    grid = [
        [f"train.iterations={budget}", f"model.hidden_size={hidden}"]
        for budget in (500, 10000)
        for hidden in (10, 100)
    ]
    defaults = {"train.iterations": 3000, "model.hidden_size": 30, "model.hidden_sizes": None}
    ordered = sweeper.longest_first(sweeper.plan(grid, set(), False), defaults)
    assert [launch.members[0] for launch in ordered] == [grid[3], grid[2], grid[1], grid[0]]
    # Shared budgets: a group costs what its largest budget costs.
    shared = sweeper.longest_first(sweeper.plan(grid, set(), True), defaults)
    assert [launch.members[0] for launch in shared] == [grid[3], grid[2]]
    assert sweeper.work(["seed=1"], defaults) == 3000 * (30 + 10)
    assert sweeper.work(["model.hidden_sizes=[100,50]"], defaults) == 3000 * (150 + 10)
    # Equal work keeps the sweep's order; a value that cannot be read (the job will fail
    # at once) goes last.
    same = [["model.hidden_size=abc"], ["seed=2"], ["seed=1"]]
    kept = sweeper.longest_first(sweeper.plan(same, set(), True), defaults)
    assert [launch.members[0] for launch in kept] == [same[1], same[2], same[0]]


def test_a_members_overrides_keep_their_order_with_the_budget_replaced() -> None:
    assert sweeper.with_budget(["train.iterations=50", "seed=1"], 20) == [
        "train.iterations=20",
        "seed=1",
    ]
    assert sweeper.budget_of(["seed=1"]) is None


def job_return(value=None, error: Exception | None = None) -> JobReturn:
    status = JobStatus.FAILED if error else JobStatus.COMPLETED
    return JobReturn(status=status, _return_value=error if error else value)


def test_a_job_that_raised_or_sent_nothing_gets_a_failed_record() -> None:
    expected = [GRID[2], GRID[1]]
    (first, second) = sweeper.records_of(job_return(error=ValueError("boom")), expected)
    assert first["status"] == second["status"] == "FAILED"
    assert first["error"] == "ValueError: boom"
    assert first["key"] == sweeper.job_key(GRID[2]) and first["overrides"] == GRID[2]
    sent = runner.Objective.of(0.9, [{"key": sweeper.job_key(GRID[2]), "status": "FINISHED"}])
    (kept, missing) = sweeper.records_of(job_return(sent), expected)
    assert kept["status"] == "FINISHED"
    assert missing["status"] == "FAILED" and "no record" in missing["error"]


def test_the_objective_travels_pickled_with_its_records() -> None:
    value = runner.Objective.of(0.75, [{"key": "k", "status": "FINISHED"}])
    back = pickle.loads(pickle.dumps(value))
    assert float(back) == 0.75 and back.records == value.records


def test_a_half_written_or_foreign_record_is_not_trusted(tmp_path: Path) -> None:
    record = {"key": "a=1", "overrides": ["a=1"], "status": "FINISHED"}
    sweeper.write_record(tmp_path, record)
    assert sweeper.read_record(tmp_path, "a=1") == record
    text = (tmp_path / "a=1" / sweeper.RECORD_FILE).read_text()
    (tmp_path / "a=1" / sweeper.RECORD_FILE).write_text(text[: len(text) // 2])
    assert sweeper.read_record(tmp_path, "a=1") is None
    sweeper.write_record(tmp_path, {**record, "key": "b=2"})
    (tmp_path / "b=2").rename(tmp_path / "c=3")
    assert sweeper.read_record(tmp_path, "c=3") is None  # another configuration's


def test_the_summary_describes_exactly_this_sweeps_jobs(tmp_path: Path) -> None:
    # Issue 14.4: three sweeps into one folder; the last one ran a single job.
    for key in ("a=1", "a=2", "b=1"):
        sweeper.write_record(tmp_path, {"key": key, "overrides": [key], "status": "FINISHED"})
    sweeper.write_jobs(tmp_path, ["b=1"])
    assert [r["key"] for r in sweeper.sweep_records(tmp_path)] == ["b=1"]
    sweeper.write_jobs(tmp_path, ["b=1", "b=2"])  # b=2 never came back
    rows = sweeper.sweep_records(tmp_path)
    assert [(r["key"], r["status"]) for r in rows] == [("b=1", "FINISHED"), ("b=2", "FAILED")]


# ---- the summary, its ranking and the parent run's metrics ---------------------------


def record(key: str, test: float | None, validation: float | None = None, **extra) -> dict:
    overrides = [f"train.alpha={key}", "model.hidden_size=10"]
    status = "FAILED" if test is None else "FINISHED"
    params = {"train.alpha": float(key), "model.hidden_size": 10}
    row = {"key": key, "overrides": overrides, "status": status, "params": params}
    if test is not None:
        row |= {"test_accuracy": test, "validation_accuracy": validation, "cost": [1.0, 0.5]}
    return row | extra


def test_with_validation_rows_the_summary_ranks_by_validation_accuracy() -> None:
    rows, metric = sweep.rank(
        [record("0.1", 0.99, 0.80), record("0.2", None), record("0.3", 0.90, 0.95)]
    )
    assert metric == "validation_accuracy"
    assert [r["job"] for r in rows] == ["0.3", "0.1", "0.2"]  # not by test accuracy
    assert [r["rank"] for r in rows] == [1, 2, 3]
    table = sweep.to_markdown(rows, "Sweep", metric, [])
    assert "ranked by validation accuracy" in table and "0.9900" in table  # test stays


def test_without_validation_rows_the_summary_says_it_is_for_exploration() -> None:
    rows, metric = sweep.rank([record("0.1", 0.80), record("0.2", None), record("0.3", 0.90)])
    assert metric == "test_accuracy"
    assert [r["job"] for r in rows] == ["0.3", "0.1", "0.2"]
    assert "for exploration, not for choosing a model" in sweep.to_markdown(rows, "S", metric, [])


def test_a_sweeps_objective_is_validation_accuracy_when_there_are_validation_rows() -> None:
    # Issue 15, mutation 9: choosing on the test rows would leak them into the choice.
    assert runner.objective(test_accuracy=0.99, validation_accuracy=0.80) == 0.80
    assert runner.objective(test_accuracy=0.99, validation_accuracy=None) == 0.99
    assert math.isnan(runner.objective(test_accuracy=None, validation_accuracy=None))


def test_the_parent_runs_metrics_are_computed_from_the_jobs_own_records() -> None:
    # Issue 15, mutations 10 and 11: the failures counted, the best test accuracy a max.
    records = [record("0.1", 0.80), record("0.2", None), record("0.3", 0.95), record("0.4", None)]
    records.append(record("0.5", 0.70))
    rows, metric = sweep.rank(records)
    finished = [r for r in records if r["status"] == "FINISHED"]
    assert sweep.parent_metrics(rows, metric) == {
        "jobs": 5,
        "failed_jobs": sum(r["status"] != "FINISHED" for r in records),
        "best_test_accuracy": max(r["test_accuracy"] for r in finished),
    }
    validated, metric = sweep.rank([record("0.1", 0.99, 0.80), record("0.3", 0.90, 0.95)])
    values = sweep.parent_metrics(validated, metric)
    assert values["best_validation_accuracy"] == 0.95 and values["test_accuracy_of_best"] == 0.90


def test_the_summary_has_a_column_for_every_swept_key() -> None:
    # Issue 14.5: hidden_sizes=[5] and [60] both showed model.hidden_size 30.
    rows = [
        record("0.1", 0.56, overrides=["model.hidden_sizes=[5]", "model.activation=relu"]),
        record("0.1", 0.36, overrides=["model.hidden_sizes=[60]", "model.activation=relu"]),
    ]
    ranked, _ = sweep.rank(rows)
    assert sweep.swept_keys(ranked) == ["model.hidden_sizes"]
    table = list(csv.DictReader(io.StringIO(sweep.to_csv(ranked))))
    assert [row["model.hidden_sizes"] for row in table] == ["[5]", "[60]"]
    assert "| [5] |" in sweep.to_markdown(ranked, "S", "test_accuracy", [])


def test_the_heatmap_averages_over_seeds_only(tmp_path: Path) -> None:
    # Issue 14.5: two hidden_sizes in one cell were drawn as their mean, "0.460 (n=2)".
    rows = [
        {**record("0.1", 0.5647), "model.hidden_sizes": "[5]", "seed": "0"},
        {**record("0.1", 0.3561), "model.hidden_sizes": "[60]", "seed": "0"},
        {**record("0.1", 0.3000), "model.hidden_sizes": "[60]", "seed": "1"},
    ]
    cells = plots.heatmap_cells(rows, ["model.hidden_sizes"], "test_accuracy")
    assert cells == {
        ("model.hidden_sizes=[5]",): {(0.1, 10): [0.5647]},
        ("model.hidden_sizes=[60]",): {(0.1, 10): [0.3561, 0.3000]},
    }
    assert plots.save_sweep_heatmap(tmp_path / "h.png", rows, ["model.hidden_sizes"])
    many = [{**record("0.1", 0.5), "seed": "0", "l2": str(i)} for i in range(17)]
    assert not plots.save_sweep_heatmap(tmp_path / "none.png", many, ["l2"])
    assert not (tmp_path / "none.png").exists()


def test_the_summary_names_the_panels_it_cannot_draw(tmp_path: Path) -> None:
    rows, metric = sweep.rank(
        [record("0.1", 0.5, overrides=[f"train.l2={i}", "train.alpha=0.1"]) for i in range(17)]
    )
    written = sweep.write_summary(tmp_path, rows, "sweep x", metric)
    assert tmp_path / "sweep_heatmap.png" not in written
    assert (
        "No heatmap: one panel per value of train.l2" in (tmp_path / "sweep_summary.md").read_text()
    )


# ---- shared budgets: the smaller budget is the prefix of the longer training -----------


def classic() -> config.Config:
    return config.parse({"tracking": {"accuracy_every": 7}})


SHARED_CONFIGS = {
    "classic kernel": {},
    "momentum, mini-batches": {"optimizer": "momentum", "batch_size": 64, "nesterov": True},
    "softmax, L2, validation rows": {"l2": 0.5, "validation_size": 0.2},
}


@pytest.mark.parametrize("options", SHARED_CONFIGS.values(), ids=SHARED_CONFIGS.keys())
def test_a_shared_budget_is_bit_identical_to_training_that_budget_alone(options: dict) -> None:
    model = {"output": "softmax", "activation": "relu", "init": "he"} if "l2" in options else {}
    raw = {"train": {"iterations": 40, "alpha": 0.3, **options}, "model": model}
    raw["tracking"] = {"accuracy_every": 7}
    cfg = config.parse(raw)
    _, split, onehot = pipeline.prepare_data(cfg)
    shared = budgets.train_to_largest(cfg, split, onehot, [40, 25, 13], track=True)
    for budget in (13, 25, 40):
        alone_cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, iterations=budget)
        )
        curve: dict[int, float] = {}
        alone = pipeline.fit(
            alone_cfg,
            split,
            onehot,
            False,
            lambda i, net, curve=curve: curve.__setitem__(i, pipeline.accuracy_on_test(net, split)),
        )
        got = shared.result(budget)
        for a, b in zip(
            alone.network.weights + alone.network.biases, got.network.weights + got.network.biases
        ):
            assert np.array_equal(a, b)
        assert np.array_equal(alone.cost_curve, got.cost_curve)
        assert np.array_equal(alone.classic_cost_curve, got.classic_cost_curve)
        if alone.validation_cost_curve is None:
            assert got.validation_cost_curve is None
        else:
            assert np.array_equal(alone.validation_cost_curve, got.validation_cost_curve)
        assert alone.validation_accuracy == got.validation_accuracy
        assert alone.best_iteration == got.best_iteration
        assert shared.accuracy_curve(budget) == curve


def test_early_stopping_budgets_are_not_shared() -> None:
    cfg = config.parse({"train": {"validation_size": 0.2, "patience": 5, "optimizer": "sgd"}})
    assert not budgets.can_share(cfg)
    assert budgets.can_share(classic())


def test_a_diverging_shared_training_fails_only_the_budgets_that_diverge() -> None:
    cfg = config.parse(
        {
            "train": {"iterations": 6, "alpha": 1e300, "dtype": "float32"},
            "tracking": {"accuracy_every": 0},
        }
    )
    _, split, onehot = pipeline.prepare_data(cfg)
    shared = budgets.train_to_largest(cfg, split, onehot, [6, 1], track=False)
    assert len(shared.result(1).cost_curve) == 1
    with pytest.raises(Exception, match="diverged"):
        shared.result(6)


# ---- the sweep's name, grid and base config -------------------------------------------


def launched_with(tmp_path: Path, *overrides: str):
    """A sweep's config as Hydra hands it to the callback: composed without the sweeps,
    which stay in ``hydra.overrides.task`` as typed."""
    single = [o for o in overrides if o.startswith("sweep=")]
    cfg = sweep_config(tmp_path, *single)
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.overrides.task = list(overrides)
    return cfg


def test_the_grid_holds_the_presets_and_the_command_lines_sweeps_only(tmp_path: Path) -> None:
    cfg = launched_with(
        tmp_path,
        "seed=0,1",
        "+train.note=range(3)",
        "train.alpha=choice(0.5,1.0)",
        "model.hidden_sizes=[100,50]",  # one list, not a sweep
        "++hydra.job.env_set.X='a,b'",  # one quoted string
        "train.l2=0.01",
    )
    assert sweep.sweep_grid(cfg) == {
        "seed": "0,1",
        "train.note": "range(3)",
        "train.alpha": "choice(0.5,1.0)",
    }
    preset = launched_with(tmp_path, "sweep=grid", "seed=0,1")
    assert sweep.sweep_grid(preset) == {
        "train.alpha": "0.05,0.25,1.0,2.5",
        "train.iterations": "500,1000,3000,10000",
        "model.hidden_size": "10,30,60,100",
        "seed": "0,1",
    }


def test_a_sweep_is_named_after_its_preset_or_its_overrides(tmp_path: Path) -> None:
    assert sweep.sweep_name(launched_with(tmp_path, "sweep=grid", "seed=1")) == "sweep grid"
    assert sweep.sweep_name(launched_with(tmp_path, "seed=0,1", "train.l2=0.1")) == (
        "sweep seed=0,1 train.l2=0.1"
    )


def test_a_sweeps_identity_does_not_depend_on_the_order_of_its_overrides(tmp_path: Path) -> None:
    first = sweep.sweep_identity(launched_with(tmp_path, "seed=0,1", "train.alpha=0.5,1.0"))
    again = sweep.sweep_identity(launched_with(tmp_path, "train.alpha=0.5,1.0", "seed=0,1"))
    other = sweep.sweep_identity(launched_with(tmp_path, "seed=0,1", "train.alpha=0.5,2.0"))
    assert first == again != other
    assert first == [
        "seed=0,1",
        "train.alpha=0.5,1.0",
        "seed=0,1",
        "train.alpha=0.5,1.0",
    ]


def test_an_invalid_base_config_still_gives_the_sweep_its_tracking_and_paths(
    tmp_path: Path,
) -> None:
    cfg = sweep_config(tmp_path, "train.alpha=-1", "tracking.experiment=kept")
    assert sweep._task_config(cfg).tracking.experiment == "kept"
    # A broken tracking section leaves the defaults: the jobs report the error.
    broken = sweep_config(tmp_path, "tracking.accuracy_every=-5", "paths.model=m.npz")
    assert sweep._task_config(broken).tracking == config.TrackingConfig()
    assert sweep._task_config(broken).paths == config.PathsConfig()
    valid = sweep_config(tmp_path, "train.alpha=0.5")
    assert sweep._task_config(valid).train.alpha == 0.5


def test_the_failure_line_names_each_failed_job_and_its_error() -> None:
    failed = [
        {"overrides": ["seed=1", "train.alpha=9"], "error": "diverged"},
        {"overrides": ["seed=2"], "error": "killed"},
    ]
    assert sweep._failure_line(failed) == (
        "2 job(s) failed: job seed=1 train.alpha=9: diverged; job seed=2: killed"
    )
