"""DVC stage `split`: the seeded test rows (a data.test_size share, or fold data.fold of
data.folds) and the training rows."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, rows, steps


@stage
def main(cfg: Config) -> None:
    scaled = artifacts.read_scaled(cfg.paths.scaled)
    split = steps.take(scaled.X, scaled.y, rows.partition(scaled.y, cfg.data, cfg.seed))
    artifacts.write_split(cfg.paths.split, split)


if __name__ == "__main__":
    main()
