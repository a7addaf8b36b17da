"""End-to-end regression tests for the expert review (issue 14): real subprocesses, a
fresh virtualenv, a real MLflow store and scoring server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, free_port, project_env, run

pytestmark = pytest.mark.slow

PIXELS = [f"pixel_{i}" for i in range(64)]


def modern_config(seed: int, dtype: str):
    from hydra import compose, initialize_config_dir

    from digits_nn import config

    overrides = ["experiment=modern", f"seed={seed}", f"train.dtype={dtype}"]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return config.parse(compose("config", overrides))


# ---- 1. float32 reaches float64's accuracy --------------------------------------------------


def test_float32_reaches_the_float64_test_accuracy_on_the_modern_preset_seeds_0_to_4() -> None:
    from digits_nn import evaluate, pipeline

    for seed in range(5):
        accuracy = {}
        for dtype in ("float64", "float32"):
            cfg = modern_config(seed, dtype)
            _, split, onehot = pipeline.prepare_data(cfg)
            result = pipeline.fit(cfg, split, onehot, progress=False)
            assert result.network.weights[0].dtype == np.dtype(dtype)
            assert np.isfinite(result.cost_curve).all()
            accuracy[dtype] = evaluate.evaluate(result.network, split).test_accuracy
        assert abs(accuracy["float32"] - accuracy["float64"]) <= 0.005, (seed, accuracy)


def test_run_py_finishes_the_modern_preset_in_float32(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "pipelines/run.py", "experiment=modern", "train.dtype=float32"]
    command += ["tracking.enabled=false", f"hydra.run.dir={out}"]
    run(command, cwd=ROOT)
    metrics = json.loads((out / "reports/metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.97 and np.isfinite(metrics["final_cost"])


# ---- 10. train_accuracy in metrics.json -----------------------------------------------------


def test_train_accuracy_in_the_metrics_is_on_the_rows_trained_on(tmp_path: Path) -> None:
    from sklearn.model_selection import train_test_split

    from digits_nn import artifacts, config, modern, pipeline

    out = tmp_path / "run"
    command = [sys.executable, "pipelines/run.py", "train.validation_size=0.5"]
    command += ["train.optimizer=sgd", "train.iterations=300", "train.alpha=1.0"]
    command += ["tracking.enabled=false", f"hydra.run.dir={out}"]
    run(command, cwd=ROOT)
    metrics = json.loads((out / "reports/metrics.json").read_text())
    network = artifacts.read_model(out / "models/model.npz")
    _, split, _ = pipeline.prepare_data(config.parse({}))  # the run's split: seed 0
    X_fit, _, y_fit, _ = train_test_split(
        split.X_train, split.y_train, test_size=0.5, random_state=0, stratify=split.y_train
    )
    on_fit = float(np.mean(modern.predict(network, X_fit) == y_fit))
    on_all = float(np.mean(modern.predict(network, split.X_train) == split.y_train))
    assert on_fit != on_all  # else this test could not tell them apart
    assert metrics["train_accuracy"] == on_fit


# ---- 2 and 7. the logged model: its own requirements, integer pixels --------------------------


@pytest.fixture(scope="module")
def logged_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list]:
    """A small model logged by tracking.log_model into a fresh store, downloaded to a
    folder; with the raw test pixels and the pipeline's own predictions of them."""
    import mlflow.artifacts

    from digits_nn import artifacts, config, modern, pipeline, tracking

    root = tmp_path_factory.mktemp("logged")
    cfg = config.parse(
        {
            "model": {"activation": "relu", "output": "softmax", "init": "he"},
            "train": {"optimizer": "sgd", "batch_size": 32, "alpha": 0.1, "iterations": 10},
            "tracking": {"uri": f"sqlite:///{root / 'mlflow.db'}"},
        }
    )
    scaled, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    artifacts.write_model(root / "model.npz", result.network)
    store = tracking.open_store(cfg.tracking, root)
    with tracking.run(store) as run_id:
        tracking.log_model(store, run_id, root / "model.npz", scaled.mean, scaled.scale)
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            f"runs:/{run_id}/model", dst_path=str(root / "download"), tracking_uri=store.uri
        )
    )
    pixels = np.rint(pipeline.raw_pixels(split.X_test, scaled))  # the 0..16 a user has
    expected = modern.predict(result.network, (pixels - scaled.mean) / scaled.scale)
    return model_dir, pixels, expected.tolist()


LOAD_AND_PREDICT = textwrap.dedent(
    """
    import json, sys
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    model_dir, pixels_file = sys.argv[1], sys.argv[2]
    pixels = np.load(pixels_file)
    columns = [f"pixel_{i}" for i in range(64)]
    model = mlflow.pyfunc.load_model(model_dir)
    as_int = model.predict(pd.DataFrame(pixels.astype(np.int64), columns=columns))
    as_float = model.predict(pd.DataFrame(pixels, columns=columns))
    import digits_nn
    print(json.dumps({"int": list(as_int), "float": list(as_float),
                      "package": digits_nn.__file__}))
    """
)


def test_logged_model_loads_from_its_own_requirements_in_a_fresh_virtualenv(
    logged_model, tmp_path: Path
) -> None:
    """Only what requirements.txt names is installed; MLflow puts the model's code
    folder on the path, as it does for any environment manager. uv installs them (the
    same resolution from PyPI as pip's, in seconds where pip took minutes)."""
    model_dir, pixels, expected = logged_model
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    uv = [sys.executable, "-m", "uv", "pip", "install", "--quiet"]
    uv += ["--python", str(venv / "bin/python")]
    run([*uv, "-r", str(model_dir / "requirements.txt")], cwd=tmp_path, timeout=900)
    np.save(tmp_path / "pixels.npy", pixels)
    env = project_env()
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    done = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            LOAD_AND_PREDICT,
            str(model_dir),
            str(tmp_path / "pixels.npy"),
        ],
        cwd=tmp_path,
        env={k: v for k, v in env.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["int"] == answer["float"] == expected
    assert Path(answer["package"]).is_relative_to(model_dir)  # the logged code, not ours


def test_mlflow_models_predict_takes_an_integer_csv(logged_model, tmp_path: Path) -> None:
    import pandas as pd

    model_dir, pixels, expected = logged_model
    pd.DataFrame(pixels.astype(np.int64), columns=PIXELS).to_csv(tmp_path / "d.csv", index=False)
    assert (tmp_path / "d.csv").read_text().splitlines()[1].split(",")[0] == "0"  # integers
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", str(model_dir)]
    command += ["-i", str(tmp_path / "d.csv"), "-t", "csv", "--env-manager", "local"]
    command += ["-o", str(tmp_path / "predictions.json")]
    run(command, cwd=tmp_path)
    assert json.loads((tmp_path / "predictions.json").read_text())["predictions"] == expected


def test_scoring_server_takes_integer_and_float_pixels_and_refuses_bad_input_with_400(
    logged_model, tmp_path: Path
) -> None:
    import pandas as pd

    model_dir, pixels, expected = logged_model
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)]
    command += ["-h", "127.0.0.1", "-p", str(port), "--env-manager", "local"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            command, cwd=tmp_path, env=project_env(), stdout=sink, stderr=sink
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, server, log)
        frame = pd.DataFrame(pixels.astype(np.int64), columns=PIXELS)
        for body, kind in [
            (frame.to_csv(index=False), "text/csv"),
            (frame.astype(float).to_csv(index=False), "text/csv"),
            (json.dumps({"dataframe_split": frame.to_dict(orient="split")}), "application/json"),
            (
                json.dumps({"dataframe_split": frame.astype(float).to_dict(orient="split")}),
                "application/json",
            ),
        ]:
            status, answer = _post(url, body, kind)
            assert status == 200, answer
            assert json.loads(answer)["predictions"] == expected
        narrow = frame.iloc[:, :63].to_csv(index=False)
        wide = frame.assign(extra=1).to_csv(index=False)
        words = frame.astype(str).replace("0", "zero").to_csv(index=False)
        for bad in (narrow, wide, words):
            status, answer = _post(url, bad, "text/csv")
            assert 400 <= status < 500, (status, answer)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow models serve did not answer /ping in 120 s:\n{log.read_text()}")


def _post(url: str, body: str, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{url}/invocations", body.encode(), {"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
