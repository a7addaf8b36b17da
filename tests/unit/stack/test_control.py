"""The stack's commands, without starting anything."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from digits_nn.stack.control import env_lines
from digits_nn.stack.layout import Layout, StackError, load_secrets, save_state
from digits_nn.stack.processes import record


def test_env_refuses_when_the_server_is_not_running(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    load_secrets(layout)
    save_state(layout, {"mlflow": {"port": 5123, "pid": None}})
    with pytest.raises(StackError, match="not up"):
        env_lines(layout)


def test_env_lines_quote_values_for_a_shell(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    password = "p w'\"$x"
    secrets = dict(load_secrets(layout), digits=password)
    layout.secrets.write_text(json.dumps(secrets))
    server = {"port": 5123}
    record(server, os.getpid())  # a live process, as the stack records one it started
    save_state(layout, {"mlflow": server})
    exported = dict(shlex.split(line)[1].split("=", 1) for line in env_lines(layout))
    assert exported["MLFLOW_TRACKING_PASSWORD"] == password
    assert exported["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5123"
    assert exported["SLURM_CONF"] == str(layout.slurm_conf)


def test_env_names_the_optuna_database_without_its_password(tmp_path: Path) -> None:
    from digits_nn.stack.control import OPTUNA_STORAGE_ENV
    from digits_nn.sweeps.study import STORAGE_ENV

    assert OPTUNA_STORAGE_ENV == STORAGE_ENV  # the name the search reads
    layout = Layout(tmp_path)
    secret = load_secrets(layout)
    live, postgres = {"port": 5123}, {"port": 5432}
    record(live, os.getpid())
    record(postgres, os.getpid())
    save_state(layout, {"mlflow": live, "postgres": postgres})
    exported = dict(shlex.split(line)[1].split("=", 1) for line in env_lines(layout))
    url = exported[STORAGE_ENV]
    assert url == "postgresql+psycopg2://postgres@127.0.0.1:5432/optuna"
    assert secret["postgres"] not in url and exported["PGPASSFILE"] == str(layout.pgpass)
    save_state(layout, {"mlflow": live})  # no database running: nothing to name
    assert not any(STORAGE_ENV in line for line in env_lines(layout))
