"""What logging a run's two dataset inputs costs, against the rest of the run's logging.

    python benchmarks/dataset_inputs.py [repeats]

One warm-up, then ``repeats`` (default 5) runs into a fresh SQLite store. In each run,
:func:`digits_nn.tracking.log_datasets` is timed, and so is everything else a classic
run logs, in the order the train and evaluate steps log it (params, cost curve,
accuracy curve, metrics, tags, files, the pyfunc model, the reports): its peer, measured
in the same process on the same store. Prints the medians and their ratio as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from digits_nn import config, pipeline, provenance, tracking
from digits_nn.evaluate import evaluate


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    out = Path(tempfile.mkdtemp(prefix="dataset-inputs-"))
    cfg = config.parse({"tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}"}})
    paths = cfg.paths.under(out)
    scaled, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    model_files = pipeline.save_training(paths, result)
    evaluation = evaluate(result.network, split)
    reports = pipeline.save_evaluation(
        paths,
        evaluation,
        split,
        result.cost_curve,
        result.classic_cost_curve,
        result.network.weights[0],
        pipeline.raw_pixels(split.X_test, scaled),
    )
    params_file = out / "params.yaml"
    params_file.write_text(json.dumps(config.to_dict(cfg)))
    accuracy_curve = {step: evaluation.test_accuracy for step in range(100, 3001, 100)}
    store = tracking.open_store(cfg.tracking, out)
    md5 = provenance.split_md5(split)

    def rest_of_the_logging(recorder: pipeline.Recorder) -> None:
        recorder.config(cfg, params_file)
        recorder.cost_curves(result.cost_curve, result.classic_cost_curve)
        recorder.curve("test_accuracy_curve", accuracy_curve)
        recorder.tag("model_md5", provenance.md5(paths.model))
        recorder.files(model_files)
        recorder.model(Path(paths.model), scaled)
        recorder.metrics(pipeline.metrics(evaluation, result.cost_curve))
        recorder.files([f for f in reports if f.suffix != ".png"])
        recorder.files([f for f in reports if f.suffix == ".png"], folder="plots")

    datasets, rest = [], []
    for _ in range(1 + repeats):
        with tracking.run(store, name="dataset-inputs-bench") as run_id:
            start = time.perf_counter()
            tracking.log_datasets(store, run_id, split, md5, cfg.paths.split)
            middle = time.perf_counter()
            rest_of_the_logging(pipeline.Recorder(store, run_id))
            end = time.perf_counter()
        datasets.append(middle - start)
        rest.append(end - middle)
    datasets, rest = datasets[1:], rest[1:]  # the first run is the warm-up
    summary = {
        "repeats": repeats,
        "log_datasets median s": statistics.median(datasets),
        "rest of the logging median s": statistics.median(rest),
        "ratio": statistics.median(datasets) / statistics.median(rest),
        "log_datasets samples s": datasets,
        "rest samples s": rest,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="blas"):
        main()
