"""A one-node SLURM cluster with munge, from Debian's packages.

Run by root, the cluster runs jobs as their submitter and munged runs as the ``munge``
user; run by anyone else, every daemon runs as that user, and so do the jobs."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from digits_nn.stack.layout import HOST, Layout, StackError, write_private
from digits_nn.stack.processes import (
    alive,
    apt_install,
    as_user,
    chown,
    pid_from_file,
    port_for_entry,
    record,
    run_quietly,
    running,
    stop,
    wait_for,
)

SLURM_PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]


PARTITION = "debug"


def ensure_slurm_installed() -> None:
    missing = [name for name in ("slurmctld", "slurmd", "sbatch", "munged") if not _which(name)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError(
            f"SLURM is not installed ({', '.join(missing)} missing): run as root, or"
            f" apt-get install {' '.join(SLURM_PACKAGES)}"
        )
    apt_install(SLURM_PACKAGES)


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def start_munge(layout: Layout, state: dict) -> None:
    """A private munged: its own key, socket and pid file, so that it never touches (or
    collides with) a machine-wide munge. Its folder is in the services folder, which
    every user can traverse: munged refuses a socket that they cannot reach."""
    entry = state.setdefault("munge", {})
    if running(entry):
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
    record(entry, pid_from_file(pidfile))


def slurm_conf(layout: Layout, ports: tuple[int, int], memory_mb: int) -> str:
    node = socket.gethostname().split(".")[0]
    user = pwd.getpwuid(os.geteuid()).pw_name
    spool = layout.slurm
    return "\n".join(
        [
            "ClusterName=digits",
            f"SlurmctldHost={node}({HOST})",
            f"SlurmctldPort={ports[0]}",
            f"SlurmdPort={ports[1]}",
            # The stack's user: root, or a plain user, whose slurmd runs their own jobs.
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
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
    if running(ctld) and running(slurmd):
        return
    for sub in ("state", "spool"):
        (layout.slurm / sub).mkdir(parents=True, exist_ok=True)
    ports = tuple(
        entry["port"] if running(entry) else port_for_entry(entry) for entry in (ctld, slurmd)
    )
    layout.slurm_conf.write_text(slurm_conf(layout, ports, total_memory_mb()))
    env = {"SLURM_CONF": str(layout.slurm_conf)}
    for name, entry, port in (("slurmctld", ctld, ports[0]), ("slurmd", slurmd, ports[1])):
        if not running(entry):
            run_quietly([_which(name) or name, "-f", str(layout.slurm_conf)], name, env)
            entry["port"] = port
            record(entry, _wait_pidfile(layout.slurm / f"{name}.pid", name))

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
    if running(state.get("slurmctld", {})) and layout.slurm_conf.is_file():
        subprocess.run(
            ["scancel", "--full", "--user", pwd.getpwuid(os.geteuid()).pw_name],
            capture_output=True,
            env={**os.environ, **env},
            check=False,
            timeout=30,
        )
    for name in ("slurmd", "slurmctld"):
        stop(state.get(name, {}))
