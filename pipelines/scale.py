"""DVC stage `scale`: standardise every pixel, fitted on all rows (the classic order)."""

from digits_nn import artifacts, data
from digits_nn.cli import stage
from digits_nn.config import Config


@stage
def main(cfg: Config) -> None:
    raw = artifacts.read_dataset(cfg.paths.raw)
    artifacts.write_scaled(cfg.paths.scaled, data.standardise(raw))


if __name__ == "__main__":
    main()
