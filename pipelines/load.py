"""DVC stage `load`: scikit-learn's digits to data/raw/digits.npz."""

from digits_nn import artifacts, data
from digits_nn.cli import stage
from digits_nn.config import Config


@stage
def main(cfg: Config) -> None:
    artifacts.write_dataset(cfg.paths.raw, data.load_digits())


if __name__ == "__main__":
    main()
