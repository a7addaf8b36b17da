"""The sweep callback's pieces that need no subprocess: the summary, the parent-run file,
and what the fork server preloads."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from digits_nn import runner, sweep

ROOT = Path(__file__).resolve().parents[1]


def sweep_config(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"hydra.sweep.dir={tmp_path}", *overrides],
            return_hydra_config=True,
        )


def test_the_fork_server_preloads_modules_that_exist() -> None:
    # The fork server skips a module it cannot import without a word; a typo here would
    # quietly make every worker import it again.
    for module in sweep.JOB_MODULES + sweep.TRACKING_MODULES:
        assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize(
    ("launcher", "expected"), [("hydra/launcher=joblib", True), ("hydra/launcher=basic", False)]
)
def test_only_the_joblib_launcher_gets_the_fork_server(
    tmp_path: Path, launcher: str, expected: bool
) -> None:
    assert sweep.uses_joblib(sweep_config(tmp_path, launcher)) is expected


def test_the_parent_run_id_travels_in_each_jobs_own_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A launcher recomposes each job from the sweep's Hydra overrides plus the job's own
    # (ConfigLoader.load_sweep_config), and Hydra sets hydra.job.env_set in the job's
    # environment, wherever it runs: no file on the launching machine's disk is needed.
    config = sweep_config(tmp_path)
    sweep.send_to_jobs(config, "abc123")
    hydra_overrides = list(config.hydra.overrides.hydra)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        job = compose(
            config_name="config",
            overrides=[*hydra_overrides, "train.alpha=1.0"],
            return_hydra_config=True,
        )
    assert dict(job.hydra.job.env_set) == {runner.PARENT_RUN_ENV: "abc123"}
    assert "abc123" not in " ".join(job.hydra.overrides.task)  # not in the run's overrides
    monkeypatch.delenv(runner.PARENT_RUN_ENV, raising=False)
    assert runner.sweep_parent_run() is None
    monkeypatch.setenv(runner.PARENT_RUN_ENV, "abc123")
    assert runner.sweep_parent_run() == "abc123"


PROBE = """
import gc, json
from joblib import Parallel, delayed
from digits_nn import sweep

def probe(_):
    from threadpoolctl import threadpool_info
    import sys
    return {
        "threads": sorted({pool["num_threads"] for pool in threadpool_info()}),
        "frozen": gc.get_freeze_count(),
        "warm": "sklearn.datasets" in sys.modules and "matplotlib.pyplot" in sys.modules,
    }

if __name__ == "__main__":
    sweep.start_fork_server(tracking_enabled=False)
    print(json.dumps(Parallel(n_jobs=2)(delayed(probe)(i) for i in range(2))))
"""


@pytest.mark.slow
def test_joblib_workers_are_warm_one_thread_forks_of_the_server(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    )
    for worker in json.loads(result.stdout.strip().splitlines()[-1]):
        assert worker["threads"] == [1]  # BLAS and OpenMP: one thread per worker
        assert worker["frozen"] > 0  # forked from the server after its gc.freeze()
        assert worker["warm"]  # sklearn and matplotlib came with the fork
