"""The stack's MLflow server with accounts."""

from __future__ import annotations

from pathlib import Path

from digits_nn.stack.mlflow_server import auth_config


def test_the_server_caches_logins_as_mlflow_reads_its_config(tmp_path: Path, monkeypatch) -> None:
    """Without MLflow's login cache every request costs the server a scrypt check, and
    the server, not the jobs, sets the pace of a sweep."""
    from mlflow.server.auth.config import read_auth_config

    ini = tmp_path / "basic_auth.ini"
    ini.write_text(auth_config("postgresql+psycopg2://postgres@127.0.0.1:5432"))
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
    read = read_auth_config()
    assert read.auth_cache_ttl_seconds > 0
    assert read.default_permission == "READ"
    assert read.database_uri == "postgresql+psycopg2://postgres@127.0.0.1:5432/mlflow_auth"
