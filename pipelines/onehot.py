"""DVC stage `onehot`: labels to one-hot target rows."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, steps


@stage
def main(cfg: Config) -> None:
    split = artifacts.read_split(cfg.paths.split)
    artifacts.write_onehot(cfg.paths.onehot, steps.one_hot_split(split))


if __name__ == "__main__":
    main()
