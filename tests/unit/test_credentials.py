"""Credentials in URIs: found wherever a config holds them, and hidden from any text."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from digits_nn.credentials import found_in, holds_credentials, redact

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


@pytest.mark.parametrize(
    "uri",
    [
        "http://alice:hunter2@secret@127.0.0.1:5999",  # an '@' in the password
        "http://alice:pa:ss@127.0.0.1:5999/api",  # a ':' in the password
        "http://alice@corp:pw@@127.0.0.1:5999",  # '@' in the user name and the password
        "postgresql://bob:p@ss@db:5432/mlflow",
    ],
)
def test_redact_hides_the_whole_password_as_the_client_reads_it(uri: str) -> None:
    # The client splits the userinfo at the *last* '@' before the host (urllib.parse
    # does), so a password may hold '@'; cutting it at the first would log the rest
    # ('http://alice:***@secret@...').
    parts = urlsplit(uri)
    redacted = redact(uri)
    assert parts.password not in redacted
    assert redacted == f"{parts.scheme}://{parts.username}:***@{uri.rpartition('@')[2]}"


def test_every_string_holding_credentials_is_found_with_its_key() -> None:
    composed = {
        "tracking": {"uri": URI, "experiment": "digits-nn"},
        "hydra": {
            "overrides": {"task": ["seed=0,1", f"tracking.uri='{URI}',sqlite:///m.db"]},
            "job": {"env_set": {"MLFLOW_TRACKING_URI": URI, "OTHER": "a@b"}},
        },
        "paths": ("data/raw.npz", URI),
        "seed": 0,
    }
    assert [key for key, _ in found_in(composed)] == [
        "tracking.uri",
        "hydra.overrides.task[1]",
        "hydra.job.env_set.MLFLOW_TRACKING_URI",
        "paths[1]",
    ]
    assert list(found_in({"tracking": {"uri": "http://127.0.0.1:5000"}, "x": None})) == []
    assert holds_credentials(URI) and not holds_credentials("http://127.0.0.1:5999/a@b")
