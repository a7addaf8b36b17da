"""``python -m digits_nn.compose``: params.yaml is conf/ composed, byte for byte as
``dvc exp run -S`` writes it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from digits_nn import compose, config
from digits_nn.errors import ConfigError
from helpers import ROOT, run


def test_compose_writes_the_committed_params_yaml_from_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    compose.main([])
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()
    compose.main(["train.alpha=1.0", "seed=3"])
    cfg = config.load(tmp_path / "params.yaml")
    assert (cfg.train.alpha, cfg.seed) == (1.0, 3)


def test_dvc_sets_momentum_where_it_acts(tmp_path: Path) -> None:
    """`dvc exp run -S` composes params.yaml with this very function: the keys stay in
    conf/ (as null), so `-S train.momentum=...` still overrides them."""
    from dvc.utils.hydra import compose_and_dump

    params = tmp_path / "params.yaml"
    overrides = ["train.optimizer=momentum", "train.momentum=0.5", "train.nesterov=true"]
    compose_and_dump(params, str(ROOT / "conf"), None, "config", "", overrides)
    train = config.load(params).train
    assert (train.momentum, train.nesterov) == (0.5, True)
    compose_and_dump(params, str(ROOT / "conf"), None, "config", "", ["train.momentum=0.5"])
    with pytest.raises(ConfigError, match=r"null unless train\.optimizer=momentum"):
        config.load(params)


def test_compose_finds_hydra_plugins_in_the_project_root_as_dvc_does(tmp_path: Path) -> None:
    """`dvc exp run` loads Hydra plugins from the repository's root (its
    hydra.plugins_path is relative to the root, empty by default): compose does too, even
    when the root is not already on sys.path (`-P`, as in a console script)."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "extra" / "experiment").mkdir(parents=True)
    (tmp_path / "extra" / "experiment" / "team.yaml").write_text("# @package _global_\nseed: 7\n")
    plugin = tmp_path / "hydra_plugins" / "team_configs"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(
        "from hydra.core.config_search_path import ConfigSearchPath\n"
        "from hydra.plugins.search_path_plugin import SearchPathPlugin\n\n\n"
        "class TeamConfigs(SearchPathPlugin):\n"
        "    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:\n"
        f"        search_path.append('team', 'file://{tmp_path / 'extra'}')\n"
    )
    code = "from digits_nn import compose; compose.main(['experiment=team'])"
    run([sys.executable, "-P", "-c", code], cwd=tmp_path)
    assert config.load(tmp_path / "params.yaml").seed == 7
