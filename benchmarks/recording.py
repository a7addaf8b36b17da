"""Section i: what recording one run costs, split into pictures, curves, model and other.

One run as ``pipelines/run.py`` records it (the pipeline's own ``train_and_record`` and
``evaluate_and_record`` into a SQLite store), measured on two trees in the same
benchmark run: ``before`` (the package at a git revision, by default the last commit
before the recording changes of issue 12) and ``after`` (this tree). Each runs in its
own process (``--probe``), with its ``src`` first on PYTHONPATH; the processes take
turns, so a change in the machine's load falls on both alike. A tree of the flat package
(before issue 22) is probed by this file as it was then, which knows that layout.

The pipeline's functions are wrapped to time them: the four pictures
(``pipeline.plots.save_*``), the metric histories (``RunLog.history``, plus the wait for
their asynchronous batches, ``tracking.runs.await_pending``), the pyfunc model
(``tracking.models.log_model``); *other* is the rest of the recording (run creation and
tags, params, files, metrics, closing). Training is excluded: it runs once per process,
and later runs reuse its result (their accuracy checkpoints then see the final network:
the same number of points to log).

    python benchmarks/recording.py [--before REVISION] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("pictures", "curves", "model", "other", "recording")
# The last commit before per-run recording was made cheaper.
BEFORE_REVISION = "b2ac619"
# The last commit of the flat package: its probe, this file then,
# measures a tree of that layout such as BEFORE_REVISION.
FLAT_LAYOUT_REVISION = "a3b961e"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


# ---- the probe, inside one tree's process ---------------------------------------------


def _timed(spent: dict[str, float], part: str, function: Callable) -> Callable:
    """``function``, adding its time to ``part``; a call made inside another timed call
    (log_curve calls log_points) is counted once, by the outer one."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _inside:
            return function(*args, **kwargs)
        _inside.append(part)
        started = {name: clock() for name, clock in CLOCKS.items()}
        try:
            return function(*args, **kwargs)
        finally:
            for name, clock in CLOCKS.items():
                spent[f"{part} {name}"] += clock() - started[name]
            _inside.pop()

    return wrapper


_inside: list[str] = []


def probe(iterations: int, runs: int) -> list[dict[str, float]]:
    """``runs`` recorded runs after one warm-up; seconds per part, wall and CPU."""
    from threadpoolctl import threadpool_limits

    from digits_nn import config
    from digits_nn.core.training import UNWATCHED, Watch
    from digits_nn.pipeline import plots, recording, steps
    from digits_nn.pipeline.prepared import PreparedData, prepare
    from digits_nn.tracking import runs as run_lifecycle
    from digits_nn.tracking.runs import RunLog
    from digits_nn.tracking.store import open_store

    spent: dict[str, float] = {}
    for name in ("save_cost_curve", "save_confusion_matrix", "save_misclassified",
                 "save_first_layer_weights"):  # fmt: skip
        setattr(plots, name, _timed(spent, "pictures", getattr(plots, name)))
    RunLog.history = _timed(spent, "curves", RunLog.history)  # type: ignore[method-assign]
    run_lifecycle.await_pending = _timed(spent, "curves", run_lifecycle.await_pending)
    recording.log_model = _timed(spent, "model", recording.log_model)
    trained = {}
    fit = steps.fit

    def fit_once(
        cfg: config.Config, data: PreparedData, watch: Watch = UNWATCHED, start: None = None
    ):
        if "result" not in trained:
            trained["result"] = fit(cfg, data)
        result = copy.deepcopy(trained["result"])
        for step in range(cfg.tracking.accuracy_every, iterations + 1, 100):
            if watch.checkpoint is not None:
                watch.checkpoint(step, result.network)
        return result

    steps.fit = fit_once
    out = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    cfg = config.parse({"train": {"iterations": iterations}, "tracking": {"uri": None}})
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{out / 'mlflow.db'}"
    store = open_store(cfg.tracking)
    data = prepare(cfg)
    md5 = "0123456789abcdef0123456789abcdef"
    run_data = recording.RunData(data.split, md5, "data/processed/split.npz")
    samples = []
    with threadpool_limits(limits=1, user_api="blas"):
        for run in range(runs + 1):
            paths = cfg.paths.under(out / f"run{run}")
            fit_once(cfg, data)  # training is not recording
            spent.clear()
            spent.update({f"{part} {clock}": 0.0 for part in PARTS for clock in CLOCKS})
            started = {name: clock() for name, clock in CLOCKS.items()}
            with recording.new_run(store, cfg, run_data) as logged:
                ctx = steps.RunContext(cfg, logged, paths)
                result = steps.train_and_record(ctx, data)
                steps.evaluate_and_record(ctx, result, data)
            for name, clock in CLOCKS.items():
                total = clock() - started[name]
                parts = sum(spent[f"{part} {name}"] for part in PARTS[:3])
                spent[f"recording {name}"] = total
                spent[f"other {name}"] = total - parts
            history = store.client.get_metric_history(logged.run_id, "train_cost")
            if len(history) != iterations:
                raise RuntimeError(f"{len(history)} of {iterations} cost points arrived")
            if run:  # the first is the warm-up
                samples.append(dict(spent))
    return samples


# ---- the section ----------------------------------------------------------------------


def _probe_process(
    tree: Path, probe_script: Path, iterations: int, runs: int
) -> list[dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"PYTHONPATH": str(tree / "src"), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(probe_script), "--probe", str(iterations), str(runs)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"recording probe on {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _export(revision: str, path: str, destination: Path) -> Path:
    """``path`` (a file or folder) as it is at ``revision`` (git archive), under
    ``destination``; returns ``destination / path``."""
    archive = subprocess.run(
        ["git", "archive", revision, path], cwd=ROOT, capture_output=True, check=True
    ).stdout
    destination.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination / path


def _probe_for(tree: Path, scratch: Path) -> Path:
    """The probe that knows ``tree``'s layout: this file for the package by role, the
    file of ``FLAT_LAYOUT_REVISION`` for the flat package it replaced."""
    if (tree / "src" / "digits_nn" / "core").is_dir():
        return Path(__file__).resolve()
    return _export(FLAT_LAYOUT_REVISION, "benchmarks/recording.py", scratch / "flat-probe")


def section_recording(
    before: str, iterations: int, rounds: int, runs: int
) -> tuple[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        scratch = Path(tmp)
        trees = {"before": _export(before, "src", scratch / "before").parent, "after": ROOT}
        probes = {name: _probe_for(tree, scratch) for name, tree in trees.items()}
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, tree in trees.items():
                samples[name] += _probe_process(tree, probes[name], iterations, runs)
    median = {
        name: {key: statistics.median(s[key] for s in runs_) for key in runs_[0]}
        for name, runs_ in samples.items()
    }
    rows = []
    for part in PARTS:
        cells = [part]
        for clock in CLOCKS:
            b, a = median["before"][f"{part} {clock}"], median["after"][f"{part} {clock}"]
            cells += [f"{b:.3f}", f"{a:.3f}", f"{b / a:.2f}" if a > 0 else "-"]
        rows.append(cells)
    from timing import table

    n = len(samples["after"])
    text = [
        f"### i. Recording one run ({iterations} iterations, SQLite store, tracking on)\n",
        f"`before`: the package at {before} (before this change); `after`: this tree. Seconds,"
        f" median of {n} runs per tree, each tree in its own process, the processes"
        " taking turns. *curves*: logging the metric histories, including the wait for"
        " their asynchronous batches; with asynchronous logging part of that work runs"
        " in a thread while the run goes on, so *wall* can fall below *CPU*. *other*:"
        " run, tags, params, files, metrics, closing. Training excluded.\n",
        table(
            [
                "part",
                "wall before",
                "wall after",
                "before/after",
                "CPU before",
                "CPU after",
                "before/after",
            ],
            rows,
        ),
        "",
        f"**Recording one run: {median['before']['recording wall']:.2f} s -> "
        f"{median['after']['recording wall']:.2f} s wall"
        f" ({median['before']['recording wall'] / median['after']['recording wall']:.2f}×).**\n",
    ]
    return "\n".join(text), {"median": median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", nargs=2, type=int, metavar=("ITERATIONS", "RUNS"))
    parser.add_argument("--before", default=BEFORE_REVISION, help="git revision")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(*args.probe)))
        return
    sys.path.insert(0, str(HERE))
    if args.quick:
        print(section_recording(args.before, 300, rounds=1, runs=1)[0])
    else:
        print(section_recording(args.before, 10_000, rounds=2, runs=3)[0])


if __name__ == "__main__":
    main()
