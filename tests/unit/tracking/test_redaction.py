"""Secrets never leave the process: credentials in a URI are redacted from every param,
tag and logged file."""

from __future__ import annotations

from pathlib import Path

from digits_nn.config import parse
from digits_nn.pipeline import recording
from digits_nn.pipeline.recording import new_run
from helpers import tiny_run_data

SECRET = "s3cret-do-not-log"
URI = f"http://alice:{SECRET}@127.0.0.1:5999"


def test_a_uri_with_credentials_reaches_no_param_tag_or_logged_file(tmp_path: Path, store) -> None:
    """A config may not hold credentials, but MLFLOW_TRACKING_URI may: any param, tag or
    logged text file that quotes such a URI (an error, a copied setting) has it
    redacted on its way to the store."""
    cfg = parse({})
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"store: {URI}\n")
    tags = {"error": f"cannot reach {URI}"}
    with new_run(store, cfg, tiny_run_data(), tags) as run:
        recording.record_config(run, cfg, params_file)
        run.params({"store": URI})
        run.tag("store", URI)
        store.client.log_param(run.run_id, "server", URI)
    logged = store.client.get_run(run.run_id)
    assert logged.data.params["store"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.params["server"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.tags["store"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.tags["error"] == "cannot reach http://alice:***@127.0.0.1:5999"
    assert SECRET not in str(logged.data.params) + str(logged.data.tags)
    copy = Path(store.client.download_artifacts(run.run_id, "params.yaml", str(tmp_path / "dl")))
    assert SECRET not in copy.read_text()
    assert "alice:***@127.0.0.1" in copy.read_text()
    assert SECRET in params_file.read_text()  # the user's own file is left as it was


def test_credentials_in_the_tracking_uri_reach_no_param_of_the_logged_model(
    tmp_path: Path, store
) -> None:
    """The logged model carries the run's params: redacted as the run's are."""
    from digits_nn.data import steps
    from helpers import saved_model

    saved_model(tmp_path)  # writes tmp_path/model.npz
    # The config refuses such a URI; set behind its back, the logged model still hides it.
    cfg = parse({})
    cfg.tracking.uri = URI
    scaled = steps.standardise(steps.load_digits())
    with new_run(store, cfg, tiny_run_data()) as run:
        model_id = recording.record_model(run, cfg, tmp_path / "model.npz", scaled)
    model = store.client.get_logged_model(model_id)
    assert model.params["tracking.uri"] == "http://alice:***@127.0.0.1:5999"
    assert SECRET not in str(model.params) + str(model.tags)
