"""Section s: the reference grid (`sweep=grid`, 64 jobs) with shared budgets on and off.

Both on joblib with 2 workers, tracking on, in the same run and the same temporary copy.
The floor is the two-core compute of the trainings that cannot be avoided: one training
to 10000 iterations per (alpha, hidden size) pair, timed here in this process on one
BLAS thread, halved for two cores. The profile splits the shared sweep's core-seconds
into that training, what one (alpha, hidden size) group's four child runs cost to
evaluate, draw and log (timed in a probe process, ``--probe``, and scaled to the 16
groups), and the rest: process and job start-up, data, Hydra, the parent run, summary.

    python benchmarks/bench.py --only s    # this section alone, into docs/benchmarks.md
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline_bench import Clone, python
from timing import table

ALPHAS = (0.05, 0.25, 1.0, 2.5)
HIDDEN = (10, 30, 60, 100)
BUDGETS = (500, 1000, 3000, 10000)
LARGEST = max(BUDGETS)
JOBS = len(ALPHAS) * len(HIDDEN) * len(BUDGETS)
SWEPT = ("train.alpha", "train.iterations", "model.hidden_size")
# Where one group's recording goes, by the functions the probe times: (module, name in
# it), where the name is looked up by the code that calls it.
PROBE_PARTS = {
    "evaluation": [("digits_nn.pipeline.steps", "evaluate")],
    "pictures": [
        ("digits_nn.pipeline.plots", name)
        for name in (
            "save_cost_curve",
            "save_confusion_matrix",
            "save_misclassified",
            "save_first_layer_weights",
        )
    ],
    "logging": [
        *(
            ("digits_nn.tracking.runs", f"RunLog.{name}")
            for name in ("params", "metrics", "history", "files", "datasets")
        ),
        ("digits_nn.pipeline.recording", "log_model"),
        ("digits_nn.tracking.runs", "await_pending"),
    ],
}


def _run_measured(clone: Clone, command: list[str]) -> tuple[float, float]:
    """Run ``command`` in ``clone``; its wall seconds and its process tree's CPU seconds.

    The tree is sampled with psutil every half second and each process's last reading
    kept: the sweep's long-lived processes (the launching one, the fork server, the
    joblib workers, reused from job to job) are all seen. getrusage cannot tell: the
    workers are the fork server's children, which nobody waits for.
    """
    import psutil

    cpu: dict[int, float] = {}
    # The output goes to a file, not a pipe: a 64-job sweep writes more than a pipe holds,
    # and nobody reads the pipe until the sweep ends.
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=clone.path, env=clone.env, stdout=output, stderr=subprocess.STDOUT
        )
        root = psutil.Process(process.pid)
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                for member in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        times = member.cpu_times()
                        cpu[member.pid] = times.user + times.system
            time.sleep(0.5)
        wall = time.perf_counter() - start
        if process.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{output.read()[-3000:]}")
    return wall, sum(cpu.values())


def _grid(clone: Clone, out: Path, *overrides: str) -> tuple[float, float]:
    """The grid's wall time and its process tree's CPU seconds."""
    shutil.rmtree(out, ignore_errors=True)
    command = [python(), "pipelines/run.py", "sweep=grid", "hydra.launcher.n_jobs=2"]
    return _run_measured(clone, [*command, *overrides, f"hydra.sweep.dir={out}"])


def _records(out: Path, share: bool) -> list[dict]:
    """The jobs' records of a grid this tree ran, each checked to have finished."""
    records = [json.loads(p.read_text()) for p in out.glob("*/record.json")]
    if len(records) != JOBS or any(r["status"] != "FINISHED" for r in records):
        raise RuntimeError(f"sweep=grid (share={share}) did not finish its {JOBS} jobs")
    return records


def _floor(iterations: int) -> float:
    """CPU seconds of one training per (alpha, hidden size) pair, on one BLAS thread."""
    from digits_nn import config
    from digits_nn.pipeline.fit import fit
    from digits_nn.pipeline.prepared import prepare

    total = 0.0
    for alpha in ALPHAS:
        for hidden in HIDDEN:
            cfg = config.parse(
                {
                    "train": {"alpha": alpha, "iterations": iterations},
                    "model": {"hidden_size": hidden},
                }
            )
            data = prepare(cfg)
            start = time.process_time()  # CPU: the same on a busy machine
            fit(cfg, data)
            total += time.process_time() - start
    return total


# ---- the probe: one group's four child runs, in a process of their own -----------------


def probe(hidden: int) -> dict[str, float]:
    """CPU seconds of one shared group (alpha 0.25, ``hidden``, the grid's budgets): its
    training, then each part of recording its four child runs, and the whole recording."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from digits_nn import config
    from digits_nn.pipeline import app
    from digits_nn.pipeline.prepared import prepare
    from digits_nn.sweeps import budgets
    from digits_nn.sweeps.job import record_shared
    from digits_nn.sweeps.protocol import SWEEP_JOB_TAG, job_key
    from digits_nn.tracking.store import open_store

    spent: dict[str, float] = defaultdict(float)
    for part, functions in PROBE_PARTS.items():
        for module_name, name in functions:
            _time_calls(spent, part, module_name, name)
    with initialize_config_dir(config_dir=str(Path.cwd() / "conf"), version_base=None):
        # The grid's own settings (sweep=grid), as its jobs have them.
        raw = compose(config_name="config", overrides=["sweep=grid", f"model.hidden_size={hidden}"])
    OmegaConf.update(raw, "train.iterations", LARGEST)
    cfg = config.parse(raw)
    open_store(cfg.tracking)  # the store and MLflow's imports, once per worker process
    data = prepare(cfg)
    start = time.process_time()
    shared = budgets.train_to_largest(cfg, data, list(BUDGETS), True)
    spent["training"] = time.process_time() - start
    start = time.process_time()
    out = Path.cwd() / "bench-probe"
    for budget in sorted(BUDGETS, reverse=True):
        member = raw.copy()
        OmegaConf.update(member, "train.iterations", budget)
        overrides = [f"train.iterations={budget}"]
        # Placed as a sweep job's run is, without a parent run, drawing pictures as a child
        # run of the sweep does (tracking.pictures).
        tags = {SWEEP_JOB_TAG: job_key(overrides)}
        drawn = cfg.tracking.pictures == "all"
        place = app.RunPlace(out / str(budget), overrides, tags, pictures=drawn)
        app.run(config.parse(member), place, lambda ctx, d: record_shared(ctx, d, shared))
    spent["recording"] = time.process_time() - start
    return dict(spent)


def _time_calls(spent: dict[str, float], part: str, module_name: str, name: str) -> None:
    """Add the time of every call of ``name`` in the module (``Class.method`` for a
    method) to ``part``."""
    import importlib

    owner = importlib.import_module(module_name)
    *classes, attribute = name.split(".")
    for class_name in classes:
        owner = getattr(owner, class_name)
    setattr(owner, attribute, _timed(spent, part, getattr(owner, attribute)))


_inside: list[str] = []


def _timed(spent: dict[str, float], part: str, function: Any) -> Any:
    """``function``, adding its CPU time to ``part`` (the process's, so the store's
    asynchronous logging thread counts too); nested timed calls count once."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _inside:
            return function(*args, **kwargs)
        _inside.append(part)
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[part] += time.process_time() - start
            _inside.pop()

    return wrapper


def _probe_process(clone: Clone, hidden: int) -> dict[str, float]:
    done = clone.run([python(), str(Path(__file__).resolve()), "--probe", str(hidden)])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _profile(clone: Clone) -> dict[str, float]:
    """One group per hidden size (alpha 0.25), summed, times the 4 alphas: the grid's
    training and recording seconds, by part, as one worker spends them."""
    total: dict[str, float] = defaultdict(float)
    for hidden in HIDDEN:
        for part, seconds in _probe_process(clone, hidden).items():
            total[part] += seconds * len(ALPHAS)
    return dict(total)


# ---- the section ------------------------------------------------------------------------


def section_grid(clone: Clone) -> tuple[str, dict]:
    out = clone.path / "bench-grid"
    walls, cpus, records = {}, {}, {}
    load_before = os.getloadavg()
    variants = {
        "shared budgets (default: pictures for the best run only)": [],
        "shared budgets, tracking.pictures=all": ["tracking.pictures=all"],
        "share_budgets=false": ["hydra.sweeper.share_budgets=false"],
    }
    # The store exists before the first grid, as a user's does after their first run:
    # creating and migrating it is a one-time cost, not the grid's.
    clone.run([python(), "pipelines/run.py", "train.iterations=1"])
    default_name = next(iter(variants))
    # The default grid three times, taking turns with the others: its median is the figure.
    order = [default_name, *list(variants)[1:2], default_name, *list(variants)[2:], default_name]
    default_runs: list[tuple[float, float]] = []
    for name in order:
        flags = variants[name]
        wall, cpu = _grid(clone, out, *flags)
        if name == default_name:
            default_runs.append((wall, cpu))
        walls[name], cpus[name] = wall, cpu
        records[name] = _records(out, not flags)
    walls[default_name] = statistics.median(wall for wall, _ in default_runs)
    cpus[default_name] = statistics.median(cpu for _, cpu in default_runs)
    # The grid as it ran before issue 12, for the figure the issue started from.
    before = _clone_at(BEFORE_REVISION, clone)
    try:
        before_wall, before_cpu = _grid(before, before.path / "bench-grid")
    finally:
        before.remove()
    default, drawn, unshared = variants
    # By the swept values: a variant's own overrides (tracking.pictures=all) are in its keys.
    accuracies = {
        name: {tuple(r["params"][key] for key in SWEPT): r["test_accuracy"] for r in rows}
        for name, rows in records.items()
    }
    same = all(a == accuracies[default] for a in accuracies.values())
    training = _floor(LARGEST)
    floor = training / 2
    load_after = os.getloadavg()
    speedup, cpu_speedup = walls[unshared] / walls[default], cpus[unshared] / cpus[default]
    profile = _profile(clone)
    rows = [
        [name, f"{walls[name]:.1f}", f"{walls[name] / floor:.2f}", f"{cpus[name]:.0f}",
         f"{cpus[name] / training:.2f}"]
        for name in variants
    ]  # fmt: skip
    rows.append(
        [
            f"before issue 12 ({BEFORE_REVISION})",
            f"{before_wall:.1f}",
            f"{before_wall / floor:.2f}",
            f"{before_cpu:.0f}",
            f"{before_cpu / training:.2f}",
        ]
    )
    rows.append(
        [
            f"floor: 16 trainings to {LARGEST} iterations / 2 cores",
            f"{floor:.1f}",
            "1.00",
            f"{training:.0f}",
            "1.00",
        ]
    )
    unshared_training = training * sum(BUDGETS) / LARGEST  # the time of an iteration is fixed
    recording = profile["recording"]
    named = {part: profile.get(part, 0.0) for part in PROBE_PARTS}  # 0: never called
    parts = [
        ["training (the floor, measured in this process)", training],
        *[[f"{part} (probe)", seconds] for part, seconds in named.items()],
        [
            "recording, the rest: files, run, tags, params.yaml, the logged model's files (probe)",
            recording - sum(named.values()),
        ],
        [
            "start-up and sweep: processes, imports, Hydra, data, parent run, summary, the"
            " best run's pictures",
            cpus[default] - training - recording,
        ],
    ]
    profile_rows = [
        [name, f"{seconds:.0f}", f"{seconds / cpus[default] * 100:.0f} %"]
        for name, seconds in parts
    ]
    rest_unshared = (cpus[unshared] - unshared_training) / JOBS
    rest_shared = (cpus[default] - training) / JOBS
    groups = JOBS // len(BUDGETS)
    # Both sweeps record the same 64 child runs, so what the unshared one spends beside
    # its training, over the shared one, is the start-up of its 48 more jobs: the most
    # sharing can save beside the training. (A difference of two sweeps measured alike;
    # the probe's recording figure, taken in another process, is too rough for it.)
    start_up = max((rest_unshared - rest_shared) * JOBS / (JOBS - groups), 0.0)
    bound = (unshared_training + JOBS * start_up) / (training + groups * start_up)
    pictures = cpus[drawn] - cpus[default]
    text = [
        "### s. The reference grid, `sweep=grid` (64 jobs), joblib with 2 workers\n",
        "The store is created by a one-iteration run before the first grid, as a user's"
        " exists after their first run. *CPU s*: user + system seconds of the sweep's whole"
        " process tree (sampled with"
        " psutil), which a busy machine inflates far less than the wall time. On an idle"
        " machine the two workers keep both cores busy and the wall time is about half of"
        f" it. Load average (1, 5, 15 min) {_load(load_before)} before the first grid,"
        f" {_load(load_after)} after the last.\n",
        table(["", "wall s", "wall / floor", "CPU s", "CPU / floor CPU"], rows),
        "",
        f"**The grid takes {walls[default] / floor:.2f}× its training floor in wall time and"
        f" {cpus[default] / training:.2f}× in CPU time** (target <= 1.5 on two cores; the"
        " wall figure holds on an idle machine only): the median of three runs taking turns"
        " with the others, which took"
        f" {', '.join(f'{wall:.1f}' for wall, _ in default_runs)} s."
        " Drawing every child run's pictures"
        f" (tracking.pictures=all) costs {pictures:.0f} CPU s more"
        f" ({cpus[drawn] / training:.2f}× the floor).\n",
        f"**Shared budgets are {speedup:.2f}× faster than unshared in wall time,"
        f" {cpu_speedup:.2f}× in CPU time** (target >= 1.6, aim 2). Same 64 test accuracies"
        f" in every grid: {same}. Against the grid before issue 12:"
        f" {before_wall / walls[default]:.2f}× in wall time, {before_cpu / cpus[default]:.2f}×"
        " in CPU time.\n",
        f"Where the default grid's {cpus[default]:.0f} CPU seconds go. The recording parts"
        " come from a probe that records one group of four budgets per hidden size (alpha"
        " 0.25) in its own process, as a worker records them, times the 4 alphas:\n",
        table(["part", "CPU s", "share"], profile_rows),
        "",
        f"Beside the training, a child run costs {rest_shared:.2f} CPU s shared and"
        f" {rest_unshared:.2f} CPU s unshared (its job's start-up included). Training"
        f" limits the ratio: the unshared grid trains {sum(BUDGETS)} iterations per pair"
        f" against {LARGEST}, {sum(BUDGETS) / LARGEST:.2f}×; sharing also saves"
        f" {JOBS - groups} job start-ups of about {start_up:.2f} CPU s. Recording the 64"
        " child runs costs both sweeps the same, so even if it cost nothing the CPU ratio"
        f" could not exceed {bound:.2f}× here.\n",
    ]
    found = {
        "share speedup": speedup,
        "cpu speedup": cpu_speedup,
        "same": same,
        "bound": bound,
        "before issue 12 speedup": before_wall / walls[default],
        "grid / floor": walls[default] / floor,
        "grid / floor CPU": cpus[default] / training,
    }
    return "\n".join(text), found


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.1f}" for value in load)


# ---- t: the 8-job classic sweep against the tree before issue 12 ------------------------

BEFORE_REVISION = "b2ac619"  # the last commit before issue 12's changes to sweeps


def _clone_at(revision: str, clone: Clone) -> Clone:
    """A copy of the whole tree at ``revision`` (git archive), set up as ``clone`` is."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "archive", revision], cwd=root, capture_output=True, check=True
    ).stdout
    exported = clone.path.parent / f"{clone.path.name}-{revision}"
    exported.mkdir(parents=True)
    try:
        subprocess.run(["tar", "-x", "-C", str(exported)], input=archive, check=True)
        return Clone(iterations=clone.iterations, source=exported)
    finally:
        shutil.rmtree(exported)


def section_eight(clone: Clone, repeats: int = 3) -> tuple[str, dict]:
    """The 8-job classic sweep on joblib with 2 workers, this tree against the tree at
    ``BEFORE_REVISION``, each in its own copy with its own ``src``; the two take turns."""
    before = _clone_at(BEFORE_REVISION, clone)
    trees = {"before issue 12 (" + BEFORE_REVISION + ")": before, "this tree": clone}
    command = [python(), "pipelines/run.py", "-m", "seed=0,1,2,3,4,5,6,7"]
    command += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    walls: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    try:
        for repeat in range(repeats + 1):  # the first round warms up
            for name, tree in trees.items():
                out = tree.path / f"bench-eight-{repeat}"
                wall, cpu = _run_measured(tree, [*command, f"hydra.sweep.dir={out}"])
                if repeat:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
    finally:
        before.remove()
    medians = {name: statistics.median(w) for name, w in walls.items()}
    cpu_medians = {name: statistics.median(c) for name, c in cpus.items()}
    rows = [
        [name, f"{medians[name]:.2f}", f"{min(walls[name]):.2f}", f"{cpu_medians[name]:.1f}"]
        for name in trees
    ]
    before_name = next(iter(trees))
    ratio = medians["this tree"] / medians[before_name]
    cpu_ratio = cpu_medians["this tree"] / cpu_medians[before_name]
    text = [
        "### t. The 8-job classic sweep (`-m seed=0..7`, 3000 iterations), joblib with 2"
        f" workers, before issue 12 and now ({repeats} runs each, taking turns)\n",
        table(["tree", "wall median s", "wall min s", "CPU median s"], rows),
        "",
        f"**This tree takes {ratio:.2f}× the wall time and {cpu_ratio:.2f}× the CPU time of"
        " the tree before issue 12** (target: no slower, <= 1.0 within noise).\n",
    ]
    return "\n".join(text), {"eight-job ratio": ratio, "eight-job CPU ratio": cpu_ratio}


# ---- u: the launch order, longest first against the grid's own order --------------------

LISTED_ORDER_REVISION = "d15b78b"  # the last commit that launched jobs in the order listed


def section_order(clone: Clone, repeats: int = 3) -> tuple[str, dict]:
    """The shared grid launched longest first (this tree) and in the order the grid lists
    its jobs (the tree at ``LISTED_ORDER_REVISION``); the two take turns."""
    listed = _clone_at(LISTED_ORDER_REVISION, clone)
    trees = {f"in the order listed ({LISTED_ORDER_REVISION})": listed, "longest first": clone}
    walls: dict[str, list[float]] = {name: [] for name in trees}
    accuracies: dict[str, list[dict]] = {name: [] for name in trees}
    try:
        for _ in range(repeats):
            for name, tree in trees.items():
                out = tree.path / "bench-order"
                wall, _ = _grid(tree, out)
                walls[name].append(wall)
                records = _records(out, True)
                accuracies[name].append({r["key"]: r["test_accuracy"] for r in records})
    finally:
        listed.remove()
    medians = {name: statistics.median(w) for name, w in walls.items()}
    rows = [
        [name, f"{medians[name]:.1f}", " ".join(f"{w:.1f}" for w in walls[name])] for name in trees
    ]
    listed_name = next(iter(trees))
    speedup = medians[listed_name] / medians["longest first"]
    same = all(a == accuracies[listed_name][0] for runs in accuracies.values() for a in runs)
    text = [
        "### u. The launch order of `sweep=grid` (shared budgets), joblib with 2 workers"
        f" ({repeats} runs each, taking turns)\n",
        table(["order", "wall median s", "each run s"], rows),
        "",
        f"**Longest first is {speedup:.2f}× faster than the order listed** (no target:"
        " kept if faster). Same 64 test accuracies in every run:"
        f" {same}.\n",
    ]
    return "\n".join(text), {"order speedup": speedup, "same": same}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            print(json.dumps(probe(int(sys.argv[2]))))
    else:
        raise SystemExit(f"usage: {sys.argv[0]} --probe HIDDEN (bench.py --only s runs it)")
