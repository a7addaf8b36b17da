"""Hydra launchers with what a cluster engine needs built in, not typed by the user.

``conf/hydra/launcher/ray.yaml`` names :class:`RayLauncher`: hydra-ray-launcher's own,
plus three things measured on ray 2.60 (docs scale-out notes):

- the launching process runs as a Ray client in token mode and keeps 127.0.0.1 as
  127.0.0.1 (``RAY_AUTH_MODE=token``, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), unless the
  user set those variables;
- the launching shell's non-secret MLflow settings (tracking URI, user name,
  experiment) travel to every job in Ray's ``runtime_env``, built here in memory (a
  value in the launcher's config would be written into every job's
  ``.hydra/hydra.yaml``). Secrets do not: Ray writes each runtime_env into its
  ``runtime_env_agent.log`` on every node. A Ray worker takes ``MLFLOW_TRACKING_PASSWORD``
  or ``_TOKEN`` from the environment its node's ``ray start`` ran in, as
  ``python -m digits_nn.stack up --ray`` does and a cluster's admin does on each node;
- ``object_store_memory`` stays unset (the preset's null), which Ray requires when
  joining a running cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from digits_nn.errors import DigitsNNError
from digits_nn.tracking.redaction import redact

log = logging.getLogger(__name__)

# What a job takes from the launching shell to log to the team's server. Never a
# secret: Ray logs every runtime_env in clear.
MLFLOW_SETTINGS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_EXPERIMENT_NAME")
RAY_CLIENT_ENV = {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

try:
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher as _PluginRayLauncher
except ImportError:  # the ray extra is not installed
    _PluginRayLauncher = None


def job_environment(environ: dict[str, str], preset: dict[str, str]) -> dict[str, str]:
    """The env_vars of a Ray job: the preset's, plus the launching shell's non-secret
    MLflow settings (a URI with a password in it stays behind too)."""
    settings = {key: environ[key] for key in MLFLOW_SETTINGS if environ.get(key)}
    if redact(settings.get("MLFLOW_TRACKING_URI", "")) != settings.get("MLFLOW_TRACKING_URI", ""):
        del settings["MLFLOW_TRACKING_URI"]
    return {**preset, **settings}


if _PluginRayLauncher is not None:

    class RayLauncher(_PluginRayLauncher):  # type: ignore[misc,valid-type]
        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
            import ray

            for key, value in RAY_CLIENT_ENV.items():
                os.environ.setdefault(key, value)
            if not ray.is_initialized():
                init = OmegaConf.to_container(self.ray_cfg.init, resolve=True)
                runtime_env = dict(init.pop("runtime_env", None) or {})
                runtime_env["env_vars"] = job_environment(
                    dict(os.environ), dict(runtime_env.get("env_vars") or {})
                )
                log.info("joining Ray at %s", init.get("address") or "a new local cluster")
                ray.init(runtime_env=runtime_env, **init)
            return super().launch(job_overrides, initial_job_idx)

else:

    class RayLauncher:  # type: ignore[no-redef]
        def __init__(self, **_: Any) -> None:
            raise DigitsNNError("hydra/launcher=ray needs the ray extra: pip install -e '.[ray]'")
