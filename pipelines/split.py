"""DVC stage `split`: a seeded train/test split (data.test_size, seed)."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, steps


@stage
def main(cfg: Config) -> None:
    scaled = artifacts.read_scaled(cfg.paths.scaled)
    split = steps.split(scaled.X, scaled.y, cfg.data.test_size, cfg.seed)
    artifacts.write_split(cfg.paths.split, split)


if __name__ == "__main__":
    main()
