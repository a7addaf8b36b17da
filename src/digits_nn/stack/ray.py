"""A Ray head on 127.0.0.1, for ``hydra/launcher=ray``."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

from digits_nn.stack.layout import HOST, Layout, StackError, write_private
from digits_nn.stack.processes import port_for_entry, port_open, record, running, spawn, wait_for

# Ray rewrites 127.0.0.1 to the machine's outward address unless this is set, and since
# ray 2.59 clients must run in token mode to join a cluster (the token is in ~/.ray).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


def start_ray(layout: Layout, state: dict, mlflow_env: dict[str, str]) -> None:
    """A Ray head in the foreground of its own session (``--block``), so that stopping its
    pid stops the processes it started. Its workers inherit its environment: that is how
    the MLflow credentials reach Ray jobs without being written anywhere."""
    entry = state.setdefault("ray", {})
    if running(entry):
        return
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        raise StackError("Ray is not installed: pip install -e '.[ray]'")
    layout.ray.mkdir(parents=True, exist_ok=True)
    # Above the ports Ray gives its workers (10002-19999).
    port = port_for_entry(entry, lowest=20000)
    cmd = [
        ray,
        "start",
        "--head",
        "--block",
        f"--node-ip-address={HOST}",
        f"--port={port}",
        f"--num-cpus={os.cpu_count()}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={layout.ray}",
    ]
    token = layout.ray / "auth_token"
    if not token.is_file():
        write_private(token, secrets.token_hex(32))
    env = {**RAY_ENV, "RAY_AUTH_TOKEN_PATH": str(token), **mlflow_env}
    entry["port"] = port
    record(entry, spawn(cmd, layout.log("ray"), env))
    wait_for("the Ray head", lambda: port_open(port), 90, layout.log("ray"), entry["pid"])
