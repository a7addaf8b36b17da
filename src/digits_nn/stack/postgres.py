"""PostgreSQL, the tracking server's database: run as the ``postgres`` user by root, as
the stack's own user otherwise, with its files in the stack's services folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from digits_nn.stack.layout import HOST, Layout, StackError, write_private
from digits_nn.stack.processes import (
    apt_install,
    as_user,
    chown,
    pid_from_file,
    port_for_entry,
    record,
    run_quietly,
    running,
    stop,
)

# The tracking server's runs and accounts, and the Optuna studies of hparams_search=optuna.
DATABASES = ("mlflow", "mlflow_auth", "optuna")
# Debian's server packages keep each major version's programs in a folder of its own.
PG_ROOT = Path("/usr/lib/postgresql")
POSTGRES_PACKAGES = ["postgresql"]


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL server's programs (``/usr/lib/postgresql/<n>/bin``)."""
    programs = [path.parent for path in PG_ROOT.glob("*/bin/initdb")]
    numbered = [path for path in programs if path.parent.name.isdigit()]
    return max(numbered, key=lambda path: int(path.parent.name), default=None)


def ensure_postgres_installed() -> Path:
    """The server's programs, installed with apt-get first if missing and run as root."""
    found = pg_bin()
    if found is None:
        if os.geteuid() != 0:
            raise StackError(
                f"PostgreSQL's server is missing (nothing in {PG_ROOT}): run as root, or"
                f" apt-get install {' '.join(POSTGRES_PACKAGES)}"
            )
        apt_install(POSTGRES_PACKAGES)
        found = pg_bin()
        if found is None:
            raise StackError(f"apt-get installed {POSTGRES_PACKAGES} but {PG_ROOT} is empty")
    return found


def db_user() -> str | None:
    """Who runs the server: initdb and postgres refuse root, so root runs it as the
    ``postgres`` user; anyone else runs it as themselves."""
    return "postgres" if os.geteuid() == 0 else None


def start_postgres(layout: Layout, state: dict, secret: dict[str, str]) -> None:
    entry = state.setdefault("postgres", {})
    if running(entry):
        return
    programs = ensure_postgres_installed()
    user = db_user()
    layout.pg_socket.mkdir(parents=True, exist_ok=True)
    if not (layout.pg_data / "PG_VERSION").is_file():
        # Local socket connections are trusted (only the server's user reaches its
        # folder); TCP on 127.0.0.1 needs the password, which the MLflow server reads
        # from PGPASSFILE.
        layout.pg_data.mkdir(parents=True, exist_ok=True)
        pwfile = layout.pg_data.parent / "pwfile"
        write_private(pwfile, secret["postgres"] + "\n")
        if user:
            chown(layout.pg_data.parent, user)
        os.chmod(layout.pg_data.parent, 0o700)
        try:
            run_quietly(
                [
                    *as_user(user),
                    str(programs / "initdb"),
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
    pg_ctl(layout, port, "start")
    entry["port"] = port
    record(entry, pid_from_file(layout.pg_data / "postmaster.pid"))
    for database in DATABASES:
        if not psql(layout, port, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
            psql(layout, port, f"CREATE DATABASE {database}")
    write_private(layout.pgpass, f"{HOST}:{port}:*:postgres:{secret['postgres']}\n")


def pg_ctl(layout: Layout, port: int, action: str) -> None:
    """``pg_ctl start`` or ``restart`` of the stack's cluster, listening on 127.0.0.1:port
    and on a socket in its own folder, and waiting until it accepts connections."""
    programs = ensure_postgres_installed()
    options = f"-c listen_addresses={HOST} -p {port} -k {layout.pg_socket}"
    run_quietly(
        [
            *as_user(db_user()),
            str(programs / "pg_ctl"),
            "-D",
            str(layout.pg_data),
            "-w",
            *(["-m", "fast"] if action == "restart" else []),
            # The server writes to its log, not to this process's pipes (which
            # run_quietly would otherwise wait on for as long as the server runs).
            "-l",
            str(layout.pg_data.parent / "postgres.log"),
            "-o",
            options,
            action,
        ],
        f"PostgreSQL {action}",
    )


def psql(layout: Layout, port: int, sql: str) -> str:
    cmd = [
        *as_user(db_user()),
        str(ensure_postgres_installed() / "psql"),
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
    if running(entry):
        programs = ensure_postgres_installed()
        subprocess.run(
            [
                *as_user(db_user()),
                str(programs / "pg_ctl"),
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
        stop(entry)


def restart_postgres(layout: Layout, state: dict) -> None:
    """Restart the database under a running server (the fault test's scenario)."""
    entry = state["postgres"]
    pg_ctl(layout, entry["port"], "restart")
    record(entry, pid_from_file(layout.pg_data / "postmaster.pid"))
