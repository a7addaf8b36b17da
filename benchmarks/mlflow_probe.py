"""Run inside a project copy: one whole run with MLflow, each part timed; prints JSON.

Separate process so that ``import mlflow`` is really the first import. The logging
calls are the pipeline's own (:class:`digits_nn.pipeline.Recorder`), in the order the
train and evaluate steps make them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from digits_nn import config, pipeline, provenance

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
    scaled, split, onehot = timed("run: data", lambda: pipeline.prepare_data(cfg))
    result = timed("run: train", lambda: pipeline.fit(cfg, split, onehot, False))
    files = timed("run: save model", lambda: pipeline.save_training(paths, result))
    evaluation = timed(
        "run: evaluate + save",
        lambda: pipeline.evaluate_and_record(
            result.network,
            split,
            pipeline.raw_pixels(split.X_test, scaled),
            result.cost_curve,
            result.classic_cost_curve,
            pipeline.Recorder(),
            paths,
        ),
    )
    eval_files = [Path(p) for p in (paths.metrics, paths.classes, paths.predictions)] + [
        Path(paths.plots) / f"{name}.png" for name in pipeline.PICTURES
    ]

    timed("mlflow: import", lambda: __import__("mlflow"))
    store = timed("mlflow: open store", lambda: pipeline.open_store(cfg))
    md5 = provenance.split_md5(split)
    start = time.perf_counter()
    run_data = pipeline.RunData(split, md5, cfg.paths.split)
    with pipeline.recording(store, cfg, run_data=run_data) as recorder:
        timings["log: create run + tags"] = time.perf_counter() - start
        params_file = out / "params.yaml"
        params_file.write_text(yaml.safe_dump(config.to_dict(cfg)))
        timed("log: params + params.yaml", lambda: recorder.config(cfg, params_file))
        timed(
            "log: cost curve",
            lambda: recorder.cost_curves(result.cost_curve, result.classic_cost_curve),
        )
        timed(
            "log: model tag + artifacts",
            lambda: (recorder.tag("model_md5", provenance.md5(paths.model)), recorder.files(files)),
        )
        timed(
            "log: metrics",
            lambda: recorder.metrics(pipeline.metrics(evaluation, result.cost_curve)),
        )
        timed("model: pyfunc model", lambda: recorder.model(Path(paths.model), scaled))
        timed(
            "log: eval artifacts",
            lambda: (
                recorder.files(eval_files[:3]),
                recorder.files(eval_files[3:], folder="plots"),
            ),
        )
        start = time.perf_counter()
    timings["log: close run"] = time.perf_counter() - start
    timings["points logged"] = float(len(result.cost_curve))
    assert np.isfinite(result.final_cost)
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
