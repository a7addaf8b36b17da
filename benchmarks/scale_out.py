"""Scale-out figures (issue 11), measured against the local stack it brings up itself:

- j. per-job overhead of the 8-job classic sweep on joblib, submitit_slurm and ray, all
  logging to the stack's MLflow server, 2 jobs at a time;
- k. the server's logging throughput: 3000-point curves in batches of 1000, from 1 and
  from 4 concurrent client processes;
- l. how long a running job takes to fail once the server stops, and what it says.

    python benchmarks/bench.py --only scale-out   # this section alone, into docs/benchmarks.md
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from timing import table

POINTS = 3000
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_slurm": ["hydra/launcher=submitit_slurm"],
    "ray": ["hydra/launcher=ray"],  # RAY_ADDRESS from the stack's env: its head
}


class StackSession:
    """The stack up in ``clone``'s folder for the duration of the benchmark."""

    def __init__(self, clone_path: Path) -> None:
        self.path = clone_path
        started = time.perf_counter()
        self._stack("up", "--ray")
        self.up_s = time.perf_counter() - started
        self.env = {}
        for line in self._stack("env").splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = shlex.split(value)[0]

    def _stack(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "digits_nn.stack", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def close(self) -> None:
        self._stack("purge")  # its services folder lives outside the clone


def _sweep(clone, stack: StackSession, launcher: list[str], jobs: int, out: Path) -> tuple:
    command = [
        sys.executable,
        "pipelines/run.py",
        "-m",
        *launcher,
        "seed=" + ",".join(map(str, range(jobs))),
        f"hydra.sweep.dir={out}",
    ]
    env = {**clone.env, **stack.env}
    start = time.perf_counter()
    subprocess.run(command, cwd=clone.path, env=env, capture_output=True, check=True)
    wall = time.perf_counter() - start
    with open(out / "sweep_summary.csv") as handle:
        durations = [float(row["duration_s"]) for row in csv.DictReader(handle)]
    return wall, durations


def section_launchers(clone, stack: StackSession, jobs: int, repeats: int) -> tuple[str, dict]:
    rows, found = [], {}
    for name, args in LAUNCHERS.items():
        runs = [
            _sweep(clone, stack, args, jobs, clone.path / f"bench-{name}-{i}")
            for i in range(repeats)
        ]
        walls = sorted(w for w, _ in runs)
        wall = walls[len(walls) // 2]
        job_s = sorted(sum(d) / len(d) for _, d in runs)[len(runs) // 2]
        overhead = (wall - jobs * job_s / 2) / jobs
        found[name] = overhead
        rows.append([name, f"{wall:.1f}", f"{walls[0]:.1f}", f"{job_s:.2f}", f"{overhead:.2f}"])
    text = [
        f"### j. Per-job overhead per launcher ({jobs}-job classic sweep, {repeats} runs each)\n",
        "Every launcher logs to the stack's MLflow server (PostgreSQL, accounts, artifacts"
        " over HTTP) and runs 2 jobs at a time on this 2-core machine: joblib with 2"
        " workers, SLURM with 2 CPUs and 1 per job, Ray with 2 CPUs and 1 per task."
        " *overhead per job*: (wall - jobs × job s / 2) / jobs: scheduling, process start,"
        " imports, Hydra and the parent run, shared out.\n",
        table(["launcher", "wall median s", "wall min s", "job s", "overhead per job s"], rows),
        "",
        f"The stack came up in {stack.up_s:.1f} s (`python -m digits_nn.stack up --ray`,"
        " new PostgreSQL cluster and MLflow schema).\n",
    ]
    return "\n".join(text), found


def _log_curve(env: dict[str, str], run_name: str) -> float:
    """One client: a run, a 3000-point curve in batches of 1000, closed; its seconds."""
    os.environ.update(env)
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("digits-nn-bench")
    experiment_id = experiment.experiment_id if experiment else None
    if experiment_id is None:
        try:
            experiment_id = client.create_experiment("digits-nn-bench")
        except Exception:  # another client created it first
            experiment_id = client.get_experiment_by_name("digits-nn-bench").experiment_id
    start = time.perf_counter()
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    now = int(time.time() * 1000)
    points = [Metric("train_cost", 1.0 / (step + 1), now, step) for step in range(POINTS)]
    for first in range(0, POINTS, 1000):
        client.log_batch(run_id, metrics=points[first : first + 1000])
    client.set_terminated(run_id)
    elapsed = time.perf_counter() - start
    if len(client.get_metric_history(run_id, "train_cost")) != POINTS:
        raise RuntimeError("points were lost")
    return elapsed


def section_throughput(stack: StackSession, repeats: int) -> tuple[str, dict]:
    rows, found = [], {}
    context = multiprocessing.get_context("spawn")
    for clients in (1, 4):
        walls = []
        with context.Pool(clients) as pool:
            pool.starmap(_log_curve, [(stack.env, "warm-up")] * clients)
            for repeat in range(repeats):
                start = time.perf_counter()
                pool.starmap(_log_curve, [(stack.env, f"r{repeat}")] * clients)
                walls.append(time.perf_counter() - start)
        walls.sort()
        wall = walls[len(walls) // 2]
        found[clients] = clients * POINTS / wall
        rows.append([clients, f"{wall:.2f}", f"{found[clients]:.0f}"])
    text = [
        f"### k. MLflow server logging throughput ({repeats} runs, median)\n",
        f"Each client opens a run, logs a {POINTS}-point curve in batches of 1000 and closes"
        " it, as a sweep job does; every point is checked to have arrived.\n",
        table(["concurrent clients", "wall s", "points/s"], rows),
        "",
    ]
    return "\n".join(text), found


def section_server_down(clone, stack: StackSession) -> tuple[str, dict]:
    """A long training run logging to the server; the server stopped once its run is
    RUNNING; the seconds until the job exits, and its last line."""
    from digits_nn.stack.layout import STACK_DIR
    from digits_nn.stack.processes import stop_pid

    env = {**clone.env, **stack.env}
    command = [sys.executable, "pipelines/run.py", "train.iterations=20000"]
    job = subprocess.Popen(
        command, cwd=clone.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        os.environ.update(stack.env)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=stack.env["MLFLOW_TRACKING_URI"])
        deadline = time.monotonic() + 300
        running = []
        while not running and time.monotonic() < deadline and job.poll() is None:
            time.sleep(1)
            experiment = client.get_experiment_by_name("digits-nn")
            if experiment is not None:
                running = client.search_runs(
                    [experiment.experiment_id], "attributes.status = 'RUNNING'"
                )
        if not running:
            raise RuntimeError("the job's run never started")
        server = json.loads((clone.path / STACK_DIR / "state.json").read_text())
        stopped = time.perf_counter()
        stop_pid(server["mlflow"]["pid"])
        stdout, _ = job.communicate(timeout=600)
        took = time.perf_counter() - stopped
    finally:
        if job.poll() is None:
            job.kill()
        stack._stack("up", "--ray")  # the server back
    # The job's own message is its log's last line (Hydra logs to stdout); MLflow's
    # asynchronous logger may have written to stderr after it.
    last = [line for line in stdout.splitlines() if line.strip()][-1:]
    text = [
        "### l. A running job when the server stops\n",
        "`pipelines/run.py train.iterations=20000` logging to the stack's server; the"
        " server process stopped as soon as the job's run shows RUNNING, early in its"
        " training. A job talks to the server before and after its training, not during"
        " it, so the time below includes the rest of the training; then its next call"
        " fails within the retry budget the project sets (`tracking.store.HTTP_RETRY_BUDGET`).\n",
        table(
            ["", ""],
            [
                ["exit status", job.returncode],
                ["seconds from the stop to the job's exit", f"{took:.1f}"],
                ["its last line", f"`{last[0][:200] if last else ''}`"],
            ],
        ),
        "",
    ]
    return "\n".join(text), {"fail s": took}


def section(clone, quick: bool) -> tuple[str, dict]:
    stack = StackSession(clone.path)
    try:
        jobs, repeats = (2, 1) if quick else (8, 3)
        text_j, found_j = section_launchers(clone, stack, jobs, repeats)
        text_k, found_k = section_throughput(stack, 1 if quick else 5)
        text_l, found_l = section_server_down(clone, stack)
    finally:
        stack.close()
    text = "## Scale out\n\n" + text_j + "\n" + text_k + "\n" + text_l
    return text, {"overhead": found_j, "points/s": found_k, "server down": found_l}


def replace_section(document: str, text: str) -> str:
    """``document`` with its "## Scale out" section replaced by (or ending with) ``text``."""
    head, marker, rest = document.partition("## Scale out\n")
    if not marker:
        return document.rstrip("\n") + "\n\n" + text
    following = rest.find("\n## ")
    tail = rest[following + 1 :] if following >= 0 else ""
    return head + text + ("\n" + tail if tail else "")
