"""The launching side's plan: budgets grouped into one launch, finished configurations
left out, and the launches with the most training first."""

from __future__ import annotations

from pathlib import Path

from digits_nn.sweeps import plan
from digits_nn.sweeps.protocol import BUDGETS_ENV, job_key
from helpers import SWEEP_GRID as GRID
from helpers import sweep_config


def test_budgets_of_one_configuration_are_one_launch_trained_to_the_largest() -> None:
    launches = plan.plan(GRID, done=set(), share_budgets=True)
    assert [launch.members[0] for launch in launches] == [
        ["train.alpha=0.25", "train.iterations=3000"],
        ["train.alpha=1.0", "train.iterations=3000"],
    ]
    assert [launch.shared for launch in launches] == [[1000, 500], [1000, 500]]
    assert sorted(map(job_key, (m for launch in launches for m in launch.members))) == sorted(
        map(job_key, GRID)
    )
    unshared = plan.plan(GRID, done=set(), share_budgets=False)
    assert [launch.members for launch in unshared] == [[job] for job in GRID]
    assert all(not launch.shared for launch in unshared)


def test_finished_configurations_are_not_launched_again() -> None:
    done = {job_key(GRID[2]), job_key(GRID[3])}  # a0.25 i3000, a1.0 i500
    launches = plan.plan(GRID, done, share_budgets=True)
    planned = [m for launch in launches for m in launch.members]
    assert sorted(map(job_key, planned)) == sorted(
        job_key(j) for j in GRID if job_key(j) not in done
    )
    assert launches[0].members[0] == ["train.alpha=0.25", "train.iterations=1000"]
    assert launches[0].shared == [500]


def test_a_launch_carries_its_folder_and_budgets_in_its_hydra_config(tmp_path: Path) -> None:
    (launch, *_) = plan.plan(GRID, done=set(), share_budgets=True)
    job = sweep_config(tmp_path, "hydra.job.num=0", *launch.overrides)
    assert job.hydra.sweep.subdir == job_key(launch.members[0])
    assert dict(job.hydra.job.env_set) == {BUDGETS_ENV: "1000,500"}
    assert list(job.hydra.overrides.task) == launch.members[0]  # the run's own overrides


def test_the_launches_with_the_most_training_go_first() -> None:
    grid = [
        [f"train.iterations={budget}", f"model.hidden_size={hidden}"]
        for budget in (500, 10000)
        for hidden in (10, 100)
    ]
    defaults = {"train.iterations": 3000, "model.hidden_size": 30, "model.hidden_sizes": None}
    ordered = plan.longest_first(plan.plan(grid, set(), False), defaults)
    assert [launch.members[0] for launch in ordered] == [grid[3], grid[2], grid[1], grid[0]]
    # Shared budgets: a group costs what its largest budget costs.
    shared = plan.longest_first(plan.plan(grid, set(), True), defaults)
    assert [launch.members[0] for launch in shared] == [grid[3], grid[2]]
    assert plan.work(["seed=1"], defaults) == 3000 * (30 + 10)
    assert plan.work(["model.hidden_sizes=[100,50]"], defaults) == 3000 * (150 + 10)
    # An ensemble trains every member; augmented rows add to every pass.
    assert plan.work(["model.members=5"], defaults) == 5 * 3000 * (30 + 10)
    assert plan.work(["data.augment.copies=8"], defaults) == 9 * 3000 * (30 + 10)
    best = {**defaults, "model.members": 5, "data.augment.copies": 8}
    assert plan.work(["seed=1"], best) == 45 * 3000 * (30 + 10)
    # Equal work keeps the sweep's order; a value that cannot be read (the job will fail
    # at once) goes last.
    same = [["model.hidden_size=abc"], ["seed=2"], ["seed=1"]]
    kept = plan.longest_first(plan.plan(same, set(), True), defaults)
    assert [launch.members[0] for launch in kept] == [same[1], same[2], same[0]]


def test_a_members_overrides_keep_their_order_with_the_budget_replaced() -> None:
    assert plan.with_budget(["train.iterations=50", "seed=1"], 20) == [
        "train.iterations=20",
        "seed=1",
    ]
    assert plan.budget_of(["seed=1"]) is None


# A configuration listed twice (seed=0,0) would run as two jobs training into one folder.
def test_a_configuration_listed_twice_is_planned_once() -> None:
    listed = [
        ["seed=0"],
        ["seed=1"],
        ["seed=0"],
        ["train.l2=0.1", "seed=1"],
        ["seed=1", "train.l2=0.1"],
    ]
    assert plan.unique(listed) == [["seed=0"], ["seed=1"], ["train.l2=0.1", "seed=1"]]
