"""The launching side's plan: which jobs to launch, and in what order.

With shared budgets, configurations that differ only in ``train.iterations`` become one
launch trained to the largest budget; the launches with the most training go first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser

from digits_nn.config import DEFAULT_HIDDEN_SIZE
from digits_nn.data.digits import N_CLASSES
from digits_nn.sweeps.protocol import BUDGET_KEY, BUDGETS_ENV, job_key


def with_budget(overrides: Sequence[str], budget: int) -> list[str]:
    """The same configuration with ``train.iterations`` set to ``budget``."""
    budget_override = f"{BUDGET_KEY}={budget}"
    replaced = [budget_override if _key_of(o) == BUDGET_KEY else o for o in overrides]
    return replaced if budget_override in replaced else [*replaced, budget_override]


def budget_of(overrides: Sequence[str]) -> int | None:
    """The job's ``train.iterations`` override as a whole number, if it sets one."""
    for override in overrides:
        if _key_of(override) == BUDGET_KEY:
            try:
                return int(override.partition("=")[2])
            except ValueError:
                return None
    return None


def _key_of(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


@dataclass
class Launch:
    """One job to launch: the configurations it trains, the largest budget first."""

    members: list[list[str]]
    shared: list[int] = field(default_factory=list)  # the smaller budgets, if grouped

    @property
    def overrides(self) -> list[str]:
        """What the launcher gets: the job's own overrides, its folder, its budgets."""
        extra = [f"hydra.sweep.subdir='{job_key(self.members[0])}'"]
        if self.shared:
            budgets = ",".join(map(str, self.shared))
            extra.append(f"++hydra.job.env_set.{BUDGETS_ENV}='{budgets}'")
        return [*self.members[0], *extra]


def unique(jobs: list[list[str]]) -> list[list[str]]:
    """The jobs, each configuration once (``seed=0,0`` lists seed 0 twice: its two jobs
    would train into one folder), in the order first listed."""
    kept: dict[str, list[str]] = {}
    for overrides in jobs:
        kept.setdefault(job_key(overrides), overrides)
    return list(kept.values())


def plan(jobs: list[list[str]], done: set[str], share_budgets: bool) -> list[Launch]:
    """The launches that train every configuration whose key is not in ``done``.

    With ``share_budgets``, configurations that differ only in ``train.iterations``
    become one launch trained to the largest budget: every smaller budget is read from
    the same training on the way (the prefix of the longer run).
    """
    todo = [j for j in jobs if job_key(j) not in done]
    if not share_budgets:
        return [Launch([j]) for j in todo]
    groups: dict[str, list[list[str]]] = {}
    for overrides in todo:
        budget = budget_of(overrides)
        rest = [o for o in overrides if _key_of(o) != BUDGET_KEY] if budget else overrides
        # A configuration without a budget of its own is its own group.
        key = job_key(rest) if budget else "\0" + job_key(overrides)
        groups.setdefault(key, []).append(overrides)
    launches = []
    for members in groups.values():
        members = sorted(members, key=lambda o: -(budget_of(o) or 0))
        budgets = [budget_of(o) for o in members]
        if len(members) > 1 and len(set(budgets)) == len(budgets):
            launches.append(Launch(members, [b for b in budgets[1:] if b is not None]))
        else:
            launches += [Launch([m]) for m in members]
    return launches


# What a configuration's training costs grows with its iterations and, per iteration, with
# the units the activations pass through: the exp of the sigmoid over every hidden and
# output unit of every row dominates an iteration (docs/benchmarks.md, sections a and s).
# An ensemble trains each member, and augmentation adds rows, in proportion.
WORK_KEYS = (
    "train.iterations",
    "model.hidden_size",
    "model.hidden_sizes",
    "model.members",
    "data.augment.copies",
)


def work(overrides: Sequence[str], defaults: Mapping[str, Any]) -> float:
    """Iterations times hidden and output units, times members and rows per original
    row: how much training a configuration asks for, only to order the launches. A
    value it cannot read gives 0: that job fails at once, when it checks its config,
    and reports what is wrong."""
    values = dict(defaults)
    own = [o for o in overrides if _key_of(o) in WORK_KEYS]
    for override in OverridesParser.create().parse_overrides(own):
        values[override.key_or_group] = override.value()
    try:
        widths = values.get("model.hidden_sizes") or [
            values.get("model.hidden_size") or DEFAULT_HIDDEN_SIZE
        ]
        per_pass = float(values["train.iterations"]) * (sum(map(float, widths)) + N_CLASSES)
        copies = float(values.get("data.augment.copies") or 0)
        return per_pass * float(values.get("model.members") or 1) * (1 + copies)
    except (KeyError, TypeError, ValueError):
        return 0.0


def longest_first(launches: list[Launch], defaults: Mapping[str, Any]) -> list[Launch]:
    """The launches, the most training first (in their order among equals).

    Every launcher hands jobs to free workers in the order it gets them, so the sweep
    ends with whatever comes last, and a grid lists its largest values last: a long job
    launched last leaves the other workers idle while it runs. The longest first leaves
    short jobs to fill the end (the longest-processing-time rule).
    """
    return sorted(launches, key=lambda launch: -work(launch.members[0], defaults))
