"""DVC stage `evaluate`: accuracy, confusion matrix and plots, added to the model's run."""

from digits_nn import artifacts, pipeline, provenance, tracking
from digits_nn.cli import stage
from digits_nn.config import Config


@stage
def main(cfg: Config) -> None:
    split = artifacts.read_split(cfg.paths.split)
    test_pixels = pipeline.raw_pixels(split.X_test, artifacts.read_scaled(cfg.paths.scaled))
    network = artifacts.read_model(cfg.paths.model, n_inputs=split.X_test.shape[1])
    cost, classic_cost = artifacts.read_cost_curve(cfg.paths.cost)
    store = pipeline.open_store(cfg)
    # The train stage tagged its run with the model's md5: evaluate that same run.
    run_id = store and tracking.find_run(store, "model_md5", provenance.md5(cfg.paths.model))
    run_data = pipeline.RunData(split, provenance.md5(cfg.paths.split), cfg.paths.split)
    with pipeline.recording(store, cfg, run_data=run_data, run_id=run_id) as recorder:
        pipeline.evaluate_and_record(
            network,
            pipeline.fitted_split(split, cfg),  # train_accuracy on the rows trained on
            test_pixels,
            cost,
            classic_cost,
            recorder,
            cfg.paths,
        )


if __name__ == "__main__":
    main()
