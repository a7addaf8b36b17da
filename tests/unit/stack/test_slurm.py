"""The one-node SLURM cluster's configuration."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from digits_nn.stack.layout import Layout
from digits_nn.stack.slurm import slurm_conf


def test_slurm_binds_its_daemons_to_127_0_0_1(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    conf = slurm_conf(layout, (6817, 6818), 4000)
    assert "NoInAddrAny" in conf and "NoCtldInAddrAny" in conf
    assert re.search(r"SlurmctldHost=\S+\(127\.0\.0\.1\)", conf)
    assert "NodeAddr=127.0.0.1" in conf
    assert f"AuthInfo=socket={layout.munge / 'munge.socket'}" in conf


def test_the_cluster_runs_as_the_stacks_user_root_or_not(tmp_path: Path) -> None:
    user = pwd.getpwuid(os.geteuid()).pw_name
    conf = slurm_conf(Layout(tmp_path), (6817, 6818), 4000)
    assert f"SlurmUser={user}" in conf and f"SlurmdUser={user}" in conf
