"""DVC stage `scale`: standardise the pixels (data.scaling), fitted on the rows
data.scaler_rows names (all rows, the classic order; or the training rows the split stage
will choose)."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, rows, steps


@stage
def main(cfg: Config) -> None:
    raw = artifacts.read_dataset(cfg.paths.raw)
    fitted = rows.scaling_rows(raw.y, cfg.data, cfg.seed, cfg.train.validation_size)
    artifacts.write_scaled(cfg.paths.scaled, steps.standardise(raw, fitted, cfg.data.scaling))


if __name__ == "__main__":
    main()
