"""The scale-out set-up against the real stack: PostgreSQL, the MLflow server with accounts and a
one-node SLURM cluster, brought up once for this module by ``python -m digits_nn.stack``
in a temporary clone, and brought down after it.

Each stack runs from a clone under a private folder (0700, as a home folder is), as root
and as a plain user.

Needs, as CI installs them: the extras ``.[slurm,ray,server]``, Debian's PostgreSQL
server and ``slurmctld slurmd slurm-client munge`` (the stack installs them itself with
apt-get when it runs as root), and Debian's ``python3`` for the plain user.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from digits_nn.stack.layout import STACK_DIR, Layout, save_state
from digits_nn.stack.mlflow_server import _basic
from digits_nn.stack.postgres import PG_ROOT, pg_bin, restart_postgres
from digits_nn.stack.processes import alive, port_open, stop_pid
from helpers import default_sigint, make_clone, project_env

CURVE = 3000  # the classic run's iterations: one train_cost point each


@dataclass
class Stack:
    repo: Path
    folder: Path
    env: dict[str, str]

    @property
    def uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def password(self) -> str:
        return self.env["MLFLOW_TRACKING_PASSWORD"]

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_in(self.repo, [sys.executable, "-m", "digits_nn.stack", *args], check=check)

    def state(self) -> dict:
        return json.loads((self.folder / "state.json").read_text())

    def app(
        self, *overrides: str, check: bool = True, timeout: float = 900, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``pipelines/run.py`` in the clone, as a user whose shell ran ``stack env``."""
        return run_in(
            self.repo,
            [sys.executable, "pipelines/run.py", *overrides],
            check=check,
            timeout=timeout,
            env={**self.env, **env},
        )

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


def run_in(
    cwd: Path,
    args: list[str],
    check: bool = True,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=project_env(**(env or {})), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def parse_exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        found[key] = shlex.split(value)[0] if value else ""
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack, up once for the module, in a clone of its own; down afterwards."""
    for tool in ("runuser",):
        if not Path(f"/usr/sbin/{tool}").exists() and not Path(f"/usr/bin/{tool}").exists():
            pytest.fail(f"{tool} is missing: apt-get install util-linux")
    if pg_bin() is None:
        pytest.fail(f"PostgreSQL's server is missing ({PG_ROOT}): apt-get install postgresql")
    # A private folder (0700, as root's home is): the postgres and munge users cannot
    # traverse it, and need not.
    holder = Path(tempfile.mkdtemp(prefix="digits-stack-"))
    assert holder.stat().st_mode & 0o777 == 0o700
    repo = make_clone(holder / "repo")
    folder = repo / STACK_DIR
    started = time.monotonic()
    up = run_in(repo, [sys.executable, "-m", "digits_nn.stack", "up"], check=False, timeout=600)
    if up.returncode != 0:
        run_in(repo, [sys.executable, "-m", "digits_nn.stack", "purge"], check=False)
        pytest.fail(
            "stack up failed (it needs .[server,slurm] and Debian's postgresql, slurm and"
            f" munge):\n{up.stderr}"
        )
    print(f"stack up in {time.monotonic() - started:.1f} s")
    env = parse_exports(run_in(repo, [sys.executable, "-m", "digits_nn.stack", "env"]).stdout)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # this process reads the server as the user digits
    try:
        yield Stack(repo, folder, env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        run_in(repo, [sys.executable, "-m", "digits_nn.stack", "purge"], check=False)
        shutil.rmtree(holder, ignore_errors=True)


def stack_pids(stack: Stack) -> dict[str, int]:
    return {name: entry["pid"] for name, entry in stack.state().items() if entry.get("pid")}


def listening(pids: set[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket listening in these processes and their
    descendants."""
    import psutil

    family = set(pids)
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            family |= {child.pid for child in psutil.Process(pid).children(recursive=True)}
    return [
        (ipv4_if_mapped(conn.laddr.ip), conn.laddr.port, conn.pid)
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.pid in family
    ]


def ipv4_if_mapped(address: str) -> str:
    """``::ffff:127.0.0.1`` (an IPv6 socket bound to the IPv4 address, as gRPC binds Ray's
    raylet) is 127.0.0.1."""
    parsed = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped) if mapped else address


def experiment_id(stack: Stack) -> str:
    client = stack.client()
    found = client.get_experiment_by_name("digits-nn")
    return found.experiment_id if found else client.create_experiment("digits-nn")


def runs_of(stack: Stack, parent: str | None = None):
    client = stack.client()
    query = f"tags.mlflow.parentRunId = '{parent}'" if parent else ""
    return client.search_runs([experiment_id(stack)], filter_string=query, max_results=1000)


def parent_of_sweep(stack: Stack, sweep_dir: Path):
    client = stack.client()
    runs = client.search_runs(
        [experiment_id(stack)], filter_string=f"tags.sweep_dir = '{sweep_dir}'", max_results=5
    )
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def text_files(folder: Path) -> Iterator[Path]:
    yield from (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


# ---- a plain user's stack -------------------------------------------------------------

PLAIN_USER = "digits-nn-test"
# What the stack's own processes import, pinned to this environment's versions: a plain
# user cannot run an interpreter kept in root's home, so they get a virtualenv of their
# own on Debian's python3.
PLAIN_USER_REQUIREMENTS = ("mlflow[auth]", "psycopg2-binary", "port-for")


def plain_user() -> str | None:
    """The plain user to run a stack as: the suite's own user when it is not root; else
    a system account of the suite's (created once). None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    if subprocess.run(["id", "-u", PLAIN_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--shell", "/usr/sbin/nologin", PLAIN_USER],
            check=True,
        )
    return PLAIN_USER


def own_virtualenv(folder: Path) -> Path:
    """A virtualenv on Debian's python3 with what the stack runs, for any user to run."""
    from importlib import metadata

    python = Path("/usr/bin/python3")
    if not python.is_file():
        pytest.fail("Debian's python3 is missing: apt-get install python3")
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "--quiet", "--python", str(python), str(folder)], check=True)
    pins = [f"{name}=={metadata.version(name.split('[')[0])}" for name in PLAIN_USER_REQUIREMENTS]
    subprocess.run(
        [*uv, "pip", "install", "--quiet", "--python", str(folder / "bin/python"), *pins],
        check=True,
        timeout=900,
    )
    return folder / "bin/python"


def as_plain_user(
    user: str | None, python: Path, repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``repo`` as ``user``, with the clone's code on the path."""
    values = {
        "HOME": str(repo.parent),
        "PATH": f"{python.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": str(repo / "src"),
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    prefix = ["runuser", "-u", user, "--"] if user else []
    command = [*prefix, "env", "-i", *(f"{k}={v}" for k, v in values.items()), str(python)]
    return subprocess.run([*command, *args], cwd=repo, capture_output=True, text=True, timeout=900)


LOG_ONE_RUN = """
import mlflow
mlflow.set_experiment("plain-user")
with mlflow.start_run() as run:
    mlflow.log_metric("m", 1.0)
print(mlflow.get_run(run.info.run_id).info.status)
"""


def test_a_plain_user_runs_the_whole_stack_from_a_clone_in_a_private_home(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A clone under a private home folder (0700), run by a plain user: every
    daemon runs as that user, on 127.0.0.1, and a run logs to the server and a job runs
    on SLURM; `purge` leaves nothing behind."""
    import psutil

    user = plain_user()
    home = Path(tempfile.mkdtemp(prefix="digits-home-"))  # 0700, as a home folder is
    try:
        python = own_virtualenv(home / "venv")
        repo = make_clone(home / "repo")
        if user:
            subprocess.run(["chown", "-R", f"{user}:{user}", str(home)], check=True)
        assert home.stat().st_mode & 0o777 == 0o700

        def stack(*args: str) -> subprocess.CompletedProcess[str]:
            return as_plain_user(user, python, repo, "-m", "digits_nn.stack", *args)

        try:
            up = stack("up")
            assert up.returncode == 0, up.stderr[-4000:]
            state = json.loads((repo / STACK_DIR / "state.json").read_text())
            pids = {name: entry["pid"] for name, entry in state.items()}
            assert set(pids) == {"postgres", "mlflow", "munge", "slurmctld", "slurmd"}
            owner = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
            assert {psutil.Process(pid).uids().real for pid in pids.values()} == {owner.pw_uid}
            sockets = listening(set(pids.values()))
            assert sockets and all(address == "127.0.0.1" for address, _, _ in sockets), sockets
            assert (repo / STACK_DIR).stat().st_mode & 0o777 == 0o700
            services = (repo / STACK_DIR / "services").resolve()
            assert not services.is_relative_to(home)

            env = parse_exports(stack("env").stdout)
            logged = as_plain_user(user, python, repo, "-c", LOG_ONE_RUN, env=env)
            assert logged.stdout.split()[-1:] == ["FINISHED"], logged.stderr[-3000:]
            sbatch = ["sbatch", "--wait", f"--output={home}/job.out", "--wrap", "id -un"]
            job = subprocess.run(
                ["runuser", "-u", owner.pw_name, "--"] * bool(user) + sbatch,
                cwd=home, env={**os.environ, "SLURM_CONF": env["SLURM_CONF"]},
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert job.returncode == 0, job.stderr
            assert (home / "job.out").read_text().strip() == owner.pw_name
        finally:
            purged = stack("purge")
        assert purged.returncode == 0, purged.stderr[-3000:]
        assert not [pid for pid in pids.values() if alive(pid)]
        assert not services.exists() and not (repo / STACK_DIR).exists()
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ---- the stack itself -----------------------------------------------------------------


def test_stack_up_is_idempotent_and_every_daemon_listens_on_127_0_0_1_only(
    stack: Stack,
) -> None:
    pids = stack_pids(stack)
    assert set(pids) >= {"postgres", "mlflow", "munge", "slurmctld", "slurmd"}
    status = stack.command("status").stdout
    assert status.count("running") == 5, status
    started = time.monotonic()
    stack.command("up")
    assert time.monotonic() - started < 20
    assert stack_pids(stack) == pids  # nothing restarted
    sockets = listening(set(pids.values()))
    assert {port for _, port, _ in sockets} >= {
        stack.state()[name]["port"] for name in ("postgres", "mlflow", "slurmctld", "slurmd")
    }
    assert all(address == "127.0.0.1" for address, _, _ in sockets), sockets
    secrets_file = stack.folder / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert stack.env["MLFLOW_TRACKING_USERNAME"] == "digits"


# ---- searches: halving's state through the server, Optuna's study in PostgreSQL -------


def test_halving_on_slurm_goes_on_from_the_state_the_server_keeps(stack: Stack) -> None:
    sweep_dir = stack.repo / "multirun" / "halving-slurm"
    args = [
        "sweep=halving",
        "hydra/launcher=submitit_slurm",
        "train.alpha=0.5,2.0",
        "model.hidden_size=10",
        "train.iterations=3,7",
        "hydra.sweeper.eta=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    stack.app(*args)
    found = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/record.json")}
    (top,) = [r for r in found.values() if r["rung"] == 1]
    assert top["started_at"] == 3
    # Without the copies in the job folders (a cluster whose nodes share no disk), the
    # top rung, run again, finds its state in the tracking server.
    for state in sweep_dir.glob("*/trainer_state.npz"):
        state.unlink()
    (sweep_dir / top["key"] / "record.json").unlink()
    stack.app(*args)
    again = json.loads((sweep_dir / top["key"] / "record.json").read_text())
    assert again["started_at"] == 3 and again["run_id"] != top["run_id"]
    assert again["validation_accuracy"] == top["validation_accuracy"]
    assert again["cost"] == top["cost"]


def test_an_optuna_search_keeps_its_study_in_the_stacks_postgres(stack: Stack) -> None:
    import optuna

    sweep_dir = stack.repo / "multirun" / "optuna-postgres"
    url = stack.env["DIGITS_NN_OPTUNA_STORAGE"]
    assert url.endswith("/optuna") and "@127.0.0.1:" in url
    result = stack.app(
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.budgets=[2,4]",
        "model.hidden_size=choice(16,32)",
        f"hydra.sweep.dir={sweep_dir}",
    )
    trials = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert len(trials) == 2 and all(t.state.is_finished() for t in trials)
    assert not (stack.repo / "optuna.db").exists()
    # The database's password is in no sweep file, log line, param or tag.
    secret = json.loads((stack.folder / "secrets.json").read_text())["postgres"]
    assert secret not in result.stdout + result.stderr
    assert not [p for p in text_files(sweep_dir) if secret.encode() in p.read_bytes()]
    for run in runs_of(stack, parent_of_sweep(stack, sweep_dir).info.run_id):
        assert secret not in str(run.data.params) + str(run.data.tags)
        assert run.data.tags["optuna.trial_state"] in ("COMPLETE", "PRUNED")


# ---- sweeps on SLURM, load --------------------------------------------------------------


def test_sixteen_slurm_jobs_log_full_curves_to_the_server_and_no_secret_anywhere(
    stack: Stack,
) -> None:
    """The acceptance sweep (one parent, FINISHED children with every point, artifacts
    through the server), at the load the stack is sized for: 16 jobs logging at once."""
    sweep_dir = stack.repo / "multirun" / "slurm16"
    seeds = ",".join(map(str, range(16)))
    result = stack.app(
        "-m", "hydra/launcher=submitit_slurm", f"seed={seeds}", f"hydra.sweep.dir={sweep_dir}"
    )
    parent = parent_of_sweep(stack, sweep_dir)
    assert parent.info.status == "FINISHED"
    children = runs_of(stack, parent.info.run_id)
    assert len(children) == 16
    client = stack.client()
    for child in children:
        assert child.info.status == "FINISHED", child.info.run_name
        assert child.info.artifact_uri.startswith("mlflow-artifacts:"), child.info.artifact_uri
        curve = client.get_metric_history(child.info.run_id, "train_cost")
        assert sorted(m.step for m in curve) == list(range(1, CURVE + 1))
    assert "params.yaml" in {a.path for a in client.list_artifacts(children[0].info.run_id)}
    # The network is the run's MLflow 3 logged model, its files stored through the server.
    [model] = client.search_logged_models(
        [children[0].info.experiment_id],
        filter_string=f"source_run_id = '{children[0].info.run_id}'",
    )
    assert model.artifact_location.startswith("mlflow-artifacts:"), model.artifact_location
    assert {a.path for a in client.list_logged_model_artifacts(model.model_id)} >= {
        "MLmodel", "artifacts",
    }  # fmt: skip
    # The password is in no param, tag, artifact, log line or sweep file.
    secret = stack.password
    for run in [parent, *children[:2]]:
        assert secret not in str(run.data.params) + str(run.data.tags)
        local = Path(client.download_artifacts(run.info.run_id, "", str(stack.repo / "dl")))
        assert not [p for p in text_files(local) if secret.encode() in p.read_bytes()]
    assert secret not in result.stdout + result.stderr
    leaked = [p for p in text_files(sweep_dir) if secret.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_dvc_repro_logs_to_the_same_server(stack: Stack) -> None:
    before = {r.info.run_id for r in runs_of(stack)}
    run_in(stack.repo, [sys.executable, "-m", "dvc", "repro"], env=stack.env)
    new = [r for r in runs_of(stack) if r.info.run_id not in before]
    assert len(new) == 1 and new[0].info.status == "FINISHED"
    assert new[0].info.artifact_uri.startswith("mlflow-artifacts:")
    assert "test_accuracy" in new[0].data.metrics


# ---- accounts ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
def test_a_wrong_or_missing_password_fails_before_training_with_one_line(
    stack: Stack, password: str | None
) -> None:
    env = {"MLFLOW_TRACKING_PASSWORD": password or ""}
    if password is None:
        env["MLFLOW_TRACKING_USERNAME"] = ""
    out = stack.repo / "outputs" / f"refused-{password}"
    result = stack.app(f"hydra.run.dir={out}", check=False, **env)
    output = result.stdout + result.stderr  # Hydra logs to stdout
    assert result.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    assert stack.uri in errors[0] and ("401" in errors[0] or "nauthori" in errors[0])
    assert not (out / "models").exists()  # no training happened


def test_a_user_cannot_write_to_another_users_experiment(stack: Stack) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    secrets_found = json.loads((stack.folder / "secrets.json").read_text())
    create = urllib.request.Request(
        f"{stack.uri}/api/2.0/mlflow/users/create",
        data=json.dumps({"username": "mallory", "password": "mallory-pass-1"}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": _basic("admin", secrets_found["admin"]),
        },
    )
    with contextlib.suppress(urllib.error.HTTPError):  # exists from an earlier attempt
        urllib.request.urlopen(create, timeout=30).close()
    experiment = experiment_id(stack)  # created by digits
    os.environ.update(MLFLOW_TRACKING_USERNAME="mallory", MLFLOW_TRACKING_PASSWORD="mallory-pass-1")
    try:
        mallory = MlflowClient(tracking_uri=stack.uri)
        assert mallory.get_experiment(experiment).name == "digits-nn"  # READ by default
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|403"):
            mallory.create_run(experiment)
    finally:
        os.environ.update(
            MLFLOW_TRACKING_USERNAME="digits", MLFLOW_TRACKING_PASSWORD=stack.password
        )


def test_credentials_in_the_tracking_uri_are_redacted_everywhere(stack: Stack) -> None:
    """Redaction end to end: http://digits:<password>@127.0.0.1:<port> against the
    server's accounts. In MLFLOW_TRACKING_URI it logs, and no line, param, tag, logged
    file or file of the run's folder holds the password; in tracking.uri it is refused
    before Hydra writes the run's folder (else .hydra/ keeps it in clear)."""
    address = stack.uri.removeprefix("http://")
    uri = f"http://digits:{stack.password}@{address}"
    out = stack.repo / "outputs" / "uri-with-password"
    no_account = {"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": ""}
    result = stack.app(
        "train.iterations=20", f"hydra.run.dir={out}", MLFLOW_TRACKING_URI=uri, **no_account
    )
    assert stack.password not in result.stdout + result.stderr
    run = max(runs_of(stack), key=lambda r: r.info.start_time)
    assert run.info.status == "FINISHED"
    assert stack.password not in str(run.data.params) + str(run.data.tags)
    logged = stack.client().download_artifacts(run.info.run_id, "params.yaml", str(out / "dl"))
    assert stack.password not in Path(logged).read_text()
    assert not [p for p in text_files(out) if stack.password.encode() in p.read_bytes()]
    refused_out = stack.repo / "outputs" / "refused"
    refused = stack.app(
        "train.iterations=20", f"tracking.uri={uri}", f"hydra.run.dir={refused_out}",
        check=False, MLFLOW_TRACKING_URI="", **no_account,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "MLFLOW_TRACKING_PASSWORD" in refused.stdout + refused.stderr
    assert stack.password not in refused.stdout + refused.stderr
    assert not refused_out.exists()


def test_a_ray_sweep_against_the_stacks_head_logs_the_same_way(stack: Stack) -> None:
    """hydra/launcher=ray with the head's address: the MLflow settings reach the Ray
    workers in memory, and no file of the sweep holds the password."""
    stack.command("up", "--ray")
    env = parse_exports(stack.command("env").stdout)
    sweep_dir = stack.repo / "multirun" / "ray"
    result = stack.app(
        "-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={env['RAY_ADDRESS']}",
        "seed=0,1", f"hydra.sweep.dir={sweep_dir}", **env,
    )  # fmt: skip
    parent = parent_of_sweep(stack, sweep_dir)
    assert parent.info.status == "FINISHED"
    children = runs_of(stack, parent.info.run_id)
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]
    client = stack.client()
    for child in children:
        assert child.info.artifact_uri.startswith("mlflow-artifacts:")
        assert len(client.get_metric_history(child.info.run_id, "train_cost")) == CURVE
    assert stack.password not in result.stdout + result.stderr
    for folder in (sweep_dir, stack.folder / "ray"):  # Ray logs every runtime_env
        assert not [p for p in text_files(folder) if stack.password.encode() in p.read_bytes()]
    sockets = listening({stack.state()["ray"]["pid"]})
    assert all(address == "127.0.0.1" for address, _, _ in sockets), sockets


# ---- faults -----------------------------------------------------------------------------


def test_postgres_restarted_under_the_server_loses_no_run(stack: Stack) -> None:
    before = {r.info.run_id for r in runs_of(stack)}
    layout = Layout(stack.folder)
    state = stack.state()
    restart_postgres(layout, state)
    save_state(layout, state)
    stack.app("train.iterations=20", f"hydra.run.dir={stack.repo / 'outputs' / 'after-pg'}")
    after = {r.info.run_id: r for r in runs_of(stack)}
    assert before < set(after)
    (new,) = [after[i] for i in set(after) - before]
    assert new.info.status == "FINISHED"


def background_sweep(stack: Stack, name: str):
    """A 2-job SLURM sweep running in the background; interrupted if the test fails."""
    return slurm_sweep(stack, name, "seed=0,1", "train.iterations=10000")


def wait_for_running_children(stack: Stack, sweep_dir: Path, count: int) -> tuple[Any, list]:
    deadline = time.monotonic() + 300
    parent, running = None, []
    while time.monotonic() < deadline and len(running) < count:
        time.sleep(2)
        with contextlib.suppress(Exception):
            parent = parent_of_sweep(stack, sweep_dir)
            running = [r for r in runs_of(stack, parent.info.run_id) if r.info.status == "RUNNING"]
    assert len(running) == count, "the jobs never started"
    return parent, running


def test_server_stopped_mid_sweep_fails_running_jobs_quickly_and_keeps_what_was_logged(
    stack: Stack,
) -> None:
    with background_sweep(stack, "server-down") as (sweep, sweep_dir):
        parent, running = wait_for_running_children(stack, sweep_dir, 2)
        stopped = time.monotonic()
        stop_pid(stack.state()["mlflow"]["pid"])
        try:
            stdout, stderr = sweep.communicate(timeout=240)
        finally:
            took = time.monotonic() - stopped
            stack.command("up")  # the server back, whatever happens, for the other tests
    print(f"the sweep ended {took:.1f} s after the server stopped")
    assert sweep.returncode != 0
    failures = [
        line
        for line in (stdout + stderr).splitlines()
        if "job(s) failed" in line or "stopped answering" in line
    ]
    assert failures, stderr[-3000:]
    assert stack.uri in "\n".join(failures)
    assert stack.password not in stdout + stderr
    # Each job fails within the retry budget of its next call to the server, after the
    # training it was doing; the sweep as a whole ends within a minute or so.
    assert took < 120
    # The server came back with everything it held; the failed jobs run again.
    held = {r.info.run_id for r in runs_of(stack, parent.info.run_id)}
    assert {r.info.run_id for r in running} <= held
    stack.app("-m", "hydra/launcher=submitit_slurm", "seed=0", f"hydra.sweep.dir={sweep_dir}-again")


# ---- down, last -------------------------------------------------------------------------


def test_down_stops_every_process_by_pid_and_leaves_no_port_open(stack: Stack) -> None:
    pids = stack_pids(stack)
    ports = [entry["port"] for entry in stack.state().values() if entry.get("port")]
    stack.command("down")
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not [port for port in ports if port_open(port)]
    assert "running" not in stack.command("status").stdout.replace("not running", "")
    stack.command("up")  # and it comes back, for the fixture's own teardown to stop
    assert set(stack_pids(stack)) == set(pids) - {"ray"}


# ---- a job ended by the cluster ---------------------------------------------------------


def slurm(stack: Stack, *args: str) -> str:
    return run_in(stack.repo, list(args), env={"SLURM_CONF": stack.env["SLURM_CONF"]}).stdout


@contextlib.contextmanager
def slurm_sweep(
    stack: Stack, name: str, *overrides: str
) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A SLURM sweep running in the background; interrupted, with its tasks cancelled,
    if the test fails."""
    sweep_dir = stack.repo / "multirun" / name
    command = [
        sys.executable, "pipelines/run.py", "-m", "hydra/launcher=submitit_slurm",
        *overrides, f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    sweep = subprocess.Popen(
        command, cwd=stack.repo, env=project_env(**stack.env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        yield sweep, sweep_dir
    finally:
        if sweep.poll() is None:
            sweep.send_signal(signal.SIGINT)
            sweep.wait(timeout=60)
        left = slurm(stack, "squeue", "-h", "-o", "%A").split()
        if left:
            slurm(stack, "scancel", *left)


def sigkill_task(stack: Stack, task: str) -> None:
    """SIGKILL the Python process of an array task (``<job>_<task>``) of this stack's
    cluster (others on the machine number their jobs alike), as the OOM killer or a lost
    node would end it: no handler runs. (``scancel --signal=KILL`` would not do: SLURM
    turns it into a cancel, SIGTERM first.)"""
    import psutil

    job, _, index = task.partition("_")
    wanted = {
        "SLURM_CONF": stack.env["SLURM_CONF"],
        "SLURM_ARRAY_JOB_ID": job,
        "SLURM_ARRAY_TASK_ID": index,
    }
    victims = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "submitit.core._submit" not in command or "python" not in Path(command[0]).name:
            continue
        with contextlib.suppress(psutil.Error):
            if wanted.items() <= process.environ().items():
                victims.append(process)
    assert len(victims) == 1, victims
    victims[0].kill()


def wait_until_training(stack: Stack, sweep_dir: Path, count: int, within: float = 900) -> Any:
    """The sweep's parent run once ``count`` of its children are RUNNING at once (jobs
    start slowly on a loaded machine: the time is generous, not part of what is tested)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(2)
        with contextlib.suppress(Exception):
            parent = parent_of_sweep(stack, sweep_dir)
            children = runs_of(stack, parent.info.run_id)
            if sum(r.info.status == "RUNNING" for r in children) >= count:
                return parent
    raise AssertionError(f"{count} jobs never trained at once within {within:.0f} s")


def test_a_job_cancelled_by_slurm_ends_killed_and_the_sweep_names_it(stack: Stack) -> None:
    """scancel (SIGTERM, then SIGKILL after KillWait): the job closes its own run as
    KILLED. A job SIGKILLed outright cannot: the sweep closes it. Without accounting
    (no sacct) neither hangs the sweep, and the third job still runs and finishes."""
    overrides = ("seed=0,1,2", "train.iterations=10000")
    with slurm_sweep(stack, "scancel", *overrides) as (sweep, sweep_dir):
        parent = wait_until_training(stack, sweep_dir, 2)
        running = sorted(slurm(stack, "squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i").split())
        assert len(running) == 2, running  # two CPUs: the third task waits
        cancelled, killed = running
        slurm(stack, "scancel", cancelled)
        sigkill_task(stack, killed)
        ended = time.monotonic()
        stdout, stderr = sweep.communicate(timeout=600)
    print(f"the sweep ended {time.monotonic() - ended:.1f} s after the scancel")
    said = stdout + stderr
    assert sweep.returncode != 0
    failure = next((line for line in said.splitlines() if "2 job(s) failed" in line), "")
    by_scancel = f"job {cancelled} ended without a result (SLURM state CANCELLED)"
    assert by_scancel in failure, said[-3000:]
    assert f"job {killed} ended without a result" in failure
    summary = (sweep_dir / "sweep_summary.csv").read_text()
    assert summary.count(",FAILED,") == 2 and summary.count(",FINISHED,") == 1, summary
    assert "SLURM state CANCELLED" in summary
    statuses = sorted(r.info.status for r in runs_of(stack, parent.info.run_id))
    assert statuses == ["FINISHED", "KILLED", "KILLED"], statuses
    assert "closed as KILLED" in said  # the SIGKILLed job's run, by the sweep


def test_a_job_past_its_time_limit_ends_killed_and_the_sweep_names_it(stack: Stack) -> None:
    """A one-minute limit on a job that needs far more: SLURM ends it at its limit
    (SIGTERM, then SIGKILL) and its run is KILLED; the sweep names it TIMEOUT. (That the
    other jobs of a sweep finish is in the scancel test: a job short enough to finish
    within one minute is not, on a loaded machine.)"""
    overrides = ("seed=0", "train.iterations=1000000", "hydra.launcher.timeout_min=1")
    started = time.monotonic()
    with slurm_sweep(stack, "time-limit", *overrides) as (sweep, sweep_dir):
        stdout, stderr = sweep.communicate(timeout=600)
    print(f"the sweep took {time.monotonic() - started:.1f} s")
    said = stdout + stderr
    assert sweep.returncode != 0
    failure = next((line for line in said.splitlines() if "1 job(s) failed" in line), "")
    assert "train.iterations=1000000" in failure and "SLURM state TIMEOUT" in failure, said[-3000:]
    summary = (sweep_dir / "sweep_summary.csv").read_text()
    assert summary.count(",FAILED,") == 1 and "SLURM state TIMEOUT" in summary, summary
    parent = parent_of_sweep(stack, sweep_dir)
    statuses = [r.info.status for r in runs_of(stack, parent.info.run_id)]
    assert statuses == ["KILLED"], statuses
