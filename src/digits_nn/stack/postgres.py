"""PostgreSQL, the tracking server's database, run as the ``postgres`` user."""

from __future__ import annotations

import os
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
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The tracking server's runs and accounts, and the Optuna studies of hparams_search=optuna.
DATABASES = ("mlflow", "mlflow_auth", "optuna")


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
    for database in DATABASES:
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
