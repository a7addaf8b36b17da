"""DVC stage `train`: fit the network and open its MLflow run (model, cost curve)."""

from pathlib import Path

from digits_nn import artifacts, pipeline, provenance
from digits_nn.cli import PARAMS_FILE, stage
from digits_nn.config import Config


@stage
def main(cfg: Config) -> None:
    split = artifacts.read_split(cfg.paths.split)
    onehot = artifacts.read_onehot(cfg.paths.onehot, split)
    scaling = artifacts.read_scaled(cfg.paths.scaled)  # travels with the MLflow model
    store = pipeline.open_store(cfg)
    run_data = pipeline.RunData(split, provenance.md5(cfg.paths.split), cfg.paths.split)
    with pipeline.recording(store, cfg, run_data=run_data) as recorder:
        pipeline.train_and_record(
            cfg,
            split,
            onehot,
            scaling,
            recorder,
            cfg.paths,
            Path(PARAMS_FILE),
            pipeline.interactive(),
        )


if __name__ == "__main__":
    main()
