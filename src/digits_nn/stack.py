"""A local stack to try and test scaling out: PostgreSQL, an MLflow server with accounts,
a one-node SLURM cluster and, with ``--ray``, a Ray head.

    python -m digits_nn.stack up [--ray]   # start what is not running yet (idempotent)
    eval "$(python -m digits_nn.stack env)" # the shell's MLflow, SLURM and Ray settings
    python -m digits_nn.stack status        # what runs, with pids and ports
    python -m digits_nn.stack down          # stop every process it started, by pid

Everything lives under ``.stack/`` at the repository root (git-ignored): data, logs,
pids, ports and the generated secrets (0600). Every daemon listens on 127.0.0.1 only.
The pipeline never imports this module: it talks to whatever server and cluster the
environment names, this stack or a team's real one.

Waiting and ports: ``port_for`` picks free local ports. mirakuru was considered, but it
kills the processes it started when the starting interpreter exits, and these daemons
must outlive ``up``; waiting is a short poll of the service's own readiness check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("digits_nn.stack")

STACK_DIR = ".stack"
HOST = "127.0.0.1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SLURM_PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
MLFLOW_USER = "digits"
ADMIN_USER = "admin"
PARTITION = "debug"
# Ray rewrites 127.0.0.1 to the machine's outward address unless this is set, and since
# ray 2.59 clients must run in token mode to join a cluster (the token is in ~/.ray).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


class StackError(Exception):
    """Something the stack needs is missing or failed to start: one line for the user."""


# ---- the folder, its state and secrets ------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each piece of the stack keeps its files, under one root folder."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def pg_data(self) -> Path:
        return self.root / "postgres" / "data"

    @property
    def pg_socket(self) -> Path:
        return self.root / "postgres" / "socket"

    @property
    def pgpass(self) -> Path:
        return self.root / "pgpass"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlflow" / "artifacts"

    @property
    def auth_ini(self) -> Path:
        return self.root / "mlflow" / "basic_auth.ini"

    @property
    def munge(self) -> Path:
        return self.root / "munge"

    @property
    def slurm(self) -> Path:
        return self.root / "slurm"

    @property
    def slurm_conf(self) -> Path:
        return self.slurm / "slurm.conf"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"


def default_root() -> Path:
    """``.stack/`` in the repository around the working directory."""
    cwd = Path.cwd().resolve()
    repo = next((p for p in (cwd, *cwd.parents) if (p / ".git").exists()), cwd)
    return repo / STACK_DIR


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, created that way (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def load_secrets(layout: Layout) -> dict[str, str]:
    """The stack's generated passwords, created once and kept 0600 in its folder."""
    found = read_json(layout.secrets)
    wanted = ("postgres", "admin", MLFLOW_USER, "flask_secret_key")
    if not all(key in found for key in wanted):
        found = {key: found.get(key) or secrets.token_urlsafe(24) for key in wanted}
        write_private(layout.secrets, json.dumps(found, indent=2))
    return found


def save_state(layout: Layout, state: dict) -> None:
    write_private(layout.state, json.dumps(state, indent=2, sort_keys=True))


# ---- processes and ports --------------------------------------------------------------


def free_port(lowest: int = 1024) -> int:
    import port_for

    return int(port_for.select_random(ports=set(range(lowest, 32768))))


def port_for_entry(entry: dict, lowest: int = 1024) -> int:
    """The service's port from its last start if still free (stable URIs across a
    restart), else a new free one."""
    port = entry.get("port")
    return port if port and not port_open(port) else free_port(lowest)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process is dead for our purposes.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    return True


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def wait_for(
    what: str, ready: Callable[[], bool], timeout: float, logfile: Path, pid: int | None = None
) -> None:
    """Poll ``ready`` until it holds; fail at once if the daemon ``pid`` has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            raise StackError(f"{what} exited at start; see {logfile}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s; see {logfile}")


def as_user(user: str | None) -> list[str]:
    """Prefix a command to run as ``user`` (root only; others run as themselves)."""
    return ["runuser", "-u", user, "--"] if user and os.geteuid() == 0 else []


def spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session, detached from this process, and return its pid."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return proc.pid


def run_quietly(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise StackError(f"{what} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout


def stop_pid(pid: int, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: the process and its session."""
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pid_from_file(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


def chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for item in (path, *path.rglob("*")) if path.is_dir() else (path,):
            os.chown(item, entry.pw_uid, entry.pw_gid)


# ---- PostgreSQL -----------------------------------------------------------------------


def start_postgres(layout: Layout, state: dict, secret: dict[str, str]) -> None:
    entry = state.setdefault("postgres", {})
    if alive(entry.get("pid")):
        return
    if not (PG_BIN / "initdb").is_file():
        raise StackError(
            f"PostgreSQL's server is missing: apt-get install postgresql (no {PG_BIN})"
        )
    user = "postgres" if os.geteuid() == 0 else None
    layout.pg_socket.mkdir(parents=True, exist_ok=True)
    if not (layout.pg_data / "PG_VERSION").is_file():
        # initdb refuses to run as root; the cluster belongs to the postgres user. Local
        # socket connections are trusted (only the stack's owner reaches its folder); TCP
        # on 127.0.0.1 needs the password, which the MLflow server reads from PGPASSFILE.
        layout.pg_data.mkdir(parents=True, exist_ok=True)
        pwfile = layout.pg_data.parent / "pwfile"
        write_private(pwfile, secret["postgres"] + "\n")
        if user:
            chown(layout.pg_data.parent, user)
        try:
            run_quietly(
                [
                    *as_user(user),
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(layout.pg_data),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--no-sync",
                ],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
    port = port_for_entry(entry)
    options = f"-c listen_addresses={HOST} -p {port} -k {layout.pg_socket}"
    run_quietly(
        [
            *as_user(user),
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(layout.pg_data),
            "-w",
            "-l",
            str(layout.pg_data.parent / "postgres.log"),
            "-o",
            options,
            "start",
        ],
        "PostgreSQL start",
    )
    entry.update(port=port, pid=pid_from_file(layout.pg_data / "postmaster.pid"))
    for database in ("mlflow", "mlflow_auth"):
        if not psql(layout, port, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
            psql(layout, port, f"CREATE DATABASE {database}")
    write_private(layout.pgpass, f"{HOST}:{port}:*:postgres:{secret['postgres']}\n")


def psql(layout: Layout, port: int, sql: str) -> str:
    user = "postgres" if os.geteuid() == 0 else None
    cmd = [
        *as_user(user),
        str(PG_BIN / "psql"),
        "-h",
        str(layout.pg_socket),
        "-p",
        str(port),
        "-U",
        "postgres",
        "-tAc",
        sql,
    ]
    return run_quietly(cmd, f"psql {sql!r}").strip()


def stop_postgres(layout: Layout, state: dict) -> None:
    entry = state.get("postgres", {})
    if alive(entry.get("pid")):
        user = "postgres" if os.geteuid() == 0 else None
        subprocess.run(
            [
                *as_user(user),
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(layout.pg_data),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        stop_pid(entry["pid"])


def restart_postgres(layout: Layout, state: dict) -> None:
    """Restart the database under a running server (the fault test's scenario)."""
    entry = state["postgres"]
    user = "postgres" if os.geteuid() == 0 else None
    options = f"-c listen_addresses={HOST} -p {entry['port']} -k {layout.pg_socket}"
    run_quietly(
        [
            *as_user(user),
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(layout.pg_data),
            "-w",
            "-m",
            "fast",
            # The new server writes to its log, not to this process's pipes (which
            # run_quietly would otherwise wait on for as long as the server runs).
            "-l",
            str(layout.pg_data.parent / "postgres.log"),
            "-o",
            options,
            "restart",
        ],
        "PostgreSQL restart",
    )
    entry["pid"] = pid_from_file(layout.pg_data / "postmaster.pid")


# ---- the MLflow server with accounts --------------------------------------------------


def auth_config(database: str) -> str:
    """The basic-auth app's config: its user store on ``database``, read-only by default."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database}/mlflow_auth\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # MLflow's own cache of successful logins (a keyed HMAC of the password, never
        # the password). Without it every request pays a scrypt check, about 0.5 s of the
        # server's CPU here: the server, not the jobs, set the pace of a sweep. With one
        # worker, a password changed or a user deleted through the API takes effect at
        # once; a change made in the database directly, within a minute.
        "auth_cache_ttl_seconds = 60\n"
    )


def start_mlflow(layout: Layout, state: dict, secret: dict[str, str]) -> None:
    entry = state.setdefault("mlflow", {})
    if alive(entry.get("pid")):
        return
    pg_port = state["postgres"]["port"]
    database = f"postgresql+psycopg2://postgres@{HOST}:{pg_port}"
    write_private(layout.auth_ini, auth_config(database))
    layout.artifacts.mkdir(parents=True, exist_ok=True)
    port = port_for_entry(entry)
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(layout.auth_ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": secret["admin"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret["flask_secret_key"],
        "PGPASSFILE": str(layout.pgpass),
        # The job runner and its consumers take about 2.3 GB; this stack runs none.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env[key] = ""
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--backend-store-uri",
        f"{database}/mlflow",
        "--artifacts-destination",
        str(layout.artifacts),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    entry.update(port=port, pid=spawn(cmd, layout.log("mlflow"), env))
    uri = f"http://{HOST}:{port}"
    wait_for(
        "the MLflow server",
        lambda: _get(f"{uri}/health") == 200,
        120,
        layout.log("mlflow"),
        entry["pid"],
    )
    ensure_user(uri, secret)


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status


def _basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


def ensure_user(uri: str, secret: dict[str, str]) -> None:
    """Create the user ``digits`` with the stack's password (once; it may exist)."""
    body = json.dumps({"username": MLFLOW_USER, "password": secret[MLFLOW_USER]}).encode()
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/users/create",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": _basic(ADMIN_USER, secret["admin"]),
        },
    )
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as error:
        if "RESOURCE_ALREADY_EXISTS" not in error.read().decode(errors="replace"):
            raise StackError(f"creating the MLflow user {MLFLOW_USER} failed: {error}") from None


# ---- SLURM and munge ------------------------------------------------------------------


def ensure_slurm_installed() -> None:
    missing = [name for name in ("slurmctld", "slurmd", "sbatch", "munged") if not _which(name)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError(
            f"SLURM is not installed ({', '.join(missing)} missing): run as root, or"
            f" apt-get install {' '.join(SLURM_PACKAGES)}"
        )
    log.info("installing %s with apt-get", " ".join(SLURM_PACKAGES))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run_quietly(["apt-get", "update", "-qq"], "apt-get update", env)
    run_quietly(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *SLURM_PACKAGES],
        "apt-get install",
        env,
    )


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def start_munge(layout: Layout, state: dict) -> None:
    """A private munged: its own key, socket and pid file, so that it never touches (or
    collides with) a machine-wide munge."""
    entry = state.setdefault("munge", {})
    if alive(entry.get("pid")):
        return
    layout.munge.mkdir(parents=True, exist_ok=True)
    key = layout.munge / "munge.key"
    if not key.is_file():
        write_private(key, secrets.token_hex(512))
    owner = "munge" if os.geteuid() == 0 else None
    if owner:
        chown(layout.munge, owner)
    os.chmod(layout.munge, 0o755)  # munged: clients must reach its socket
    os.chmod(key, 0o400)
    pidfile = layout.munge / "munged.pid"
    run_quietly(
        [
            *as_user(owner),
            _which("munged") or "munged",
            f"--socket={layout.munge / 'munge.socket'}",
            f"--key-file={key}",
            f"--pid-file={pidfile}",
            f"--log-file={layout.munge / 'munged.log'}",
            f"--seed-file={layout.munge / 'munged.seed'}",
        ],
        "munged",
    )
    wait_for("munged", lambda: alive(pid_from_file(pidfile)), 10, layout.munge / "munged.log")
    entry["pid"] = pid_from_file(pidfile)


def slurm_conf(layout: Layout, ports: tuple[int, int], memory_mb: int) -> str:
    node = socket.gethostname().split(".")[0]
    spool = layout.slurm
    return "\n".join(
        [
            "ClusterName=digits",
            f"SlurmctldHost={node}({HOST})",
            f"SlurmctldPort={ports[0]}",
            f"SlurmdPort={ports[1]}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={layout.munge / 'munge.socket'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            # Bind to the addresses named here (127.0.0.1), not to every interface.
            "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            f"StateSaveLocation={spool / 'state'}",
            f"SlurmdSpoolDir={spool / 'spool'}",
            f"SlurmctldPidFile={spool / 'slurmctld.pid'}",
            f"SlurmdPidFile={spool / 'slurmd.pid'}",
            f"SlurmctldLogFile={spool / 'slurmctld.log'}",
            f"SlurmdLogFile={spool / 'slurmd.log'}",
            f"NodeName={node} NodeAddr={HOST} CPUs={os.cpu_count()} RealMemory={memory_mb}",
            f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def total_memory_mb() -> int:
    with open("/proc/meminfo") as meminfo:
        kib = int(meminfo.readline().split()[1])
    # Leave room for the stack's own daemons.
    return max(kib // 1024 - 2048, 1024)


def start_slurm(layout: Layout, state: dict) -> None:
    ctld, slurmd = state.setdefault("slurmctld", {}), state.setdefault("slurmd", {})
    if alive(ctld.get("pid")) and alive(slurmd.get("pid")):
        return
    if os.geteuid() != 0:
        raise StackError("the local SLURM cluster needs root (slurmd runs jobs as any user)")
    for sub in ("state", "spool"):
        (layout.slurm / sub).mkdir(parents=True, exist_ok=True)
    ports = tuple(
        entry["port"] if alive(entry.get("pid")) else port_for_entry(entry)
        for entry in (ctld, slurmd)
    )
    layout.slurm_conf.write_text(slurm_conf(layout, ports, total_memory_mb()))
    env = {"SLURM_CONF": str(layout.slurm_conf)}
    if not alive(ctld.get("pid")):
        run_quietly(
            [_which("slurmctld") or "slurmctld", "-f", str(layout.slurm_conf)], "slurmctld", env
        )
        ctld.update(port=ports[0], pid=_wait_pidfile(layout.slurm / "slurmctld.pid", "slurmctld"))
    if not alive(slurmd.get("pid")):
        run_quietly([_which("slurmd") or "slurmd", "-f", str(layout.slurm_conf)], "slurmd", env)
        slurmd.update(port=ports[1], pid=_wait_pidfile(layout.slurm / "slurmd.pid", "slurmd"))

    def node_idle() -> bool:
        out = run_quietly(["sinfo", "-h", "-o", "%T"], "sinfo", env)
        return out.strip().rstrip("*") in ("idle", "mixed", "allocated")

    wait_for("the SLURM node", node_idle, 30, layout.slurm / "slurmd.log")


def _wait_pidfile(path: Path, what: str) -> int:
    wait_for(what, lambda: alive(pid_from_file(path)), 15, path.with_suffix(".log"))
    pid = pid_from_file(path)
    assert pid is not None
    return pid


def stop_slurm(layout: Layout, state: dict) -> None:
    """Stop slurmd and slurmctld by their pids (no ``scontrol shutdown``: it reaches
    whichever cluster SLURM_CONF names), cancelling the jobs still queued first."""
    env = {"SLURM_CONF": str(layout.slurm_conf)}
    if alive(state.get("slurmctld", {}).get("pid")) and layout.slurm_conf.is_file():
        subprocess.run(
            ["scancel", "--full", "--user", pwd.getpwuid(os.geteuid()).pw_name],
            capture_output=True,
            env={**os.environ, **env},
            check=False,
            timeout=30,
        )
    for name in ("slurmd", "slurmctld"):
        stop_pid(state.get(name, {}).get("pid") or 0)


# ---- Ray ------------------------------------------------------------------------------


def start_ray(layout: Layout, state: dict, mlflow_env: dict[str, str]) -> None:
    """A Ray head in the foreground of its own session (``--block``), so that stopping its
    pid stops the processes it started. Its workers inherit its environment: that is how
    the MLflow credentials reach Ray jobs without being written anywhere."""
    entry = state.setdefault("ray", {})
    if alive(entry.get("pid")):
        return
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        raise StackError("Ray is not installed: pip install -e '.[ray]'")
    layout.ray.mkdir(parents=True, exist_ok=True)
    # Above the ports Ray gives its workers (10002-19999).
    port = port_for_entry(entry, lowest=20000)
    cmd = [
        ray,
        "start",
        "--head",
        "--block",
        f"--node-ip-address={HOST}",
        f"--port={port}",
        f"--num-cpus={os.cpu_count()}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={layout.ray}",
    ]
    token = layout.ray / "auth_token"
    if not token.is_file():
        write_private(token, secrets.token_hex(32))
    env = {**RAY_ENV, "RAY_AUTH_TOKEN_PATH": str(token), **mlflow_env}
    entry.update(port=port, pid=spawn(cmd, layout.log("ray"), env))
    wait_for("the Ray head", lambda: port_open(port), 90, layout.log("ray"), entry["pid"])


# ---- the commands ---------------------------------------------------------------------


def mlflow_env(state: dict, secret: dict[str, str]) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"http://{HOST}:{state['mlflow']['port']}",
        "MLFLOW_TRACKING_USERNAME": MLFLOW_USER,
        "MLFLOW_TRACKING_PASSWORD": secret[MLFLOW_USER],
    }


def up(layout: Layout, with_ray: bool) -> dict:
    started = time.perf_counter()
    layout.root.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.root, 0o755)  # the postgres and munge users must reach their folders
    (layout.root / ".gitignore").write_text("*\n")
    secret = load_secrets(layout)
    state = read_json(layout.state)
    try:
        start_postgres(layout, state, secret)
        start_mlflow(layout, state, secret)
        ensure_slurm_installed()
        start_munge(layout, state)
        start_slurm(layout, state)
        if with_ray:
            start_ray(layout, state, mlflow_env(state, secret))
    finally:
        save_state(layout, state)
    log.info("stack up in %.1f s", time.perf_counter() - started)
    return state


def down(layout: Layout) -> None:
    state = read_json(layout.state)
    stop_pid(state.get("ray", {}).get("pid") or 0, grace=30)
    stop_slurm(layout, state)
    stop_pid(state.get("munge", {}).get("pid") or 0)
    stop_pid(state.get("mlflow", {}).get("pid") or 0)
    stop_postgres(layout, state)
    for entry in state.values():
        entry.pop("pid", None)
    if layout.root.is_dir():
        save_state(layout, state)


def status(layout: Layout) -> dict[str, dict]:
    state = read_json(layout.state)
    return {
        name: {**entry, "running": alive(entry.get("pid"))}
        for name, entry in state.items()
        if isinstance(entry, dict)
    }


def env_lines(layout: Layout) -> list[str]:
    state = read_json(layout.state)
    if not alive(state.get("mlflow", {}).get("pid")):
        raise StackError("the stack is not up: python -m digits_nn.stack up")
    values = mlflow_env(state, load_secrets(layout))
    values["SLURM_CONF"] = str(layout.slurm_conf)
    if alive(state.get("ray", {}).get("pid")):
        values["RAY_ADDRESS"] = f"{HOST}:{state['ray']['port']}"
        values["RAY_AUTH_TOKEN_PATH"] = str(layout.ray / "auth_token")
        values |= RAY_ENV
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m digits_nn.stack", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--ray", action="store_true", help="up: also start a Ray head")
    parser.add_argument("--dir", type=Path, default=None, help="the stack's folder (.stack/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    layout = Layout((args.dir or default_root()).resolve())
    try:
        if args.command == "up":
            state = up(layout, args.ray)
            for name, entry in state.items():
                log.info("%-10s pid %-8s port %s", name, entry.get("pid"), entry.get("port", "-"))
            log.info('next: eval "$(python -m digits_nn.stack env)"')
        elif args.command == "down":
            down(layout)
            log.info("stack down")
        elif args.command == "status":
            found = status(layout)
            for name, entry in found.items():
                state = "running" if entry["running"] else "stopped"
                pid, port = entry.get("pid") or "-", entry.get("port", "-")
                print(f"{name:10} {state:8} pid {pid:<8} port {port}")
            if not found:
                print("nothing: the stack was never started here")
        else:
            print("\n".join(env_lines(layout)))
    except StackError as error:
        log.error("stack: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
