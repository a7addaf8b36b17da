"""The paired comparison of two configurations on the same resamples
(``python -m digits_nn.compare``).

Each side is one of:

- a sweep's directory (``multirun/<date>/<time>``), optionally ``DIR#CONFIGURATION``
  to pick one of its configurations: the accuracies its jobs recorded;
- ``rev:REV``, a git revision or a ``dvc exp`` name: the configuration in its
  ``params.yaml``, trained now on the resamples (with the code checked out now);
- Hydra overrides in one argument (``"experiment=modern train.l2=1.0"``, ``peer=svc``,
  ``defaults``): that configuration, trained now on the resamples.

Both sides are measured on the same resamples: those of a sweep side, or else
``folds`` x ``repeats`` stratified folds. The test is the corrected resampled t-test
(:mod:`digits_nn.sweeps.stats`).
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm.auto import tqdm

from digits_nn import config
from digits_nn.cli import interactive
from digits_nn.errors import ConfigError
from digits_nn.sweeps import resamples, stats
from digits_nn.sweeps.protocol import JOBS_FILE
from digits_nn.sweeps.records import sweep_records

log = logging.getLogger(__name__)

Resample = tuple[Any, ...]  # the values of resamples.RESAMPLE_PARAMS


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its name and its accuracy on each resample."""

    label: str
    accuracies: dict[Resample, float]
    ratio: float  # n_test / n_train of its resamples

    @property
    def spread(self) -> stats.Spread:
        return stats.spread(np.array(list(self.accuracies.values())), self.ratio)


@dataclass(frozen=True)
class Result:
    a: Side
    b: Side
    paired: stats.Paired

    def lines(self) -> list[str]:
        """The report: each side's spread, the difference, and the one-line verdict."""
        out = []
        for name, side in (("A", self.a), ("B", self.b)):
            s = side.spread
            out.append(
                f"{name}: {side.label}: mean {s.mean:.4f}, sd {s.std:.4f}, 95 % interval"
                f" {s.low:.4f} to {s.high:.4f} over {s.n} resamples"
            )
        p = self.paired
        out.append(
            f"B - A: {p.difference:+.4f} on {p.n} paired resamples, 95 % interval"
            f" {p.low:+.4f} to {p.high:+.4f}; corrected resampled t = {p.t:.3g},"
            f" p = {p.p:.3g}"
        )
        out.append(stats.verdict(p, self.a.label, self.b.label))
        return out

    def details(self) -> dict[str, Any]:
        """Everything the report rests on, for a machine: each side's accuracy per
        resample (its ``RESAMPLE_PARAMS`` values) and the test's figures."""

        def side(s: Side) -> dict[str, Any]:
            rows = [
                {**dict(zip(resamples.RESAMPLE_PARAMS, key)), "accuracy": value}
                for key, value in s.accuracies.items()
            ]
            return {"label": s.label, "ratio": s.ratio, "resamples": rows}

        return {
            "a": side(self.a),
            "b": side(self.b),
            "paired": dataclasses.asdict(self.paired),
            "distinguishable": self.paired.distinguishable,
            "verdict": self.lines()[-1],
        }


def fold_resamples(folds: int, repeats: int, seed: int) -> list[dict[str, Any]]:
    """The rows of ``repeats`` x ``folds`` stratified folds, as config values."""
    return [
        {"data.folds": folds, "data.fold": fold, "data.repeat": repeat, "seed": seed}
        for repeat in range(repeats)
        for fold in range(folds)
    ]


def is_sweep(spec: str) -> bool:
    return (Path(spec.partition("#")[0]) / JOBS_FILE).is_file()


def sweep_side(spec: str) -> tuple[Side, list[dict[str, Any]]]:
    """A sweep's configuration and the params of its resamples."""
    folder, _, wanted = spec.partition("#")
    groups = resamples.group(sweep_records(Path(folder)))
    if not groups:
        raise ConfigError(f"{folder}: the sweep has no finished job to compare.")
    if not wanted and len(groups) > 1:
        raise ConfigError(
            f"{folder}: holds {len(groups)} configurations; pick one as {folder}#CONFIGURATION,"
            f" one of: {', '.join(sorted(groups))}."
        )
    name = wanted or next(iter(groups))
    if name not in groups:
        raise ConfigError(
            f"{spec}: no configuration {name!r} in the sweep; one of: {', '.join(sorted(groups))}."
        )
    jobs = groups[name]
    side = Side(spec, resamples.accuracies(jobs, "test_accuracy"), resamples.ratio_of(jobs[0]))
    params = [{k: r["params"].get(k) for k in resamples.RESAMPLE_PARAMS} for r in jobs]
    return side, params


def configuration(spec: str, root: Path) -> DictConfig:
    """The raw configuration a side names: a revision's params.yaml, or overrides of conf/."""
    if spec.startswith("rev:"):
        return _revision_params(spec[len("rev:") :], root)
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    overrides = [] if spec.strip() in ("", "defaults") else spec.split()
    try:
        with initialize_config_dir(str(root / "conf"), version_base="1.3"):
            return compose("config", overrides=overrides)
    except HydraException as error:
        first = str(error).strip().splitlines()[0]
        raise ConfigError(f"{spec!r}: not a configuration of conf/ ({first}).") from None


def _revision_params(rev: str, root: Path) -> DictConfig:
    """``params.yaml`` at a git revision or ``dvc exp`` name."""
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    try:
        with Repo(str(root)) as repo:
            sha = resolve_rev(repo.scm, rev)
    except RevError:
        raise ConfigError(
            f"rev:{rev}: no such git revision or dvc experiment (see `dvc exp show`)."
        ) from None
    shown = subprocess.run(
        ["git", "show", f"{sha}:params.yaml"], cwd=root, capture_output=True, text=True
    )
    if shown.returncode != 0:
        raise ConfigError(f"rev:{rev}: has no params.yaml ({shown.stderr.strip()}).")
    raw = OmegaConf.create(shown.stdout)
    assert isinstance(raw, DictConfig)
    return raw


def resample_config(raw: DictConfig, resample: dict[str, Any]) -> config.Config:
    """The configuration on one resample's rows, untracked."""
    raw = raw.copy()
    with open_dict(raw):
        for key, value in resample.items():
            OmegaConf.update(raw, key, value, force_add=True)
        OmegaConf.update(raw, "tracking.enabled", False, force_add=True)
    return config.parse(raw)


def score(cfg: config.Config) -> float:
    """The test accuracy of ``cfg`` (the network, or its peer) on its own rows."""
    from digits_nn.pipeline import peers
    from digits_nn.pipeline.fit import accuracy_on_test, fit
    from digits_nn.pipeline.prepared import prepare

    data = prepare(cfg)
    if cfg.peer is not None:
        fitted = peers.fit_peer(cfg.peer, data, cfg.seed, cfg.train.validation_size)
        return float(np.mean(fitted.test_predictions == data.split.y_test))
    return accuracy_on_test(fit(cfg, data).network, data.split)


def trained_side(spec: str, raw: DictConfig, on: list[dict[str, Any]]) -> Side:
    """A configuration trained on each resample of ``on``."""
    accuracies: dict[Resample, float] = {}
    ratio = 0.0
    shown = interactive()
    for resample in tqdm(on, desc=spec, unit="resample", leave=False, disable=not shown):
        cfg = resample_config(raw, resample)
        row = {"params": config.flatten(cfg)}
        accuracies[resamples.resample_of(row)] = score(cfg)
        ratio = resamples.ratio_of(row)
    return Side(spec, accuracies, ratio)


def compare(a: Side, b: Side) -> Result:
    """The paired test of B against A on the resamples both have."""
    shared = sorted(set(a.accuracies) & set(b.accuracies), key=repr)
    if len(shared) < 2:
        raise ConfigError(
            f"{a.label} and {b.label} share {len(shared)} resamples; a paired comparison needs"
            " at least 2 (the same folds, repeats and seed on both sides)."
        )
    x = np.array([a.accuracies[s] for s in shared])
    y = np.array([b.accuracies[s] for s in shared])
    return Result(a, b, stats.paired(x, y, a.ratio))


def run(specs: tuple[str, str], default: list[dict[str, Any]], root: Path) -> Result:
    """Both sides measured on the same resamples (a sweep side's, or ``default``)."""
    on, sides = default, {}
    for spec in specs:
        if is_sweep(spec):
            sides[spec], on = sweep_side(spec)
    for spec in specs:
        if spec not in sides:
            sides[spec] = trained_side(spec, configuration(spec, root), on)
    return compare(sides[specs[0]], sides[specs[1]])
