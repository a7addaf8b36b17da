"""The trained model as MLflow serves it: raw pixels in, the pipeline's digits out, from
the DVC run's store, from its own requirements in a fresh virtualenv, and from the
scoring server."""

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

from digits_nn.data.digits import PIXEL_COLUMNS
from helpers import free_port, global_tracking_uri, mlflow_runs, project_env, run


def raw_test_pixels(repo: Path):
    import pandas as pd

    from digits_nn.data import artifacts

    split = artifacts.read_split(repo / "data/processed/split.npz")
    scaled = artifacts.read_scaled(repo / "data/interim/scaled.npz")
    # Back to the integers 0..16 the user has (unscaling leaves round-off such as -1e-17,
    # which the model refuses as out of range).
    pixels = np.rint(split.X_test * scaled.scale + scaled.mean)
    return pd.DataFrame(pixels, columns=list(PIXEL_COLUMNS))


def test_logged_model_predicts_what_the_pipeline_evaluated(reproduced: Path, tmp_path) -> None:
    import mlflow.artifacts
    import mlflow.pyfunc

    client, runs = mlflow_runs(reproduced)
    run_id = runs[0].info.run_id
    uri = f"runs:/{run_id}/model"
    with global_tracking_uri(f"sqlite:///{reproduced / 'mlflow.db'}"):
        model = mlflow.pyfunc.load_model(uri)
        listed = mlflow.artifacts.list_artifacts(f"{uri}/artifacts")
    # 64 untyped inputs: MLflow would refuse int64 pixels for double columns; the model's
    # own code checks them (test_serving.py, and the scoring server below).
    assert len(model.metadata.get_input_schema().inputs) == 64
    assert model.metadata.get_output_schema().input_names() == ["digit"]
    frame = raw_test_pixels(reproduced)
    expected = np.loadtxt(reproduced / "reports/predictions.csv", delimiter=",", skiprows=1)
    predicted = np.asarray(model.predict(frame))
    assert np.array_equal(predicted, expected[:, 1])
    # Loading ran the model's code, not a pickle: no pickle file travels with it. The
    # files are the run's logged model's (MLflow 3), which runs:/<run_id>/model lists.
    assert {a.path for a in listed} == {"model/artifacts/model.npz", "model/artifacts/scaling.npz"}
    [logged] = client.search_logged_models([runs[0].info.experiment_id])
    assert logged.source_run_id == run_id and model.metadata.model_id == logged.model_id

    # The command-line route a user would take.
    frame.to_csv(tmp_path / "digits.csv", index=False)
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", uri]
    command += ["-i", str(tmp_path / "digits.csv"), "-t", "csv", "--env-manager", "local"]
    command += ["-o", str(tmp_path / "predictions.json")]
    run(command, cwd=reproduced, MLFLOW_TRACKING_URI=f"sqlite:///{reproduced / 'mlflow.db'}")
    served = json.loads((tmp_path / "predictions.json").read_text())["predictions"]
    assert served == expected[:, 1].astype(int).tolist()


# ---- its own requirements, integer pixels -------------------------------------------------


@pytest.fixture(scope="module")
def logged_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list]:
    """A small model logged by tracking.log_model into a fresh store, downloaded to a
    folder; with the raw test pixels and the pipeline's own predictions of them."""
    import mlflow.artifacts

    from digits_nn.config import parse
    from digits_nn.core.forward import predict
    from digits_nn.data.model_file import write_model
    from digits_nn.data.steps import raw_pixels
    from digits_nn.pipeline.fit import fit
    from digits_nn.pipeline.prepared import prepare
    from digits_nn.tracking.models import log_model
    from digits_nn.tracking.runs import run as tracked_run
    from digits_nn.tracking.store import as_global, open_store

    root = tmp_path_factory.mktemp("logged")
    cfg = parse(
        {
            "model": {"activation": "relu", "output": "softmax", "init": "he"},
            "train": {"optimizer": "sgd", "batch_size": 32, "alpha": 0.1, "iterations": 10},
            "tracking": {"uri": f"sqlite:///{root / 'mlflow.db'}"},
        }
    )
    data = prepare(cfg)
    scaled = data.scaled
    result = fit(cfg, data)
    write_model(root / "model.npz", result.network)
    store = open_store(cfg.tracking, root)
    with tracked_run(store) as logged:
        log_model(logged, root / "model.npz", scaled.mean, scaled.scale)
    run_id = logged.run_id
    with as_global(store):  # MLflow resolves the run's logged model in the global store
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                f"runs:/{run_id}/model", dst_path=str(root / "download")
            )
        )
    pixels = np.rint(raw_pixels(data.split.X_test, scaled))  # the 0..16 a user has
    expected = predict(result.network, (pixels - scaled.mean) / scaled.scale)
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
    as_array = model.predict(pixels.astype(np.int64))
    import digits_nn
    print(json.dumps({"int": list(as_int), "float": list(as_float), "array": list(as_array),
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
    assert answer["int"] == answer["float"] == answer["array"] == expected
    assert Path(answer["package"]).is_relative_to(model_dir)  # the logged code, not ours


def test_mlflow_models_predict_takes_an_integer_csv(logged_model, tmp_path: Path) -> None:
    import pandas as pd

    model_dir, pixels, expected = logged_model
    pd.DataFrame(pixels.astype(np.int64), columns=list(PIXEL_COLUMNS)).to_csv(
        tmp_path / "d.csv", index=False
    )
    assert (tmp_path / "d.csv").read_text().splitlines()[1].split(",")[0] == "0"  # integers
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", str(model_dir)]
    command += ["-i", str(tmp_path / "d.csv"), "-t", "csv", "--env-manager", "local"]
    command += ["-o", str(tmp_path / "predictions.json")]
    run(command, cwd=tmp_path)
    assert json.loads((tmp_path / "predictions.json").read_text())["predictions"] == expected


def test_scoring_server_takes_pixels_as_inputs_or_dataframe_split_and_refuses_bad_input_with_400(
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
        ints = pixels.astype(np.int64)
        named = pd.DataFrame(ints, columns=list(PIXEL_COLUMNS))
        for name, body in {
            "inputs, integers": {"inputs": ints.tolist()},
            "inputs, floats": {"inputs": pixels.tolist()},
            "dataframe_split, named integers": {"dataframe_split": named.to_dict(orient="split")},
            "dataframe_split, named floats, another order": {
                "dataframe_split": named.astype(float)[named.columns[::-1]].to_dict(orient="split")
            },
            "dataframe_split, unnamed": {
                "dataframe_split": pd.DataFrame(ints).to_dict(orient="split")
            },
        }.items():
            status, answer = _post(url, json.dumps(body), "application/json")
            assert status == 200, (name, answer)
            assert json.loads(answer)["predictions"] == expected, name
        for name, body, said in [
            ("63 columns", {"inputs": ints[:, :63].tolist()}, "64"),
            ("words", {"inputs": [["zero"] * 64]}, "real numbers"),
            ("0..255", {"inputs": (ints * 16).tolist()}, "from 0 to 16"),
            ("negative", {"inputs": (-ints - 1).tolist()}, "from 0 to 16"),
            (
                "renamed",
                {"dataframe_split": named.add_prefix("x").to_dict(orient="split")},
                "pixel_0",
            ),
        ]:
            status, answer = _post(url, json.dumps(body), "application/json")
            assert status == 400 and said in json.loads(answer)["message"], (name, status, answer)
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
