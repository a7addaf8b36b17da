"""The stack's folder: where each service keeps its files, its state and its secrets."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

STACK_DIR = ".stack"

# Where the services that other users run (PostgreSQL as ``postgres``, munged as
# ``munge``) keep their files: outside the repository, whose parent folders may be private
# (a home folder, 0700), under a folder of the stack's own that every user may traverse
# but not list. Root's stacks keep them in /var/lib; a plain user's in /var/tmp (munged
# insists that every user can reach its socket, whoever runs it).
SERVICES_LINK = "services"
ROOT_SERVICES = Path("/var/lib/digits-nn")
USER_SERVICES = Path("/var/tmp")


HOST = "127.0.0.1"


MLFLOW_USER = "digits"


ADMIN_USER = "admin"


class StackError(Exception):
    """Something the stack needs is missing or failed to start: one line for the user."""


@dataclass(frozen=True)
class Layout:
    """Where each piece of the stack keeps its files, under one root folder."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def services(self) -> Path:
        """The services' folder (see :func:`ensure_services`): the target of the stack's
        ``services`` link, the paths its daemons are given."""
        link = self.root / SERVICES_LINK
        return Path(os.readlink(link)) if link.is_symlink() else link

    @property
    def pg_data(self) -> Path:
        return self.services / "postgres" / "data"

    @property
    def pg_socket(self) -> Path:
        return self.services / "postgres" / "socket"

    @property
    def pgpass(self) -> Path:
        return self.root / "pgpass"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlflow" / "artifacts"

    @property
    def auth_ini(self) -> Path:
        return self.root / "mlflow" / "basic_auth.ini"

    @property
    def munge(self) -> Path:
        return self.services / "munge"

    @property
    def slurm(self) -> Path:
        return self.root / "slurm"

    @property
    def slurm_conf(self) -> Path:
        return self.slurm / "slurm.conf"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"


def default_root() -> Path:
    """``.stack/`` in the repository around the working directory."""
    cwd = Path.cwd().resolve()
    repo = next((p for p in (cwd, *cwd.parents) if (p / ".git").exists()), cwd)
    return repo / STACK_DIR


def ensure_services(layout: Layout) -> Path:
    """The services' folder, created on the stack's first start: a new folder of random
    name (0711, the stack's user's), linked from the stack's own folder as ``services``."""
    link = layout.root / SERVICES_LINK
    if link.is_symlink() and layout.services.is_dir():
        home = layout.services
        info = home.lstat()
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise StackError(f"{home} ({link}) is not the stack's own folder: remove {link}")
        return home
    link.unlink(missing_ok=True)
    parent = ROOT_SERVICES if os.geteuid() == 0 else USER_SERVICES
    parent.mkdir(mode=0o711, parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix=f"stack-{os.geteuid()}-", dir=parent))
    os.chmod(home, 0o711)
    link.symlink_to(home)
    return home


def remove_stack_folders(layout: Layout) -> None:
    """Delete the stack's folder and its services' folder, data and secrets included."""
    if (layout.root / SERVICES_LINK).is_symlink():
        shutil.rmtree(layout.services, ignore_errors=True)
    shutil.rmtree(layout.root, ignore_errors=True)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, created that way (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def load_secrets(layout: Layout) -> dict[str, str]:
    """The stack's generated passwords, created once and kept 0600 in its folder."""
    found = read_json(layout.secrets)
    wanted = ("postgres", "admin", MLFLOW_USER, "flask_secret_key")
    if not all(key in found for key in wanted):
        found = {key: found.get(key) or secrets.token_urlsafe(24) for key in wanted}
        write_private(layout.secrets, json.dumps(found, indent=2))
    return found


def save_state(layout: Layout, state: dict) -> None:
    write_private(layout.state, json.dumps(state, indent=2, sort_keys=True))
