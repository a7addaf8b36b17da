"""The MLflow tracking server with accounts (basic auth) on PostgreSQL."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from base64 import b64encode

from digits_nn.stack.layout import ADMIN_USER, HOST, MLFLOW_USER, Layout, StackError, write_private
from digits_nn.stack.processes import port_for_entry, record, running, spawn, wait_for


def auth_config(database: str) -> str:
    """The basic-auth app's config: its user store on ``database``, read-only by default."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database}/mlflow_auth\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # MLflow's own cache of successful logins (a keyed HMAC of the password, never
        # the password). Without it every request pays a scrypt check, costly enough that
        # the server, not the jobs, would set the pace of a sweep. With one
        # worker, a password changed or a user deleted through the API takes effect at
        # once; a change made in the database directly, within a minute.
        "auth_cache_ttl_seconds = 60\n"
    )


def start_mlflow(layout: Layout, state: dict, secret: dict[str, str]) -> None:
    entry = state.setdefault("mlflow", {})
    if running(entry):
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
    entry["port"] = port
    record(entry, spawn(cmd, layout.log("mlflow"), env))
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


def mlflow_env(state: dict, secret: dict[str, str]) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"http://{HOST}:{state['mlflow']['port']}",
        "MLFLOW_TRACKING_USERNAME": MLFLOW_USER,
        "MLFLOW_TRACKING_PASSWORD": secret[MLFLOW_USER],
    }
