"""joblib's workers, started warm: forks of a server that has imported a job's modules.

By default loky starts each worker as a new interpreter, which then imports sklearn,
matplotlib and mlflow itself, where a classic job takes about as long as those imports.
The fork server imports them once (:mod:`digits_nn.sweeps.worker_init` last), and
starts while the launching process is busy opening the store.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

# What a job imports, loaded once by the fork server instead of by every worker.
JOB_MODULES = [
    "digits_nn.sweeps.job",
    "hydra_plugins.hydra_joblib_launcher._core",
    "sklearn.datasets",
    "sklearn.model_selection",
    "matplotlib.pyplot",
]


# Imported last: it sets up the worker (one BLAS thread, a frozen heap).
# Imported last: it sets up each worker (one BLAS thread, a frozen heap).
WORKER_INIT = "digits_nn.sweeps.worker_init"
TRACKING_MODULES = ["mlflow", "mlflow.store.tracking.sqlalchemy_store", "mlflow.pyfunc"]


def uses_joblib(config: DictConfig) -> bool:
    target = OmegaConf.select(config, "hydra.launcher._target_", default="")
    return target.endswith(".JoblibLauncher")


def start_fork_server(tracking_enabled: bool) -> None:
    """Have joblib's workers start warm, as forks of a server that imported a job's modules.

    By default loky starts each worker as a new interpreter, which then imports sklearn,
    matplotlib and mlflow itself before its first job, for about as long as a classic job
    takes. The fork server imports them once, and starts now, while this process is busy
    opening the store. Forking it is safe where forking this process is
    not: it is a fresh interpreter that only imports, with no database connection open.
    """
    import multiprocessing
    from multiprocessing import forkserver

    from joblib.externals.loky.backend import context

    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return
    modules = [*JOB_MODULES, *(TRACKING_MODULES if tracking_enabled else []), WORKER_INIT]
    multiprocessing.set_forkserver_preload(modules)
    context.set_start_method("forkserver", force=True)
    forkserver.ensure_running()
