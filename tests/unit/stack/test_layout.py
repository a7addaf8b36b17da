"""The stack's folder: its secrets, and the services' folder outside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_nn.stack import layout as layout_module
from digits_nn.stack.layout import (
    Layout,
    StackError,
    ensure_services,
    load_secrets,
    remove_stack_folders,
)


def test_secrets_are_generated_once_and_readable_by_their_owner_only(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = load_secrets(layout)
    assert load_secrets(layout) == first
    assert len(set(first.values())) == len(first)
    assert layout.secrets.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def services_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the services' folders go, root's or a plain user's, under ``tmp_path``."""
    parent = tmp_path / "var"
    monkeypatch.setattr(layout_module, "ROOT_SERVICES", parent / "lib" / "digits-nn")
    monkeypatch.setattr(layout_module, "USER_SERVICES", parent / "tmp")
    return parent


# In a clone under a 0700 home, PostgreSQL and munge cannot reach files kept inside it.
def test_the_services_folder_is_outside_the_repository_and_traversable_but_private(
    tmp_path: Path, services_parent: Path
) -> None:
    private_home = tmp_path / "home"
    private_home.mkdir(mode=0o700)
    layout = Layout(private_home / "repo" / ".stack")
    layout.root.mkdir(parents=True)
    home = ensure_services(layout)
    assert home.is_relative_to(services_parent) and layout.services == home
    assert (layout.root / "services").resolve() == home.resolve()
    assert home.stat().st_mode & 0o777 == 0o711  # every user may traverse, none may list
    for path in (layout.pg_data, layout.pg_socket, layout.munge):
        assert path.is_relative_to(home)
    assert ensure_services(layout) == home  # kept across starts


def test_a_services_folder_others_can_write_is_refused(
    tmp_path: Path, services_parent: Path
) -> None:
    layout = Layout(tmp_path / ".stack")
    layout.root.mkdir()
    home = ensure_services(layout)
    home.chmod(0o777)
    with pytest.raises(StackError, match="not the stack's own"):
        ensure_services(layout)


def test_purging_removes_both_folders(tmp_path: Path, services_parent: Path) -> None:
    layout = Layout(tmp_path / ".stack")
    layout.root.mkdir()
    home = ensure_services(layout)
    load_secrets(layout)
    remove_stack_folders(layout)
    assert not home.exists() and not layout.root.exists()
