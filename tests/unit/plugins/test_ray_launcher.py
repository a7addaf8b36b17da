"""The Ray launcher's view of the environment."""

from __future__ import annotations

from hydra_plugins.digits_nn_launchers.ray_launcher import job_environment

SECRET = "s3cret-do-not-log"


def test_ray_jobs_get_the_shells_mlflow_settings_but_never_a_secret() -> None:
    """Ray writes every runtime_env into its logs: secrets stay with ``ray start``."""
    shell = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_TRACKING_USERNAME": "digits",
        "MLFLOW_TRACKING_PASSWORD": SECRET,
        "MLFLOW_TRACKING_TOKEN": SECRET,
        "HOME": "/root",
    }
    env = job_environment(shell, {"OMP_NUM_THREADS": "1"})
    assert env == {
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_TRACKING_USERNAME": "digits",
    }
    with_password = f"http://alice:{SECRET}@127.0.0.1:5999"
    assert "MLFLOW_TRACKING_URI" not in job_environment({"MLFLOW_TRACKING_URI": with_password}, {})
