"""What logging a run's two dataset inputs costs, against the rest of the run's logging.

    python benchmarks/dataset_inputs.py [repeats]

One warm-up, then ``repeats`` (default 5) runs into a fresh SQLite store. In each run,
:meth:`digits_nn.tracking.runs.RunLog.datasets` is timed, and so is everything else a classic
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

from digits_nn import config
from digits_nn.pipeline import outputs, provenance, recording
from digits_nn.pipeline.evaluation import evaluate
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare
from digits_nn.tracking import runs
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import open_store


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    out = Path(tempfile.mkdtemp(prefix="dataset-inputs-"))
    cfg = config.parse({"tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}"}})
    paths = cfg.paths.under(out)
    data = prepare(cfg)
    result = fit(cfg, data)
    model_files = outputs.save_training(paths, result)
    evaluation = evaluate(result.network, data.split)
    reports = outputs.save_evaluation(paths, evaluation, result, data)
    params_file = out / "params.yaml"
    params_file.write_text(json.dumps(config.to_dict(cfg)))
    accuracy_curve = {step: evaluation.test_accuracy for step in range(100, 3001, 100)}
    store = open_store(cfg.tracking, out)
    md5 = provenance.split_md5(data.split)

    def rest_of_the_logging(run: RunLog) -> None:
        recording.record_config(run, cfg, params_file)
        recording.record_training(run, result, accuracy_curve, model_files)
        recording.record_model(run, cfg, Path(paths.model), data.scaled)
        run.metrics(outputs.metrics(evaluation, result))
        run.files([f for f in reports if f.suffix != ".png"])
        run.files([f for f in reports if f.suffix == ".png"], folder="plots")

    datasets, rest = [], []
    for _ in range(1 + repeats):
        with runs.run(store, name="dataset-inputs-bench") as run:
            start = time.perf_counter()
            run.datasets(data.split, md5, cfg.paths.split)
            middle = time.perf_counter()
            rest_of_the_logging(run)
            end = time.perf_counter()
        datasets.append(middle - start)
        rest.append(end - middle)
    datasets, rest = datasets[1:], rest[1:]  # the first run is the warm-up
    summary = {
        "repeats": repeats,
        "datasets median s": statistics.median(datasets),
        "rest of the logging median s": statistics.median(rest),
        "ratio": statistics.median(datasets) / statistics.median(rest),
        "datasets samples s": datasets,
        "rest samples s": rest,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="blas"):
        main()
