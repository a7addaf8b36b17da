"""`make test` sets up a fresh Debian machine: it installs every Debian package the suite
needs (without PostgreSQL, the stack tests error)."""

from __future__ import annotations

import re

from digits_nn.stack.postgres import POSTGRES_PACKAGES
from digits_nn.stack.slurm import SLURM_PACKAGES
from helpers import ROOT, TEST_DEBIAN_PACKAGES


def debian_packages() -> set[str]:
    found = re.search(r"^DEBIAN_PACKAGES\s*:=(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert found, "the Makefile defines no DEBIAN_PACKAGES"
    return set(found.group(1).split())


def test_make_test_installs_every_debian_package_the_suite_needs() -> None:
    needed = {*POSTGRES_PACKAGES, *SLURM_PACKAGES, *TEST_DEBIAN_PACKAGES}
    missing = needed - debian_packages()
    assert not missing, f"add to DEBIAN_PACKAGES in the Makefile: {sorted(missing)}"


def test_make_test_installs_the_debian_packages_before_running_the_suite() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: debian-packages\b", makefile, re.M)
