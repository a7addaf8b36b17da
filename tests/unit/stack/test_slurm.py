"""The one-node SLURM cluster's configuration."""

from __future__ import annotations

import re
from pathlib import Path

from digits_nn.stack.layout import Layout
from digits_nn.stack.slurm import slurm_conf


def test_slurm_binds_its_daemons_to_127_0_0_1(tmp_path: Path) -> None:
    conf = slurm_conf(Layout(tmp_path), (6817, 6818), 4000)
    assert "NoInAddrAny" in conf and "NoCtldInAddrAny" in conf
    assert re.search(r"SlurmctldHost=\S+\(127\.0\.0\.1\)", conf)
    assert "NodeAddr=127.0.0.1" in conf
    assert f"AuthInfo=socket={tmp_path / 'munge' / 'munge.socket'}" in conf
