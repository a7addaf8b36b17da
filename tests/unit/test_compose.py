"""``python -m digits_nn.compose``: params.yaml is conf/ composed, byte for byte as
``dvc exp run -S`` writes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from digits_nn import compose, config
from digits_nn.errors import ConfigError
from helpers import ROOT


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
