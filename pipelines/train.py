"""DVC stage `train`: fit the network and open its MLflow run (model, cost curve)."""

from pathlib import Path

from digits_nn.cli import PARAMS_FILE, interactive, stage
from digits_nn.config import Config
from digits_nn.data import artifacts
from digits_nn.pipeline import provenance
from digits_nn.pipeline.prepared import PreparedData, check_split
from digits_nn.pipeline.recording import RunData, new_run
from digits_nn.pipeline.steps import (
    RunContext,
    announce_platform,
    hand_over,
    refuse_peer,
    train_and_record,
)
from digits_nn.tracking.store import open_store


@stage
def main(cfg: Config) -> None:
    refuse_peer(cfg)
    split = artifacts.read_split(cfg.paths.split)
    onehot = artifacts.read_onehot(cfg.paths.onehot, split)
    scaled = artifacts.read_scaled(cfg.paths.scaled)  # its scaling travels with the model
    check_split(cfg, split)
    # The committed platform.json: evaluate rewrites it after this stage, never before.
    announce_platform(cfg.paths.platform)
    store = open_store(cfg.tracking)
    run_data = RunData(split, provenance.md5(cfg.paths.split), cfg.paths.split)
    with new_run(store, cfg, run_data) as run:
        ctx = RunContext(cfg, run, cfg.paths, Path(PARAMS_FILE), interactive())
        train_and_record(ctx, PreparedData(scaled, split, onehot))
    hand_over(cfg.paths, run)  # the evaluate stage records into this same run


if __name__ == "__main__":
    main()
