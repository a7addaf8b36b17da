"""What the tests share: running the project's commands as a user would, temporary clones,
reading a store's runs, Hydra configs composed in-process, and the import closure of a
file (what a DVC stage, the served model or a boundary check reads from the source).

Fixtures live in conftest.py; this module holds plain functions and constants
(``pythonpath = ["tests"]`` makes it importable as ``helpers``).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = "digits_nn"


# The Debian packages tests need beyond the stack's own (digits_nn.stack's SLURM_PACKAGES
# and POSTGRES_PACKAGES), which `make test` installs (DEBIAN_PACKAGES in the Makefile).
TEST_DEBIAN_PACKAGES = {
    "chromium": "the browser tests (tests/e2e/test_browser.py)",
    "python3": "the stack run by a plain user, who needs an interpreter of their own",
}


# ---- processes ------------------------------------------------------------------------


def default_sigint() -> None:
    """``preexec_fn`` for a child that the test interrupts with SIGINT: Ctrl-C's default.

    A suite started in the background (``cmd &`` in a script, as some CI runners do)
    leaves SIGINT ignored in every process it starts, and Python then keeps it ignored:
    the child would never see the test's Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def project_env(**extra: str) -> dict[str, str]:
    """The environment of a user in this virtualenv: `python` and `dvc` on PATH are its own,
    no tracking URI leaks in from the caller, and BLAS has one thread for determinism."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["CI"] = "true"
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=project_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def interrupt_sweep(
    command: list[str], cwd: Path, records: int, within: float = 600
) -> subprocess.CompletedProcess[str]:
    """Start ``command`` (a sweep), send it Ctrl-C once ``records`` job records exist
    under its sweep folder (or ``within`` seconds have passed), and wait for it to end;
    its exit status and output (stdout and stderr together)."""
    sweep_dir = cwd / next(a for a in command if a.startswith("hydra.sweep.dir=")).split("=")[1]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=project_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + within
    while len(list(sweep_dir.glob("*/record.json"))) < records and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0].decode()
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def dvc(*args: str, cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=check, **env)


def run_app(repo: Path, *overrides: str, check: bool = True, **env: str):
    """``python pipelines/run.py <overrides>`` in ``repo``."""
    return run([sys.executable, "pipelines/run.py", *overrides], cwd=repo, check=check, **env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def served_digits(server: subprocess.Popen, port: int, columns: list[str], rows: list) -> list:
    """The digits `mlflow models serve`, started as ``server`` on 127.0.0.1:``port``,
    answers for ``rows`` sent as a dataframe_split: asked again until it is up, failing if
    it exits or gives no answer within 180 s."""
    body = json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, f"mlflow models serve exited {server.returncode}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                answer = json.loads(response.read())
        except OSError:
            time.sleep(1)
            continue
        return [row["digit"] if isinstance(row, dict) else row for row in answer["predictions"]]
    raise AssertionError("mlflow models serve did not answer within 180 s")


# ---- clones and their stores -------------------------------------------------------------


def make_clone(destination: Path) -> Path:
    """The working tree as git sees it (tracked and untracked, minus ignored files),
    committed into a fresh repository: what a user gets from `git clone`, including
    uncommitted work in progress."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=destination, check=True)
    subprocess.run(["git", "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=destination, check=True)
    return destination


def mlflow_runs(repo: Path):
    """The client and every run of the repository's store. Taken under the pipeline's
    own lock: a reader that opens a store while a process is still creating it would
    race its schema migration."""
    from filelock import FileLock
    from mlflow import MlflowClient

    with FileLock(f"{repo / 'mlflow.db'}.lock", timeout=120):
        client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("digits-nn")
    if experiment is None:
        return client, []
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def datasets_of(run_) -> dict[tuple[str, str], object]:
    """(name, context) -> the mlflow Dataset entity, for each dataset input of a run."""
    found = {}
    for item in run_.inputs.dataset_inputs:
        [context] = [tag.value for tag in item.tags if tag.key == "mlflow.data.context"]
        found[(item.dataset.name, context)] = item.dataset
    return found


@contextmanager
def global_tracking_uri(store_uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to ``store_uri`` for the block only: set for good,
    it would point every later test of the same worker at this store."""
    import mlflow

    mlflow.set_tracking_uri(store_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)


def search_runs(store_uri: str, filter_string: str = "") -> list:
    """``mlflow.search_runs`` over the digits-nn experiment of ``store_uri``."""
    import mlflow

    with global_tracking_uri(store_uri):
        return mlflow.search_runs(
            experiment_names=["digits-nn"], filter_string=filter_string, output_format="list"
        )


def tiny_run_data():
    """A few rows, as a run records them (its two dataset inputs), and a made-up md5."""
    from digits_nn.data.steps import Split
    from digits_nn.pipeline.recording import RunData

    split = Split(np.zeros((10, 64)), np.zeros((10, 64)), np.arange(10), np.arange(10))
    return RunData(split, "0123456789abcdef0123456789abcdef", "data/processed/split.npz")


# ---- Hydra, in-process -------------------------------------------------------------------


def compose_config(*overrides: str):
    """conf/ composed as ``pipelines/run.py`` would, Hydra's own node included."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def task_config(*overrides: str):
    """conf/ composed without Hydra's own node: what the run's config is made from."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def sweep_config(sweep_dir: Path, *overrides: str):
    """A multirun's config, writing into ``sweep_dir``."""
    return compose_config(f"hydra.sweep.dir={sweep_dir}", *overrides)


@contextmanager
def hydra_job(output_dir: Path, *overrides: str, multirun: bool = False) -> Iterator[Any]:
    """The task config of one job of ``pipelines/run.py``, with Hydra's node set as
    ``@hydra.main`` sets it (its output folder, the job's overrides, the run mode)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    cfg = compose_config(*overrides)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.overrides.task = list(overrides)
        cfg.hydra.mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    HydraConfig.instance().set_config(cfg)
    try:
        with open_dict(cfg):
            del cfg["hydra"]
        yield cfg
    finally:
        HydraConfig.instance().cfg = None


def multirun(*overrides: str, task: Any, conf: Path = ROOT / "conf") -> Any:
    """``pipelines/run.py -m <overrides>`` in this process, with ``task`` as the task
    function (``digits_nn.sweeps.job.run``): Hydra's own multirun, with the project's
    callbacks, sweeper and launcher. ``conf``: another copy of conf/, to change it."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        return hydra.multirun("config", task, list(overrides), with_log_configuration=False)


def quick_outcome(cfg, place) -> Any:
    """What ``digits_nn.pipeline.app.run`` returns, without the training: a real run in
    the store, placed and tagged as a job's is, FINISHED, with accuracies made from the
    seed and alpha (the validation one when there are validation rows)."""
    from digits_nn.pipeline.app import Outcome
    from digits_nn.tracking import runs
    from digits_nn.tracking.store import open_store

    store = open_store(cfg.tracking)
    run_id = None
    if store is not None:
        tags = {"overrides": " ".join(place.overrides), **place.tags}
        with runs.run(store, name=f"quick {place.overrides}", tags=tags) as logged:
            run_id = logged.run_id
    test = 0.5 + cfg.seed / 100 + cfg.train.alpha / 10
    validation = test - 0.01 if cfg.train.validation_size else None
    return Outcome(cfg, test, validation, run_id, np.array([1.0, 0.5]))


# ---- configs -----------------------------------------------------------------------------

# The follow-ups' options, small enough for the fast suite: relu and softmax, momentum on
# mini-batches.
MODERN = {
    "model": {"hidden_size": 64, "activation": "relu", "output": "softmax", "init": "he"},
    "train": {"optimizer": "momentum", "batch_size": 32, "alpha": 0.05, "iterations": 20},
    "tracking": {"accuracy_every": 0},
}


def modern_config(**sections: dict):
    """:data:`MODERN` with ``sections``' keys set over it, parsed."""
    from digits_nn.config import parse

    raw = copy.deepcopy(MODERN)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse(raw)


# ---- small networks ----------------------------------------------------------------------


def random_network(layer_sizes, rng, scale=0.5):
    """A sigmoid network of small normal weights, so the sigmoids work in their
    sensitive range."""
    from digits_nn.core.network import Network

    weights = [
        rng.normal(size=(n_out, n_in)) * scale for n_in, n_out in itertools.pairwise(layer_sizes)
    ]
    biases = [rng.normal(size=n_out) * scale for n_out in layer_sizes[1:]]
    return Network(weights=weights, biases=biases)


def digits_rows(n_rows):
    """The first ``n_rows`` standardised digits and their one-hot targets."""
    from digits_nn.data import steps

    scaled = steps.standardise(steps.load_digits())
    return scaled.X[:n_rows], steps.one_hot(scaled.y[:n_rows])


def central_differences(cost, arrays: list[np.ndarray], eps: float = 1e-6) -> list[np.ndarray]:
    """The gradient of ``cost()`` with respect to every entry of ``arrays`` (changed in
    place and restored), by central differences."""
    grads = []
    for array in arrays:
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            up = cost()
            array[index] = saved - eps
            down = cost()
            array[index] = saved
            grad[index] = (up - down) / (2 * eps)
        grads.append(grad)
    return grads


def parameters(network) -> list[np.ndarray]:
    """Every array of ``network``: the weights, then the biases."""
    return [*network.weights, *network.biases]


def assert_same_parameters(a, b) -> None:
    """Two networks hold the same parameters, bit for bit."""
    for x, y in zip(parameters(a), parameters(b), strict=True):
        np.testing.assert_array_equal(x, y)


# ---- the sweep's records -----------------------------------------------------------------

# Two configurations at three budgets each.
SWEEP_GRID = [
    [f"train.alpha={alpha}", f"train.iterations={budget}"]
    for alpha in ("0.25", "1.0")
    for budget in (500, 1000, 3000)
]


def sweep_record(key: str, test: float | None, validation: float | None = None, **extra) -> dict:
    """A job's record as a sweep summary reads it; ``test`` None: a failed job."""
    overrides = [f"train.alpha={key}", "model.hidden_size=10"]
    status = "FAILED" if test is None else "FINISHED"
    params = {"train.alpha": float(key), "model.hidden_size": 10}
    row = {"key": key, "overrides": overrides, "status": status, "params": params}
    if test is not None:
        row |= {"test_accuracy": test, "validation_accuracy": validation, "cost": [1.0, 0.5]}
    return row | extra


# ---- the import closure of a file, from its source ----------------------------------------


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_script(stage: dict) -> Path:
    [script] = [word for word in shlex.split(stage["cmd"]) if word.endswith(".py")]
    return ROOT / script


def module_file(module: str) -> Path | None:
    """The file that defines ``module`` (a module or a package), if it is the project's."""
    base = SOURCE.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str | None:
    """``digits_nn.x`` for src/digits_nn/x.py; None for a script outside the package."""
    if not path.is_relative_to(SOURCE):
        return None
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """Each import statement anywhere in ``path`` (inside functions too): its line, the
    module it imports from (relative imports resolved) and the names it takes."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path) or ""
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = own.split(".")[: len(own.split(".")) - node.level + is_package]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base, [alias.name for alias in node.names]


def imported_names(path: Path) -> set[str]:
    """Every dotted name that ``path`` imports anywhere in its body, relative imports
    resolved: ``from a import b`` yields both ``a`` and ``a.b`` (b may be a module)."""
    names: set[str] = set()
    for _, base, taken in imports_of(path):
        names.add(base)
        names.update(f"{base}.{name}" for name in taken)
    return names


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """The modules ``path`` imports, each with its line: ``from a import b`` is ``a.b``
    where that is one of the project's modules, else ``a``."""
    for line, base, taken in imports_of(path):
        if not taken:
            yield line, base
        for name in taken:
            yield line, f"{base}.{name}" if module_file(f"{base}.{name}") else base


def project_files(module: str) -> list[Path]:
    """The files Python runs to import ``module``: each enclosing package's __init__.py,
    then the module itself. Empty for a module that is not the project's."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return []
    prefixes = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return [file for file in map(module_file, prefixes) if file is not None]


def code_closure(script: Path) -> set[Path]:
    """``script`` and every project file it imports, transitively."""
    seen: set[Path] = set()
    pending = [script]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            pending.extend(project_files(name))
    return seen


def relative(paths: set[Path], root: Path = ROOT) -> set[str]:
    return {p.relative_to(root).as_posix() for p in paths}


# ---- artifacts and the saved model ------------------------------------------------------


def assert_artifact_error(read, path, *fragments) -> str:
    """``read(path)`` raises ArtifactError naming ``path`` and saying each fragment."""
    import pytest

    from digits_nn.errors import ArtifactError

    with pytest.raises(ArtifactError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def saved_model(folder: Path) -> Path:
    """A small trained model exactly as the pipeline logs it, saved under ``folder``."""
    from digits_nn.data.model_file import write_model
    from digits_nn.pipeline.fit import fit
    from digits_nn.pipeline.prepared import prepare
    from digits_nn.tracking.models import save_model

    cfg = modern_config(train={"iterations": 2})
    data = prepare(cfg)
    write_model(folder / "model.npz", fit(cfg, data).network)
    return save_model(folder / "saved", folder / "model.npz", data.scaled.mean, data.scaled.scale)


# ---- a launcher for the sweepers' own logic ----------------------------------------------


class AnsweringLauncher:
    """A Hydra launcher that trains nothing: it returns, for each job, the record a
    finished job would send back, with ``score(overrides)`` as its validation accuracy;
    remembers the batches it was given, and raises KeyboardInterrupt when asked for
    batch number ``stop_after``."""

    def __init__(self, score: Any = None) -> None:
        self.batches: list[list[list[str]]] = []
        self.stop_after: int | None = None
        self.score = score

    def launch(self, batch, initial_job_idx):
        if self.stop_after is not None and len(self.batches) >= self.stop_after:
            raise KeyboardInterrupt
        self.batches.append(batch)
        from digits_nn.sweeps.protocol import Objective, job_key

        returns = []
        for overrides in batch:
            own = [o for o in overrides if not o.startswith(("hydra.", "++hydra."))]
            answer = {
                "key": job_key(own),
                "overrides": own,
                "status": "FINISHED",
                "validation_accuracy": self.score(own),
                "test_accuracy": 0.5,
                "run_id": f"run-{job_key(own)}",
                "state_md5": "0" * 32,
            }
            returns.append(SimpleNamespace(return_value=Objective.of(0.0, [answer])))
        return returns


# ---- the fresh-clone gate ----------------------------------------------------------------

# The stages whose outputs hold the network's last bits; the data stages' never change.
PLATFORM_STAGES = ("train", "evaluate")
# The tracked files `dvc repro` may rewrite on another platform.
PLATFORM_FILES = {"dvc.lock", "reports/metrics.json", "reports/platform.json"}


def committed(clone: Path, path: str) -> str:
    """``path`` as HEAD holds it."""
    return run(["git", "show", f"HEAD:{path}"], cwd=clone).stdout


def check_reproduced(clone: Path) -> str:
    """The gate on a fresh clone after `dvc repro` (issue 21), saying what it checked.

    On the platform that computed the committed outputs (the same key), bits: no tracked
    file changed. On another, tolerances: in dvc.lock only the hashes of what train and
    evaluate write moved (every command, param and code dep, and the data stages'
    outputs, are the committed ones), and each committed metric agrees within the
    platform's tolerances."""
    from digits_nn.data import artifacts
    from digits_nn.pipeline import numeric_platform as platform_

    recorded = json.loads(committed(clone, "reports/platform.json"))
    current = json.loads((clone / "reports/platform.json").read_text())
    changed = run(["git", "status", "--porcelain"], cwd=clone).stdout
    if platform_.same_bits(recorded, current):
        diff = run(["git", "diff", "--", "dvc.lock"], cwd=clone).stdout
        assert changed == "", (
            "`dvc repro` on a fresh clone changed tracked files on the platform that"
            " computed them: the committed dvc.lock does not match the committed code and"
            f" params. Run `dvc repro` and commit dvc.lock.\n{changed}\n{diff[:4000]}"
        )
        return f"bits: same platform as the committed outputs ({platform_.summary(current)})"
    moved = {line[3:] for line in changed.splitlines()}
    assert moved <= PLATFORM_FILES, f"another platform changed more than it may: {moved}"
    old_lock = yaml.safe_load(committed(clone, "dvc.lock"))["stages"]
    new_lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    assert set(old_lock) == set(new_lock)
    # What train and evaluate write may move, where it is an output and where a dep.
    movable = {out["path"] for name in PLATFORM_STAGES for out in old_lock[name]["outs"]}

    def fixed(stage: dict) -> dict:
        kept = {k: v for k, v in stage.items() if k != "outs"}
        kept["deps"] = [dep for dep in stage.get("deps", []) if dep["path"] not in movable]
        kept["outs"] = [out for out in stage["outs"] if out["path"] not in movable]
        return kept

    for name, stage in old_lock.items():
        assert fixed(stage) == fixed(new_lock[name]), f"dvc.lock: stage {name} moved"
    split = artifacts.read_split(clone / "data/processed/split.npz")
    rows = {"test_accuracy": len(split.y_test), "train_accuracy": len(split.y_train)}
    old = json.loads(committed(clone, "reports/metrics.json"))
    new = json.loads((clone / "reports/metrics.json").read_text())
    assert set(old) == set(new)
    for metric, value in old.items():
        if metric in rows:
            allowed = platform_.ACCURACY_ROWS / rows[metric] + 1e-12
            assert abs(new[metric] - value) <= allowed, (metric, value, new[metric])
        elif "cost" in metric:
            assert np.isclose(new[metric], value, rtol=platform_.COST_RTOL, atol=0), metric
        else:
            assert new[metric] == value, metric
    return (
        f"tolerances: another platform than the committed outputs'"
        f" ({'; '.join(platform_.differences(recorded, current))}); every metric within"
        f" {platform_.ACCURACY_ROWS} row of accuracy and a relative {platform_.COST_RTOL:g}"
        " of cost, the data stages' outputs bit for bit"
    )
