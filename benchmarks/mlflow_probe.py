"""Run inside a project copy: one whole run with MLflow, each part timed; prints JSON.

Separate process so that ``import mlflow`` is really the first import. The logging
calls are the pipeline's own (:mod:`digits_nn.pipeline.recording` and
:class:`digits_nn.tracking.runs.RunLog`), in the order the train and evaluate steps make
them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from digits_nn import config
from digits_nn.pipeline import outputs, provenance, recording
from digits_nn.pipeline.fit import fit
from digits_nn.pipeline.prepared import prepare
from digits_nn.pipeline.steps import RunContext, evaluate_and_record
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import open_store

timings: dict[str, float] = {}


def timed(name: str, work):
    start = time.perf_counter()
    result = work()
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
    return result


def main() -> None:
    iterations = int(sys.argv[1])
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["train"]["iterations"] = iterations
    cfg = config.parse(params)
    out = Path(tempfile.mkdtemp(prefix="mlflow-probe-"))
    paths = cfg.paths.under(out)

    # The run itself, tracking off: data, training, files, evaluation.
    data = timed("run: data", lambda: prepare(cfg))
    result = timed("run: train", lambda: fit(cfg, data))
    files = timed("run: save model", lambda: outputs.save_training(paths, result))
    untracked = RunContext(cfg, RunLog(), paths)
    evaluation = timed("run: evaluate + save", lambda: evaluate_and_record(untracked, result, data))
    eval_files = [Path(p) for p in (paths.metrics, paths.classes, paths.predictions)] + [
        Path(paths.plots) / f"{name}.png" for name in outputs.PICTURES
    ]

    timed("mlflow: import", lambda: __import__("mlflow"))
    store = timed("mlflow: open store", lambda: open_store(cfg.tracking))
    md5 = provenance.split_md5(data.split)
    start = time.perf_counter()
    run_data = recording.RunData(data.split, md5, cfg.paths.split)
    with recording.new_run(store, cfg, run_data) as run:
        timings["log: create run + tags"] = time.perf_counter() - start
        params_file = out / "params.yaml"
        params_file.write_text(yaml.safe_dump(config.to_dict(cfg)))
        timed("log: params + params.yaml", lambda: recording.record_config(run, cfg, params_file))
        timed(
            "log: cost curve",
            lambda: recording.record_cost(run, result.cost_curve, result.classic_cost_curve),
        )
        timed(
            "log: model tag + artifacts",
            lambda: (run.tag("model_md5", provenance.md5(paths.model)), run.files(files)),
        )
        timed("log: metrics", lambda: run.metrics(outputs.metrics(evaluation, result)))
        timed(
            "model: pyfunc model",
            lambda: recording.record_model(run, cfg, Path(paths.model), data.scaled),
        )
        timed(
            "log: eval artifacts",
            lambda: (run.files(eval_files[:3]), run.files(eval_files[3:], folder="plots")),
        )
        start = time.perf_counter()
    timings["log: close run"] = time.perf_counter() - start
    timings["points logged"] = float(len(result.cost_curve))
    assert np.isfinite(result.final_cost)
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
