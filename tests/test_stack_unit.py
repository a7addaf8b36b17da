"""The stack module's pure parts, and its place in the project (fast)."""

from __future__ import annotations

import re
from pathlib import Path

from digits_nn import stack

ROOT = Path(__file__).resolve().parents[1]


def test_the_pipeline_never_imports_the_stack() -> None:
    """The pipeline talks to whatever the environment names; only people and tests start
    the local stack."""
    sources = [p for p in (ROOT / "src").rglob("*.py") if p.name != "stack.py"]
    pattern = re.compile(
        r"^\s*(from digits_nn import .*\bstack\b|import digits_nn\.stack|from digits_nn\.stack )",
        re.MULTILINE,
    )
    importers = [p for p in sources if pattern.search(p.read_text())]

    assert not importers


def test_slurm_binds_its_daemons_to_127_0_0_1(tmp_path: Path) -> None:
    conf = stack.slurm_conf(stack.Layout(tmp_path), (6817, 6818), 4000)
    assert "NoInAddrAny" in conf and "NoCtldInAddrAny" in conf
    assert re.search(r"SlurmctldHost=\S+\(127\.0\.0\.1\)", conf)
    assert "NodeAddr=127.0.0.1" in conf
    assert f"AuthInfo=socket={tmp_path / 'munge' / 'munge.socket'}" in conf


def test_secrets_are_generated_once_and_readable_by_their_owner_only(tmp_path: Path) -> None:
    layout = stack.Layout(tmp_path)
    first = stack.load_secrets(layout)
    assert stack.load_secrets(layout) == first
    assert len(set(first.values())) == len(first)
    assert layout.secrets.stat().st_mode & 0o777 == 0o600


def test_env_lines_quote_values_for_a_shell(tmp_path: Path) -> None:
    layout = stack.Layout(tmp_path)
    stack.load_secrets(layout)
    stack.save_state(layout, {"mlflow": {"port": 5123, "pid": None}})
    try:
        stack.env_lines(layout)
    except stack.StackError as error:
        assert "not up" in str(error)
    else:
        raise AssertionError("env must refuse when the server is not running")


def test_the_server_caches_logins_as_mlflow_reads_its_config(tmp_path: Path, monkeypatch) -> None:
    """Without MLflow's login cache every request costs the server a scrypt check (0.5 s
    of CPU here), and the server, not the jobs, sets the pace of a sweep."""
    from mlflow.server.auth.config import read_auth_config

    ini = tmp_path / "basic_auth.ini"
    ini.write_text(stack.auth_config("postgresql+psycopg2://postgres@127.0.0.1:5432"))
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
    read = read_auth_config()
    assert read.auth_cache_ttl_seconds > 0
    assert read.default_permission == "READ"
    assert read.database_uri == "postgresql+psycopg2://postgres@127.0.0.1:5432/mlflow_auth"
