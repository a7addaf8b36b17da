"""The champion gate end to end, against a real SQLite store in a clone:
``python -m digits_nn.promote`` makes the first challenger the champion, promotes a
better one, refuses a worse one in one line changing nothing, lets the margin decide
between equals; and ``mlflow models serve -m models:/digits-nn@champion`` answers HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from digits_nn import config
from digits_nn.config import TrackingConfig, parse
from digits_nn.pipeline import app
from digits_nn.sweeps import registry
from digits_nn.tracking.store import Store, open_store
from helpers import free_port, project_env, run, served_digits

PROMOTE = [sys.executable, "-m", "digits_nn.promote"]


def register(store: Store, folder: Path, iterations: int) -> str:
    """A run of ``iterations`` registered as the challenger, as a validated sweep
    registers its best job; its version."""
    cfg = parse({"train": {"alpha": 2.5, "iterations": iterations, "validation_size": 0.2}})
    cfg.tracking.uri = store.uri
    outcome = app.run(cfg, app.RunPlace(folder, [f"train.iterations={iterations}"]))
    best = {
        "run_id": outcome.run_id,
        "params": config.flatten(cfg),
        "overrides": [f"train.iterations={iterations}"],
        "test_accuracy": outcome.test_accuracy,
        "validation_accuracy": outcome.validation_accuracy,
    }
    return registry.register_best(store, best)


def registry_state(store: Store) -> list[tuple]:
    """Every version with its aliases and tags."""
    name = registry.REGISTERED_MODEL
    found = store.client.search_model_versions(f"name = '{name}'")
    versions = [store.client.get_model_version(name, v.version) for v in found]
    return sorted((v.version, sorted(v.aliases), sorted(v.tags.items())) for v in versions)


def champion(store: Store) -> str:
    return str(store.client.get_model_version_by_alias("digits-nn", "champion").version)


def promote(clone: Path, *overrides: str) -> tuple[int, str]:
    """``python -m digits_nn.promote`` in the clone: its exit status and its last line."""
    done = run([*PROMOTE, *overrides], cwd=clone, check=False, timeout=900)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


def test_promote_makes_the_first_champion_promotes_a_better_one_and_refuses_a_worse_one(
    clone: Path,
) -> None:
    store = open_store(TrackingConfig(), clone)
    weak = register(store, clone / "runs/weak", 10)
    status, line = promote(clone)
    assert status == 0 and champion(store) == weak, line
    assert f"promoted: digits-nn v{weak} is the first champion: accuracy" in line
    assert "on the 719 test rows of data_md5" in line

    strong = register(store, clone / "runs/strong", 300)
    status, line = promote(clone)
    assert status == 0 and champion(store) == strong, line
    tags = store.client.get_model_version("digits-nn", strong).tags
    assert tags["validation_status"] == "approved" and tags["gate.previous_champion"] == weak
    assert float(tags["gate.accuracy"]) > float(tags["gate.champion_accuracy"])
    assert f"accuracy {float(tags['gate.accuracy']):.4f}" in line
    assert f"champion v{weak}'s {float(tags['gate.champion_accuracy']):.4f}" in line

    worse = register(store, clone / "runs/worse", 10)
    before = registry_state(store)
    status, line = promote(clone)
    assert status == 1, line
    assert line.startswith(f"ERROR refused: digits-nn v{worse} stays the challenger: accuracy")
    assert f"needed >= {float(tags['gate.accuracy']):.4f} (champion v{strong}'s" in line
    assert line.endswith(f"the champion stays v{strong}.")
    assert registry_state(store) == before and champion(store) == strong

    # Every gate ran as a run of its own, closed, with one child run per evaluation.
    client = store.client
    gates = client.search_runs([store.experiment_id], "tags.`gate.decision` != ''")
    assert sorted(g.data.tags["gate.decision"] for g in gates) == ["approved"] * 2 + ["refused"]
    assert {g.info.status for g in gates} == {"FINISHED"}


def test_the_margin_decides_between_two_equally_accurate_models(clone: Path) -> None:
    store = open_store(TrackingConfig(), clone)
    first = register(store, clone / "runs/first", 100)
    assert promote(clone)[0] == 0
    twin = register(store, clone / "runs/twin", 100)  # the same network, trained again
    status, line = promote(clone, "promote.min_gain=0.01")
    assert status == 1 and champion(store) == first, line
    assert "+ promote.min_gain 0.01;" in line
    status, line = promote(clone)  # min_gain 0: at least as accurate
    assert status == 0 and champion(store) == twin, line


def test_a_bad_threshold_is_refused_in_one_line_before_any_work(clone: Path) -> None:
    status, line = promote(clone, "promote.min_gain=-0.1")
    assert status == 2
    assert line.endswith(
        "promote.min_gain=-0.1 is not allowed: a number in [0, 1) (0: at least as accurate)."
    )
    assert not (clone / "mlflow.db").exists()


def test_the_served_champion_answers_http_requests(clone: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    from digits_nn.data import steps
    from digits_nn.data.digits import PIXEL_COLUMNS
    from digits_nn.tracking.store import as_global

    store = open_store(TrackingConfig(), clone)
    register(store, clone / "runs/one", 200)
    assert promote(clone)[0] == 0
    digits = steps.load_digits()
    pixels = digits.X[:25]
    with as_global(store):
        model = mlflow.pyfunc.load_model("models:/digits-nn@champion")
    expected = list(model.predict(pd.DataFrame(pixels, columns=list(PIXEL_COLUMNS))))

    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve"]
    command += ["-m", "models:/digits-nn@champion", "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log = clone / "serve.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            command,
            cwd=clone,
            env=project_env(MLFLOW_TRACKING_URI=store.uri),
            stdout=sink,
            stderr=sink,
        )
    try:
        rows = pixels.astype(int).tolist()
        try:
            served = served_digits(server, port, list(PIXEL_COLUMNS), rows)
        except AssertionError as error:
            raise AssertionError(f"{error}:\n{log.read_text()}") from None
        assert served == expected
        assert np.mean(np.array(served) == digits.y[:25]) > 0.5  # a trained network
    finally:
        server.terminate()
        server.wait(timeout=30)
