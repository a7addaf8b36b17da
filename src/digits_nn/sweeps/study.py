"""An Optuna search that resumes, joins and prunes (``hparams_search=optuna``).

The study lives in a storage: ``optuna.db`` at the repository root by default (beside
``mlflow.db``), or the database :data:`STORAGE_ENV` names (the local stack's PostgreSQL).
A sweep asks the study for trials in batches of ``n_jobs`` and launches each trial as
jobs of the sweep, one per budget: every trial trains to the first budget, reports its
validation accuracy there, and the pruner (median, successive halving, any of Optuna's)
decides whether it goes on, from where it stopped (:mod:`~digits_nn.sweeps.rungs`), to
the next. Every budget a trial reached is one child run, bit for bit a standalone run of
that many iterations.

- **Resumes**: the sweep directory keeps the sweep's id; its trials carry it. A rerun of
  the same command into the same ``hydra.sweep.dir`` finishes the trials it left
  running (reusing each budget that finished) and asks only for the trials still
  missing, so that the sweep ends with ``n_trials`` finished trials, none lost.
- **Joins**: a sweep with another directory (another machine, or the default
  time-stamped folder) adds its ``n_trials`` to the same study; the sampler sees them all.
- **Prunes**: a pruned trial is PRUNED in the study; its runs stay FINISHED in MLflow
  (each is a whole run of its budget) and are tagged ``optuna.trial_state=PRUNED``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial, TrialState

from digits_nn.data.files import write_json
from digits_nn.errors import ConfigError
from digits_nn.sweeps import records
from digits_nn.sweeps.protocol import BUDGET_KEY, job_key
from digits_nn.sweeps.rungs import RungLauncher, Step, tag_runs
from digits_nn.tracking.redaction import redact
from digits_nn.tracking.store import Store, project_root

log = logging.getLogger(__name__)

# The study's database when hydra.sweeper.storage is null; the local stack exports it.
STORAGE_ENV = "DIGITS_NN_OPTUNA_STORAGE"
# In the sweep directory: which sweep of which study this folder holds.
SWEEP_FILE = "optuna_sweep.json"
# The trial attribute naming the sweep (its id) that asked for the trial.
SWEEP_ATTR = "digits_nn_sweep"
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class Settings:
    """The sweeper's settings (``hydra.sweeper``): see ``conf/hydra/sweeper/optuna.yaml``."""

    study_name: str = "digits-nn"
    direction: str = "maximize"
    storage: str | None = None
    n_trials: int = 30
    n_jobs: int = 2
    sampler: Mapping[str, Any] | None = None
    pruner: Mapping[str, Any] | None = None
    budgets: Sequence[int] | None = None
    params: Mapping[str, str] = field(default_factory=dict)


def settings_from(given: Mapping[str, Any]) -> Settings:
    """The sweeper's settings from ``hydra.sweeper``; an unknown key is refused in one line."""
    names = [f.name for f in fields(Settings)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(
            f"hydra.sweeper.{unknown[0]}: unknown key of the Optuna sweeper. Allowed keys:"
            f" {', '.join(names)}."
        )
    plain = {
        key: OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value
        for key, value in given.items()
    }
    settings = Settings(**plain)
    errors = list(_setting_errors(settings))
    if errors:
        raise ConfigError(errors[0])
    return settings


def _setting_errors(settings: Settings) -> Iterator[str]:
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    def bad(key: str, value: Any, allowed: str) -> str:
        return f"hydra.sweeper.{key}={value!r} is not allowed: {allowed}."

    for key in ("n_trials", "n_jobs"):
        if not whole(getattr(settings, key)):
            yield bad(key, getattr(settings, key), "a whole number >= 1")
    if settings.direction not in ("maximize", "minimize"):
        yield bad("direction", settings.direction, "maximize or minimize")
    if not (isinstance(settings.study_name, str) and settings.study_name.strip()):
        yield bad("study_name", settings.study_name, "a non-empty name")
    budgets = settings.budgets
    if budgets is not None and not (
        isinstance(budgets, list) and budgets and all(whole(b) for b in budgets)
    ):
        yield bad("budgets", budgets, "null, or a list of whole numbers >= 1")
    for key in ("sampler", "pruner"):
        node = getattr(settings, key)
        if node is not None and not (isinstance(node, dict) and "_target_" in node):
            yield bad(key, node, "null, or a node with _target_ an Optuna class and its arguments")


# ---- the storage ------------------------------------------------------------------------


def storage_url(setting: str | None, root: Path | None = None) -> str:
    """Where the study lives: ``hydra.sweeper.storage``, else :data:`STORAGE_ENV`, else
    ``optuna.db`` at the repository root. A URL in the config is written into the
    sweep's folders by Hydra, so it may not carry a password (the environment may)."""
    if setting:
        if redact(setting) != setting:
            raise ConfigError(
                f"hydra.sweeper.storage={redact(setting)} is not allowed: a URL without a"
                " password (Hydra writes it into the sweep's folders). Give the password"
                f" in PGPASSWORD or a pgpass file, or the whole URL in {STORAGE_ENV}."
            )
        return setting
    if os.environ.get(STORAGE_ENV):
        return os.environ[STORAGE_ENV]
    return f"sqlite:///{(root or project_root()) / 'optuna.db'}"


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """While a SQLite study's tables may be created: one process at a time, as for the
    MLflow store (two first users at once race to create them)."""
    if not url.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    with FileLock(url.removeprefix("sqlite:///").split("?")[0] + ".lock", timeout=120):
        yield


def open_study(settings: Settings, url: str, seed_parts: Sequence[int]) -> optuna.Study:
    """The study named ``settings.study_name`` in ``url``, created if new. The sampler's
    seed, if it has one, is combined with ``seed_parts`` (see :func:`seed_parts`)."""
    sampler_cfg = dict(settings.sampler or {})
    if sampler_cfg.get("seed") is not None:
        mixed = np.random.SeedSequence([int(sampler_cfg["seed"]), *seed_parts])
        sampler_cfg["seed"] = int(mixed.generate_state(1)[0])
    sampler = built("sampler", sampler_cfg) if sampler_cfg else None
    pruner = built("pruner", settings.pruner) if settings.pruner else optuna.pruners.NopPruner()
    try:
        with storage_lock(url):
            study = optuna.create_study(
                storage=url,
                study_name=settings.study_name,
                direction=settings.direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"Optuna storage {redact(url)}: cannot open study {settings.study_name!r}"
            f" ({redact(reason)[:300]}). Point hydra.sweeper.storage or {STORAGE_ENV} at a"
            " working database."
        ) from None
    # An existing study keeps the direction it was created with, whatever is asked.
    kept = study.direction.name.lower()
    if kept != settings.direction:
        raise ConfigError(
            f"hydra.sweeper.direction={settings.direction} is not allowed: study"
            f" {settings.study_name!r} in {redact(url)} was created to {kept}; sweep it"
            " that way, or name another study (hydra.sweeper.study_name)."
        )
    return study


def built(name: str, node: Mapping[str, Any]) -> Any:
    """The object ``hydra.sweeper.<name>`` describes; a node it cannot build is refused
    in one line."""
    try:
        return instantiate(dict(node))
    except Exception as error:
        cause = error.__cause__ or error
        raise ConfigError(
            f"hydra.sweeper.{name}={dict(node)} is not allowed: {type(cause).__name__}:"
            f" {str(cause).splitlines()[0] if str(cause) else ''} (a node with _target_ an"
            f" Optuna {name} class, and its arguments)."
        ) from None


# ---- the search space -------------------------------------------------------------------


def search_space(
    params: Mapping[str, str], arguments: Sequence[str]
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions of the swept keys, and the fixed overrides every trial gets, from
    Hydra's sweep syntax: ``choice(...)`` or ``a,b``, ``range(...)``, ``interval(...)``,
    ``tag(log, interval(...))``; a plain value is fixed."""
    lines = [f"{key}={value}" for key, value in params.items()]
    parsed = OverridesParser.create().parse_overrides([*lines, *arguments])
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in parsed:
        key = override.get_key_element()
        if not override.is_sweep_override():
            fixed[key] = override.input_line
            space.pop(key, None)
            continue
        fixed.pop(key, None)
        space[key] = distribution(key, override.value())
    return space, list(fixed.values())


def distribution(key: str, sweep: Any) -> BaseDistribution:
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, RangeSweep):
        values = list(np.arange(sweep.start, sweep.stop, sweep.step).tolist())
        if all(isinstance(v, int) for v in values) and len(values) > 1:
            return IntDistribution(values[0], values[-1], step=int(sweep.step))
        return CategoricalDistribution(values)
    if isinstance(sweep, IntervalSweep):
        log_scale = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log_scale)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log_scale)
    raise ConfigError(
        f"{key}: {type(sweep).__name__} is not a search space Optuna can sample: use"
        " choice(...), range(...) or interval(...)."
    )


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in params.items()]


# ---- this sweep among the study's -------------------------------------------------------


def this_sweep(sweep_dir: Path, identity: list[str], trials_now: int) -> dict[str, Any]:
    """This sweep's id and the study's trial count when it first started: those a rerun
    of the same sweep (same command, same folder) left, otherwise new ones."""
    try:
        kept = json.loads((sweep_dir / SWEEP_FILE).read_text())
        if kept["identity"] == identity:
            log.info("resuming Optuna sweep %s", kept["id"])
            return kept
    except (OSError, ValueError, KeyError, TypeError):
        pass
    kept = {"id": uuid.uuid4().hex, "identity": identity, "trials_before": trials_now}
    write_json(sweep_dir / SWEEP_FILE, kept)
    return kept


def seed_parts(
    sweep_dir: Path, kept: Mapping[str, Any], trials: Sequence[optuna.trial.FrozenTrial]
) -> list[int]:
    """What makes each sweep of a study, and each rerun of one, draw its own proposals
    from the same seed: its folder, how many trials the study held when it started and
    how many it has asked for since (``trials``: the study's). Two sweeps seeded alike
    would propose the same trials, and a rerun would repeat its own."""
    asked = sum(t.user_attrs.get(SWEEP_ATTR) == kept["id"] for t in trials)
    return [zlib.crc32(str(sweep_dir.resolve()).encode()), int(kept["trials_before"]), asked]


# ---- the search -------------------------------------------------------------------------


@dataclass
class Search:
    """One sweep of a study: asks for trials, launches them budget by budget, reports,
    prunes, tells, and tags the trials' runs."""

    study: optuna.Study
    settings: Settings
    launcher: RungLauncher
    sweep_id: str
    store: Store | None = None
    # The budgets each trial of this sweep has reported, as the study holds them.
    reported: dict[int, set[int]] = field(default_factory=dict)

    def run(self, space: dict[str, BaseDistribution], fixed: list[str]) -> list[str]:
        """Run this sweep to ``n_trials`` finished trials; the keys of its runs."""
        keys = list(dict.fromkeys(records.read_jobs(self.launcher.sweep_dir)))
        mine = [t for t in self.study.get_trials(deepcopy=False) if self._is_mine(t)]
        self.reported = {t.number: set(t.intermediate_values) for t in mine}
        done = sum(t.state in FINISHED_STATES for t in mine)
        # The trials an interrupted run of this sweep left running, to finish now.
        left = [Trial(self.study, t._trial_id) for t in mine if t.state == TrialState.RUNNING]
        if done or left:
            log.info("resuming: %d trials finished, %d to finish", done, len(left))
        wanted = self.settings.n_trials - done
        while wanted > 0:
            batch = left[: self.settings.n_jobs]
            left = left[len(batch) :]
            while len(batch) < min(self.settings.n_jobs, wanted):
                trial = self.study.ask(space)
                trial.set_user_attr(SWEEP_ATTR, self.sweep_id)
                batch.append(trial)
            keys += self.run_batch(batch, fixed, keys)
            wanted -= len(batch)
        return list(dict.fromkeys(keys))

    def _is_mine(self, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.user_attrs.get(SWEEP_ATTR) == self.sweep_id

    def budgets(self) -> list[int | None]:
        return [*sorted(self.settings.budgets)] if self.settings.budgets else [None]

    def run_batch(self, batch: list[Trial], fixed: list[str], keys: list[str]) -> list[str]:
        """Take a batch of trials through the budgets; the keys of the runs launched."""
        active = {t.number: t for t in batch}
        configuration = {t.number: [*fixed, *trial_overrides(t.params)] for t in batch}
        runs: dict[int, list[dict[str, Any]]] = {t.number: [] for t in batch}
        launched: list[str] = []
        budgets = self.budgets()
        for rung, budget in enumerate(budgets):
            top = rung == len(budgets) - 1
            numbers = list(active)
            steps = [
                Step(configuration[n], budget, (runs[n] or [None])[-1], keep=not top)
                for n in numbers
            ]
            launched += [s.key for s in steps]
            records.write_jobs(self.launcher.sweep_dir, list(dict.fromkeys([*keys, *launched])))
            for number, record in zip(numbers, self.launcher.run(steps)):
                outcome = self.decide(active[number], record, budget, top)
                if outcome != "went on":
                    del active[number]
                self.launcher.annotate(record, trial=number, outcome=f"trial {number}: {outcome}")
                runs[number].append(record)
            if not active:
                break
        self.tag(runs)
        return launched

    def decide(self, trial: Trial, record: dict[str, Any], budget: int | None, top: bool) -> str:
        """Report ``record`` to ``trial`` and end it (complete, pruned, failed) or let it
        go on; what happened, in words."""
        if not records.is_finished(record):
            self.study.tell(trial, state=TrialState.FAIL)
            return f"failed ({record.get('error')})"
        value = record.get("validation_accuracy")
        if value is None:
            value = record["test_accuracy"]
        trial.set_user_attr("mlflow_run_id", record.get("run_id"))
        reported = self.reported.setdefault(trial.number, set())
        if top:
            self.study.tell(trial, value)
            return "complete"
        if budget in reported and max(reported) > budget:  # type: ignore[operator]
            return "went on"  # decided before this sweep was interrupted
        if budget not in reported:
            trial.report(value, budget)  # type: ignore[arg-type]
            reported.add(budget)  # type: ignore[arg-type]
        if trial.should_prune():
            self.study.tell(trial, state=TrialState.PRUNED)
            return f"pruned at {budget} iterations"
        return "went on"

    def tag(self, runs: dict[int, list[dict[str, Any]]]) -> None:
        """Tag every run of these trials with its trial and how the trial ended."""
        states = {t.number: t.state.name for t in self.study.get_trials(deepcopy=False)}
        tagged = [
            (
                record,
                {
                    "optuna.study": self.settings.study_name,
                    "optuna.trial": str(number),
                    "optuna.trial_state": states[number],
                },
            )
            for number, reached in runs.items()
            for record in reached
        ]
        tag_runs(self.store, tagged)


def check_budgets(settings: Settings, space: Mapping[str, Any], fixed: list[str]) -> None:
    """Refuse, in one line, budgets the search cannot use."""
    if not settings.budgets:
        return
    if any(b < 1 for b in settings.budgets):
        raise ConfigError(
            f"hydra.sweeper.budgets={list(settings.budgets)} is not allowed: whole numbers >= 1."
        )
    if BUDGET_KEY in space or any(job_key([o]).startswith(f"{BUDGET_KEY}=") for o in fixed):
        raise ConfigError(
            f"{BUDGET_KEY} is not allowed among the search's params or overrides when"
            " hydra.sweeper.budgets is set: the budgets are the trials' iterations."
        )
