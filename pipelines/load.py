"""DVC stage `load`: scikit-learn's digits to data/raw/digits.npz."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, steps


@stage
def main(cfg: Config) -> None:
    artifacts.write_dataset(cfg.paths.raw, steps.load_digits())


if __name__ == "__main__":
    main()
