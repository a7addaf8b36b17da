"""Secrets never leave the process: credentials in a tracking URI are redacted from every
param, tag and logged file (review, issue 14, finding 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_nn.config import parse
from digits_nn.pipeline import recording
from digits_nn.pipeline.recording import new_run
from digits_nn.tracking.redaction import redact
from helpers import tiny_run_data

SECRET = "s3cret-do-not-log"
URI = f"http://alice:{SECRET}@127.0.0.1:5999"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URI, "http://alice:***@127.0.0.1:5999"),
        (f"tracking.uri={URI} seed=1", "tracking.uri=http://alice:***@127.0.0.1:5999 seed=1"),
        (
            "postgresql+psycopg2://bob:pw@db:5432/mlflow",
            "postgresql+psycopg2://bob:***@db:5432/mlflow",
        ),
        ("https://token@host/path", "https://***@host/path"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("user@example.org and http://host/a@b", "user@example.org and http://host/a@b"),
        ("seed=3", "seed=3"),
    ],
)
def test_redact_hides_userinfo_of_every_uri_and_nothing_else(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_credentials_in_the_tracking_uri_reach_no_param_tag_or_logged_file(
    tmp_path: Path, store
) -> None:
    """The run's params, its overrides tag and its logged params.yaml, as the pipeline
    writes them, with ``tracking.uri`` carrying a password."""
    cfg = parse({"tracking": {"uri": URI}})
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"tracking:\n  uri: {URI}\n")
    tags = {"overrides": f"tracking.uri={URI} seed=0"}
    with new_run(store, cfg, tiny_run_data(), tags) as run:
        recording.record_config(run, cfg, params_file)
    logged = store.client.get_run(run.run_id)
    assert logged.data.params["tracking.uri"] == "http://alice:***@127.0.0.1:5999"
    assert logged.data.tags["overrides"] == "tracking.uri=http://alice:***@127.0.0.1:5999 seed=0"
    assert SECRET not in str(logged.data.params) + str(logged.data.tags)
    copy = Path(store.client.download_artifacts(run.run_id, "params.yaml", str(tmp_path / "dl")))
    assert SECRET not in copy.read_text()
    assert "alice:***@127.0.0.1" in copy.read_text()
    assert SECRET in params_file.read_text()  # the user's own file is left as it was


def test_credentials_in_the_tracking_uri_reach_no_param_of_the_logged_model(
    tmp_path: Path, store
) -> None:
    """The logged model carries the run's params (issue 23): redacted as the run's are."""
    from digits_nn.data import steps
    from helpers import saved_model

    saved_model(tmp_path)  # writes tmp_path/model.npz
    cfg = parse({"tracking": {"uri": URI}})
    scaled = steps.standardise(steps.load_digits())
    with new_run(store, cfg, tiny_run_data()) as run:
        model_id = recording.record_model(run, cfg, tmp_path / "model.npz", scaled)
    model = store.client.get_logged_model(model_id)
    assert model.params["tracking.uri"] == "http://alice:***@127.0.0.1:5999"
    assert SECRET not in str(model.params) + str(model.tags)
