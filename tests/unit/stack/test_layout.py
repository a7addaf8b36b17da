"""The stack's folder: its secrets."""

from __future__ import annotations

from pathlib import Path

from digits_nn.stack.layout import Layout, load_secrets


def test_secrets_are_generated_once_and_readable_by_their_owner_only(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = load_secrets(layout)
    assert load_secrets(layout) == first
    assert len(set(first.values())) == len(first)
    assert layout.secrets.stat().st_mode & 0o777 == 0o600
