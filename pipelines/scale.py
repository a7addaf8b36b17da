"""DVC stage `scale`: standardise the pixels (data.scaling), fitted on all rows (the classic
order)."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, steps


@stage
def main(cfg: Config) -> None:
    raw = artifacts.read_dataset(cfg.paths.raw)
    artifacts.write_scaled(cfg.paths.scaled, steps.standardise(raw, cfg.data.scaling))


if __name__ == "__main__":
    main()
