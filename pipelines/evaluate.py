"""DVC stage `evaluate`: accuracy, confusion matrix and plots, added to the model's run."""

from digits_nn.cli import stage
from digits_nn.config import Config
from digits_nn.data import artifacts, steps
from digits_nn.data.model_file import read_model
from digits_nn.pipeline import provenance
from digits_nn.pipeline.outputs import read_training
from digits_nn.pipeline.prepared import PreparedData
from digits_nn.pipeline.recording import RunData
from digits_nn.pipeline.steps import RunContext, evaluate_and_record, run_to_evaluate
from digits_nn.tracking.store import open_store


@stage
def main(cfg: Config) -> None:
    split = artifacts.read_split(cfg.paths.split)
    scaled = artifacts.read_scaled(cfg.paths.scaled)
    network = read_model(cfg.paths.model, n_inputs=split.X_test.shape[1])
    # Evaluation reads no targets file: its labels are the split's own.
    data = PreparedData(scaled, split, steps.one_hot_split(split))
    result = read_training(cfg, network, data)
    store = open_store(cfg.tracking)
    run_data = RunData(split, provenance.md5(cfg.paths.split), cfg.paths.split)
    with run_to_evaluate(store, cfg, run_data) as run:
        evaluate_and_record(RunContext(cfg, run, cfg.paths), result, data)


if __name__ == "__main__":
    main()
