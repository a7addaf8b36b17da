"""Starting, stopping and describing the whole stack: ``up``, ``down``, ``status``, ``env``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import time
from pathlib import Path

from digits_nn.stack.layout import (
    HOST,
    Layout,
    StackError,
    default_root,
    ensure_services,
    load_secrets,
    read_json,
    remove_stack_folders,
    save_state,
)
from digits_nn.stack.mlflow_server import mlflow_env, start_mlflow
from digits_nn.stack.postgres import start_postgres, stop_postgres
from digits_nn.stack.processes import running, stop
from digits_nn.stack.ray import RAY_ENV, start_ray
from digits_nn.stack.slurm import (
    ensure_slurm_installed,
    start_munge,
    start_slurm,
    stop_slurm,
)

log = logging.getLogger("digits_nn.stack")


def up(layout: Layout, with_ray: bool) -> dict:
    started = time.perf_counter()
    layout.root.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.root, 0o700)  # secrets, logs, state: the stack's user's alone
    (layout.root / ".gitignore").write_text("*\n")
    ensure_services(layout)
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
    stop(state.get("ray", {}), grace=30)
    stop_slurm(layout, state)
    stop(state.get("munge", {}))
    stop(state.get("mlflow", {}))
    stop_postgres(layout, state)
    for entry in state.values():
        entry.pop("pid", None)
        entry.pop("started", None)
    if layout.root.is_dir():
        save_state(layout, state)


def purge(layout: Layout) -> None:
    """``down``, then delete the stack's data, logs and secrets, the services' too."""
    down(layout)
    remove_stack_folders(layout)


def status(layout: Layout) -> dict[str, dict]:
    state = read_json(layout.state)
    return {
        name: {**entry, "running": running(entry)}
        for name, entry in state.items()
        if isinstance(entry, dict)
    }


def env_lines(layout: Layout) -> list[str]:
    state = read_json(layout.state)
    if not running(state.get("mlflow", {})):
        raise StackError("the stack is not up: python -m digits_nn.stack up")
    values = mlflow_env(state, load_secrets(layout))
    values["SLURM_CONF"] = str(layout.slurm_conf)
    values |= optuna_env(layout, state)
    if running(state.get("ray", {})):
        values["RAY_ADDRESS"] = f"{HOST}:{state['ray']['port']}"
        values["RAY_AUTH_TOKEN_PATH"] = str(layout.ray / "auth_token")
        values |= RAY_ENV
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


# The Optuna studies' database, as digits_nn.sweeps.study reads it (the name is the
# sweeps' own; the stack imports nothing of the pipeline).
OPTUNA_STORAGE_ENV = "DIGITS_NN_OPTUNA_STORAGE"


def optuna_env(layout: Layout, state: dict) -> dict[str, str]:
    """Where hparams_search=optuna keeps its studies: the stack's PostgreSQL, database
    ``optuna``. The URL holds no password; libpq reads it from the pgpass file."""
    port = state.get("postgres", {}).get("port")
    if not port or not running(state["postgres"]):
        return {}
    url = f"postgresql+psycopg2://postgres@{HOST}:{port}/optuna"
    return {OPTUNA_STORAGE_ENV: url, "PGPASSFILE": str(layout.pgpass)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m digits_nn.stack", description="A local stack to try and test scaling out."
    )
    parser.add_argument("command", choices=["up", "down", "status", "env", "purge"])
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
        elif args.command == "purge":
            purge(layout)
            log.info("stack down, and its data deleted")
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
