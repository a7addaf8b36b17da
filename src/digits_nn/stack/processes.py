"""Processes and ports: starting daemons detached, waiting for them, stopping them."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from digits_nn.stack.layout import HOST, StackError

log = logging.getLogger("digits_nn.stack")


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


def identity(pid: int | None) -> str | None:
    """What tells the process holding ``pid`` from any later one given the same pid: the
    boot it runs in and its start time (clock ticks after boot). None if no such process."""
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # Field 22, starttime; the command name before it (in parentheses) may hold spaces.
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def record(entry: dict, pid: int | None) -> None:
    """Note in a service's state entry the process it started, with its identity."""
    entry.update(pid=pid, started=identity(pid))


def running(entry: dict) -> bool:
    """Whether the process a state entry recorded still runs: its pid is alive and held
    by that same process. A pid the entry names without proof (another boot, another
    start time, or no identity recorded) is somebody else's, never to be signalled."""
    pid, started = entry.get("pid"), entry.get("started")
    return started is not None and alive(pid) and identity(pid) == started


def stop(entry: dict, grace: float = 15.0) -> None:
    """Stop the process a state entry recorded, if it is still that process."""
    if running(entry):
        stop_pid(entry["pid"], grace)


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


def apt_install(packages: list[str]) -> None:
    """Install Debian packages (as root), for a stack started on a machine without them."""
    log.info("installing %s with apt-get", " ".join(packages))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run_quietly(["apt-get", "update", "-qq"], "apt-get update", env)
    run_quietly(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        "apt-get install",
        env,
    )


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
