"""Regression tests for the expert review (issue 14): one or more per finding.

Each names its finding in a comment. The slow end-to-end ones are in
``test_e2e_review.py``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from digits_nn import config, data, evaluate, modern, pipeline
from digits_nn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MODERN = {
    "model": {"hidden_size": 64, "activation": "relu", "output": "softmax", "init": "he"},
    "train": {"optimizer": "momentum", "batch_size": 32, "alpha": 0.05, "iterations": 20},
    "tracking": {"accuracy_every": 0},
}


def parse(**sections: dict) -> config.Config:
    raw = copy.deepcopy(MODERN)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config.parse(raw)


# ---- 1. float32 cross-entropy ------------------------------------------------------------


def test_float32_cross_entropy_is_finite_where_the_softmax_underflows() -> None:
    """A logit gap of 200 underflows the softmax to 0 in float32 (and float64's floor
    1e-300 is 0 there); the cost must still be the finite, float64-agreeing value."""
    rng = np.random.default_rng(0)
    net64 = modern.init_network([4, 3, 5], "xavier", 0, "float64", "tanh", "softmax")
    net64.weights[-1] *= 100.0  # tanh outputs ~±1, so logits spread by ~hundreds
    X = rng.standard_normal((8, 4))
    Y = np.eye(5)[rng.integers(0, 5, 8)]
    net32 = copy.deepcopy(net64)
    net32.weights = [W.astype(np.float32) for W in net64.weights]
    net32.biases = [b.astype(np.float32) for b in net64.biases]
    out32 = modern.forward(net32, X.astype(np.float32))[-1]
    assert (out32 == 0).any()  # the case that read nan: a probability underflowed
    cost32 = modern.cost(net32, X.astype(np.float32), Y.astype(np.float32), 0.0, 8)
    cost64 = modern.cost(net64, X, Y, 0.0, 8)
    assert np.isfinite(cost32)
    assert cost32 == pytest.approx(cost64, rel=1e-4)


def test_float32_training_on_the_modern_options_does_not_diverge() -> None:
    """The modern preset's options in float32, for the iterations that used to stop at
    iteration 2 with "the cost became nan"."""
    cfg = parse(
        model={"hidden_size": 256},
        train={
            "dtype": "float32",
            "nesterov": True,
            "l2": 3.0,
            "schedule": "inverse_time",
            "decay": 0.05,
            "iterations": 5,
        },
    )
    _, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    assert len(result.cost_curve) == 5 and np.isfinite(result.cost_curve).all()
    assert result.network.weights[0].dtype == np.float32


# ---- 3. early stopping describes the weights it keeps ------------------------------------


def small_validated_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    X, X_val = rng.standard_normal((60, 5)), rng.standard_normal((30, 5))
    W = rng.standard_normal((5, 4))
    Y, Y_val = (np.eye(4)[np.argmax(A @ W, axis=1)] for A in (X, X_val))
    return X, Y, (X_val, Y_val)


def train_small(patience: int | None, iterations: int, alpha: float = 0.05):
    X, Y, validation = small_validated_problem()
    net = modern.init_network([5, 8, 4], "xavier", 0, activation="tanh", output="softmax")
    raw = {"optimizer": "sgd", "batch_size": 16, "alpha": alpha, "iterations": iterations}
    raw |= {"validation_size": 0.2, "patience": patience}
    history = modern.train(net, X, Y, config.parse({"train": raw}).train, 0, validation)
    return net, history, (X, Y, validation)


def test_early_stopping_validates_the_weights_after_the_last_pass() -> None:
    """With a patience that never runs out, the weights kept are the final ones when
    they validate best, not those of the pass before (the loop never measured them)."""
    stopped, history, (_, _, (X_val, Y_val)) = train_small(patience=1000, iterations=20)
    plain, _, _ = train_small(patience=None, iterations=20)
    curve = history.validation_cost_curve
    assert curve is not None and np.all(np.diff(curve) < 0)  # still improving at the end
    assert history.best_iteration == 21  # the weights after pass 20
    for kept, final in zip(stopped.weights + stopped.biases, plain.weights + plain.biases):
        np.testing.assert_array_equal(kept, final)
    logits = modern.hidden_and_logits(stopped, X_val)[1]
    assert curve[-1] == modern.loss(Y_val, logits, "softmax")


def test_early_stopping_reports_the_costs_of_the_weights_it_keeps() -> None:
    """The curves end at the restored weights: final cost and validation loss are
    theirs, not those of the iteration where training stopped."""
    net, history, (X, Y, (X_val, Y_val)) = train_small(patience=3, iterations=400, alpha=0.5)
    curve = history.validation_cost_curve
    assert history.best_iteration is not None and history.best_iteration <= 400  # stopped
    assert len(history.cost_curve) == len(curve) == history.best_iteration
    assert curve[-1] == curve.min()
    assert history.cost_curve[-1] == pytest.approx(modern.cost(net, X, Y, 0.0, len(X)), rel=1e-12)
    assert curve[-1] == pytest.approx(
        modern.loss(Y_val, modern.hidden_and_logits(net, X_val)[1], "softmax"), rel=1e-12
    )


def test_no_best_iteration_without_early_stopping() -> None:
    cfg = parse()
    _, split, onehot = pipeline.prepare_data(cfg)
    assert pipeline.fit(cfg, split, onehot, progress=False).best_iteration is None
    validated = parse(train={"validation_size": 0.2})
    assert pipeline.fit(validated, split, onehot, progress=False).best_iteration is None


# ---- 8. a validation share too small to stratify ------------------------------------------


@pytest.mark.parametrize("size", [0.005, 0.0083, 0.991, 0.995])
def test_validation_size_too_small_to_stratify_is_refused_up_front(size: float) -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"train": {"validation_size": size}})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"train.validation_size={size!r} is not allowed")
    assert "from 0.0093 to 0.9907" in message  # of the 1078 training rows


def test_the_allowed_validation_sizes_are_exactly_those_that_stratify() -> None:
    """The refusal's bounds are scikit-learn's: just inside them the carve works."""
    cfg = config.parse({})
    _, split, onehot = pipeline.prepare_data(cfg)
    n = len(split.X_train)
    assert config.held_out(config.DIGITS_ROWS, cfg.data.test_size)[0] == n
    assert len(data.load_digits().y) == config.DIGITS_ROWS
    for size in (10 / n, (n - 10) / n):
        config.parse({"train": {"validation_size": size}})
        X_fit, _, (X_val, _) = pipeline.carve_validation(split.X_train, onehot.Y_train, size, 0)
        assert min(len(X_fit), len(X_val)) == 10
    for size in (9 / n, (n - 9) / n):
        with pytest.raises(ValueError, match="number of classes = 10"):
            pipeline.carve_validation(split.X_train, onehot.Y_train, size, 0)
        with pytest.raises(ConfigError):
            config.parse({"train": {"validation_size": size}})


def test_too_few_training_rows_allow_no_validation_share() -> None:
    with pytest.raises(ConfigError, match="too few to hold out one row per class"):
        config.parse({"data": {"test_size": 0.995}, "train": {"validation_size": 0.5}})


# ---- 9. options that have no effect -------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "key"),
    [
        ({"momentum": 0.5}, "train.momentum"),
        ({"optimizer": "sgd", "batch_size": 16, "momentum": 0.5}, "train.momentum"),
        ({"optimizer": "sgd", "nesterov": True}, "train.nesterov"),
        ({"nesterov": False}, "train.nesterov"),
        ({"decay": 0.1}, "train.decay"),
        ({"schedule": "inverse_time"}, "train.decay"),
        ({"schedule": "inverse_time", "decay": 0.0}, "train.decay"),
    ],
    ids=[
        "momentum-gd",
        "momentum-sgd",
        "nesterov-sgd",
        "nesterov-gd",
        "decay-constant",
        "inverse-time-without-decay",
        "inverse-time-zero-decay",
    ],
)
def test_an_option_without_effect_is_refused(train: dict, key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config.parse({"train": train})
    assert str(refused.value).startswith(f"{key}=")
    assert "\n" not in str(refused.value)


def test_params_show_only_the_options_that_took_effect() -> None:
    plain = config.flatten(config.parse({}))
    assert not {"train.momentum", "train.nesterov", "train.decay"} & set(plain)
    momentum = config.flatten(config.parse({"train": {"optimizer": "momentum"}}))
    assert (momentum["train.momentum"], momentum["train.nesterov"]) == (0.9, False)
    assert "train.decay" not in momentum
    decayed = config.flatten(config.parse({"train": {"schedule": "inverse_time", "decay": 0.1}}))
    assert decayed["train.decay"] == 0.1
    params = (ROOT / "params.yaml").read_text()
    for key in ("momentum", "nesterov", "decay"):
        assert f"  {key}: null\n" in params


def test_dvc_sets_momentum_where_it_acts(tmp_path: Path) -> None:
    """`dvc exp run -S` composes params.yaml with this very function: the keys stay in
    conf/ (as null), so `-S train.momentum=...` still overrides them."""
    from dvc.utils.hydra import compose_and_dump

    params = tmp_path / "params.yaml"
    overrides = ["train.optimizer=momentum", "train.momentum=0.5", "train.nesterov=true"]
    compose_and_dump(params, str(ROOT / "conf"), None, "config", "", overrides)
    train = config.load(params).train
    assert (train.momentum, train.nesterov) == (0.5, True)
    compose_and_dump(params, str(ROOT / "conf"), None, "config", "", ["train.momentum=0.5"])
    with pytest.raises(ConfigError, match=r"null unless train\.optimizer=momentum"):
        config.load(params)


# ---- 10. train accuracy on the rows trained on ---------------------------------------------


def test_train_accuracy_is_measured_on_the_rows_trained_on() -> None:
    from sklearn.model_selection import train_test_split

    cfg = parse(train={"validation_size": 0.5, "iterations": 30})
    _, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    fitted = pipeline.fitted_split(split, cfg)
    # The fit rows, found independently of the pipeline's helper.
    X_fit, X_val, y_fit, y_val = train_test_split(
        split.X_train, split.y_train, test_size=0.5, random_state=cfg.seed, stratify=split.y_train
    )
    np.testing.assert_array_equal(fitted.X_train, X_fit)
    evaluation = evaluate.evaluate(result.network, fitted)
    on_fit = float(np.mean(modern.predict(result.network, X_fit) == y_fit))
    on_val = float(np.mean(modern.predict(result.network, X_val) == y_val))
    assert evaluation.train_accuracy == on_fit
    assert result.validation_accuracy == on_val
    assert on_fit != on_val  # else the test could not tell them apart
    np.testing.assert_array_equal(fitted.X_test, split.X_test)


# ---- 11. the Optuna search runs two trials at a time ----------------------------------------


def test_optuna_preset_runs_its_trials_two_at_a_time() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", ["hparams_search=optuna"], return_hydra_config=True)
    assert cfg.hydra.sweeper.n_jobs == 2  # trials asked for per batch...
    assert "joblib" in cfg.hydra.launcher._target_  # ...and a launcher that runs them
    assert cfg.hydra.launcher.n_jobs == 2  # in parallel, two at a time


# ---- 2. the served model's import path -------------------------------------------------------

# Prints the modules that loading the model and predicting added to those of MLflow's
# own import (which brings scipy and tqdm, its declared dependencies, itself).
SERVE_AND_LIST_MODULES = textwrap.dedent(
    """
    import sys
    import mlflow.pyfunc
    import pandas as pd
    before = set(sys.modules)
    model = mlflow.pyfunc.load_model(sys.argv[1])
    pixels = pd.DataFrame([[0] * 64, [16] * 64], columns=[f"pixel_{i}" for i in range(64)])
    print(model.predict(pixels))
    print(" ".join(sorted(set(sys.modules) - before)))
    """
)


def test_serving_imports_neither_training_code_nor_undeclared_packages(tmp_path: Path) -> None:
    model_dir = save_model(tmp_path)
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == ["mlflow", "numpy", "pandas"]
    listed = subprocess.run(
        [sys.executable, "-c", SERVE_AND_LIST_MODULES, str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.splitlines()
    added = set(listed[-1].split())
    ours = {name for name in added if name.startswith("digits_nn")}
    assert "digits_nn.inference" in ours  # the model ran our code...
    serving = {"serving", "inference", "network", "artifacts", "data", "errors"}
    assert ours <= {"digits_nn", *(f"digits_nn.{name}" for name in serving)}  # ...and only it
    third_party = {name.split(".")[0] for name in added} - set(sys.stdlib_module_names)
    assert not third_party & {"omegaconf", "scipy", "tqdm", "sklearn", "hydra", "matplotlib"}


def save_model(tmp_path: Path) -> Path:
    """The model exactly as tracking.log_model logs it, saved to a folder."""
    from digits_nn import artifacts, tracking

    cfg = parse(train={"iterations": 2})
    scaled, split, onehot = pipeline.prepare_data(cfg)
    result = pipeline.fit(cfg, split, onehot, progress=False)
    artifacts.write_model(tmp_path / "model.npz", result.network)
    return tracking.save_model(
        tmp_path / "saved", tmp_path / "model.npz", scaled.mean, scaled.scale
    )


# ---- 7. integer pixels ----------------------------------------------------------------------


def test_the_model_takes_integer_and_float_pixels_and_refuses_bad_columns(tmp_path: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(str(save_model(tmp_path)))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 17, size=(20, 64))
    columns = [f"pixel_{i}" for i in range(64)]
    as_int = model.predict(pd.DataFrame(pixels, columns=columns))
    assert as_int == model.predict(pd.DataFrame(pixels.astype(float), columns=columns))
    assert set(as_int) <= set(range(10))
    bad_frames = {
        "63 columns": pd.DataFrame(pixels[:, :63], columns=columns[:63]),
        "65 columns": pd.DataFrame(pixels, columns=columns).assign(extra=1),
        "renamed": pd.DataFrame(pixels, columns=[f"p{i}" for i in range(64)]),
        "text": pd.DataFrame(pixels, columns=columns).astype(str),
        "NaN": pd.DataFrame(np.where(pixels > 15, np.nan, pixels), columns=columns),
    }
    for name, frame in bad_frames.items():
        with pytest.raises(MlflowException) as refused:
            model.predict(frame)
        assert refused.value.get_http_status_code() == 400, name
