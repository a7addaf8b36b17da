"""Sections e-g: process start-up, DVC, MLflow and sweeps, in a temporary git copy.

The copy holds the project's tracked files (``git ls-files``) as they are in the work
tree, committed to a fresh repository, so that DVC and the runs never touch the real
workspace or its MLflow store. Its ``src`` comes first on PYTHONPATH, so the copy runs
its own code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from timing import Timing, measure, table

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["load", "scale", "split", "onehot", "train", "evaluate"]
HEAVY = ("mlflow", "sklearn", "matplotlib", "scipy", "hydra")


class Clone:
    """A copy of the project's tracked files (or of ``source``, a tree of another
    revision) as a repository of its own, its ``src`` first on PYTHONPATH. ``warmup``:
    runs before the timed ones of each command (0 for --quick, a smoke test whose
    timings mean nothing)."""

    def __init__(self, iterations: int, warmup: int = 1, source: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="digits-bench-"))
        if source is not None:
            shutil.copytree(source, self.path, dirs_exist_ok=True)
        else:
            tracked = subprocess.run(
                ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.split("\0")
            for name in filter(None, tracked):
                file = ROOT / name
                if file.is_file():
                    (self.path / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, self.path / name)
        params_file = self.path / "params.yaml"
        params = yaml.safe_load(params_file.read_text())
        params["train"]["iterations"] = iterations
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        self.iterations = iterations
        self.warmup = warmup
        bin_dir = str(Path(sys.executable).parent)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        self.env |= {
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": str(self.path / "src"),
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@localhost",
        }
        for command in (
            ["git", "init", "-q"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", "benchmark copy"],
        ):
            self.run(command)

    def run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, cwd=self.path, env=self.env, capture_output=True, text=True, check=check
        )

    def timed(self, command: list[str], repeats: int) -> Timing:
        return measure(lambda _: self.run(command), repeats=repeats, warmup=self.warmup)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def python() -> str:
    return sys.executable


def _import_probe(stage: str) -> list[str]:
    """A process that runs the stage script's imports but not its main()."""
    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1], run_name='imports_only');"
        f" print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    return [python(), "-c", code, f"pipelines/{stage}.py"]


def _loaded_by_full_run(clone: Clone, command: list[str]) -> list[str]:
    """Top-level heavy packages imported during the whole command (-X importtime)."""
    done = clone.run([python(), "-X", "importtime", *command])
    found = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name in HEAVY:
                found.add(name)
    return sorted(found)


def section_pipeline(clone: Clone, repeats: int) -> tuple[str, dict]:
    """e: dvc repro --force against run.py in one process, a no-op repro, per stage."""
    it = clone.iterations
    repro = clone.timed(["dvc", "repro", "--force"], repeats)
    noop = clone.timed(["dvc", "repro"], repeats)
    in_process = clone.timed([python(), "pipelines/run.py", f"train.iterations={it}"], repeats)
    start_up = clone.timed([python(), "-c", "pass"], repeats)
    numpy_only = clone.timed([python(), "-c", "import numpy"], repeats)
    rows = []
    for stage in STAGES:
        imports = measure(
            lambda _, s=stage: clone.run(_import_probe(s)), repeats=repeats, warmup=clone.warmup
        )
        whole = clone.timed([python(), f"pipelines/{stage}.py"], repeats)
        heavy = _loaded_by_full_run(clone, [f"pipelines/{stage}.py"])
        rows.append(
            [
                stage,
                f"{whole.median:.2f}",
                f"{imports.median:.2f}",
                f"{whole.median - imports.median:.2f}",
                ", ".join(heavy) or "none",
            ]
        )
    off = _loaded_by_full_run(
        clone, ["pipelines/run.py", f"train.iterations={it}", "tracking.enabled=false"]
    )
    ratio = repro.median / in_process.median
    text = [
        f"### e. `dvc repro --force` against `python pipelines/run.py` ({it} iterations,"
        " tracking on in both, store already created)\n",
        table(
            ["command", "median s", "min s"],
            [
                [
                    "dvc repro --force (6 stages, 6 processes)",
                    f"{repro.median:.2f}",
                    f"{repro.min:.2f}",
                ],
                [
                    "python pipelines/run.py (same config, 1 process)",
                    f"{in_process.median:.2f}",
                    f"{in_process.min:.2f}",
                ],
                ["dvc repro, nothing changed (no-op)", f"{noop.median:.2f}", f"{noop.min:.2f}"],
                [
                    "python -c pass (interpreter start)",
                    f"{start_up.median:.3f}",
                    f"{start_up.min:.3f}",
                ],
                ["python -c 'import numpy'", f"{numpy_only.median:.3f}", f"{numpy_only.min:.3f}"],
            ],
        ),
        "",
        f"**dvc repro --force / run.py = {ratio:.2f}** (target <= 2).\n",
        "Per stage, run by hand in the copy (`python pipelines/<stage>.py`): *imports* is a"
        " process that runs the script's imports only (interpreter start included), *work*"
        " the rest; *heavy imports* are the top-level packages among"
        f" {', '.join(HEAVY)} that the whole stage imported (`python -X importtime`).\n",
        table(["stage", "whole s", "imports s", "work s", "heavy imports"], rows),
        "",
        "`python pipelines/run.py tracking.enabled=false` imports: "
        f"{', '.join(off) or 'none of them'} (no mlflow: it is imported only where a run"
        " is logged).\n",
    ]
    return "\n".join(text), {"repro / run.py": ratio}


def section_mlflow(clone: Clone, repeats: int) -> tuple[str, dict]:
    """f: the one-time import and store opening, then the logging of one run."""
    probe = [python(), str(Path(__file__).with_name("mlflow_probe.py")), str(clone.iterations)]
    samples: dict[str, list[float]] = {}
    for _ in range(clone.warmup):
        clone.run(probe)  # warm-up: the store exists and the files are in the page cache
    for _ in range(repeats):
        for key, value in json.loads(clone.run(probe).stdout.strip().splitlines()[-1]).items():
            samples.setdefault(key, []).append(value)
    median = {key: sorted(v)[len(v) // 2] for key, v in samples.items()}
    run_s = sum(v for k, v in median.items() if k.startswith("run:"))
    log_s = sum(v for k, v in median.items() if k.startswith("log:"))
    rows = [
        [key, f"{value * 1e3:.1f}", f"{min(samples[key]) * 1e3:.1f}"]
        for key, value in median.items()
        if key != "points logged"
    ]
    model_s = median.get("model: pyfunc model", 0.0)
    share = log_s / run_s
    text = [
        f"### f. What MLflow adds to a {clone.iterations}-iteration run\n",
        f"One process per repeat ({repeats} repeats; `benchmarks/mlflow_probe.py`), the"
        " pipeline's own recording calls, SQLite store already created. The curves are"
        f" {int(median['points logged'])} metric points in batches of 1000.\n",
        table(["part", "median ms", "min ms"], rows),
        "",
        f"Run without MLflow: {run_s:.2f} s. Logging (create run to close, excluding import"
        f" and store opening): {log_s:.2f} s = **{share * 100:.1f} % of the run** (target"
        f" <= 15 %). One-time cost: import {median['mlflow: import']:.2f} s + open store"
        f" {median['mlflow: open store']:.2f} s.\n",
        f"Logging the pyfunc model (issue 6) adds {model_s:.2f} s more"
        f" ({(log_s + model_s) / run_s * 100:.1f} % with it). Most of that is MLflow's own"
        " check that the installed packages satisfy the model's requirements, which"
        " `mlflow.pyfunc.save_model` runs whenever requirements are given.\n",
    ]
    return "\n".join(text), {"logging share": share}


def _sweep(clone: Clone, launcher: list[str], seeds: int, out: Path) -> tuple[float, list[float]]:
    shutil.rmtree(out, ignore_errors=True)
    command = [
        python(),
        "pipelines/run.py",
        "-m",
        "seed=" + ",".join(map(str, range(seeds))),
        f"train.iterations={clone.iterations}",
        f"hydra.sweep.dir={out}",
        *launcher,
    ]
    start = time.perf_counter()
    clone.run(command)
    wall = time.perf_counter() - start
    durations = [json.loads(p.read_text())["duration_s"] for p in out.glob("*/record.json")]
    if len(durations) != seeds:
        raise RuntimeError(f"sweep {launcher} finished {len(durations)} of {seeds} jobs")
    return wall, durations


def section_sweep(clone: Clone, repeats: int, jobs: int) -> tuple[str, dict]:
    """g: the same sweep on joblib with 2 workers and on the basic (sequential) launcher."""
    launchers = {
        "basic (sequential)": (["hydra/launcher=basic"], 1),
        "joblib, 2 workers": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 2),
    }
    rows, walls = [], {}
    out = clone.path / "bench-sweep"
    for name, (args, workers) in launchers.items():
        for _ in range(clone.warmup):
            _sweep(clone, args, jobs, out)
        runs = [_sweep(clone, args, jobs, out) for _ in range(repeats)]
        wall = Timing([w for w, _ in runs])
        job_s = sorted(sum(d) / len(d) for _, d in runs)[len(runs) // 2]
        overhead = (wall.median - jobs * job_s / workers) / jobs
        walls[name] = wall.median
        rows.append(
            [name, f"{wall.median:.2f}", f"{wall.min:.2f}", f"{job_s:.2f}", f"{overhead:.2f}"]
        )
    speedup = walls["basic (sequential)"] / walls["joblib, 2 workers"]
    text = [
        f"### g. A {jobs}-job sweep (`-m seed=0..{jobs - 1}`, {clone.iterations} iterations"
        " each, tracking on, store already created)\n",
        "*job s*: the median of the jobs' own durations (from their `record.json`: data,"
        " training, evaluation, files and logging). *overhead per job*: (wall - jobs × job s"
        " / workers) / jobs, i.e. process start-up, imports, Hydra and the sweep's parent"
        " run, shared out.\n",
        table(["launcher", "wall median s", "wall min s", "job s", "overhead per job s"], rows),
        "",
        f"**joblib (2 workers) is {speedup:.2f}× faster than sequential** (target >= 1.7).\n",
    ]
    return "\n".join(text), {"joblib speedup": speedup}
