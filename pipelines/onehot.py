"""DVC stage `onehot`: labels to one-hot target rows."""

from digits_nn import artifacts, data
from digits_nn.cli import stage
from digits_nn.config import Config


@stage
def main(cfg: Config) -> None:
    split = artifacts.read_split(cfg.paths.split)
    artifacts.write_onehot(cfg.paths.onehot, data.one_hot_split(split))


if __name__ == "__main__":
    main()
