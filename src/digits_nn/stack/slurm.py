"""A one-node SLURM cluster with munge, from Debian's packages."""

from __future__ import annotations

import logging
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
    as_user,
    chown,
    pid_from_file,
    port_for_entry,
    run_quietly,
    stop_pid,
    wait_for,
)

log = logging.getLogger("digits_nn.stack")


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
