"""Successive halving over exact budgets (``sweep=halving``).

Every configuration of the space trains to the first rung (the smallest value of
``train.iterations``); the best ``1/eta`` by validation accuracy go on, from where they
stopped, to the next rung; and so on to the largest budget. Going on is exact: a
configuration's run at a rung is bit for bit a standalone run of that many iterations
(:mod:`~digits_nn.sweeps.continuation`). Every (configuration, rung) reached is one child
run, and the summary ranks them all on validation accuracy, as the exhaustive sweep of
the same space ranks its runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from digits_nn.errors import ConfigError
from digits_nn.sweeps import plan, records
from digits_nn.sweeps.protocol import job_key
from digits_nn.sweeps.rungs import RungLauncher, Step, tag_runs
from digits_nn.tracking.store import Store

log = logging.getLogger(__name__)

# What the launching side writes into each record, and tags the record's run with.
RUNG, OUTCOME = "rung", "outcome"


@dataclass(frozen=True)
class Space:
    """The configurations (overrides without a budget, in the grid's order) and the
    rungs (the budgets, smallest first)."""

    configurations: list[list[str]]
    rungs: list[int]


def space_of(jobs: Sequence[Sequence[str]]) -> Space:
    """The space of a grid whose every job sets ``train.iterations``: one configuration
    per combination of the other keys, the budgets as rungs."""
    configurations: dict[str, list[str]] = {}
    budgets: set[int] = set()
    for overrides in jobs:
        budget = plan.budget_of(overrides)
        if budget is None:
            raise ConfigError(
                "sweep=halving needs its budgets: list the rungs as whole numbers in"
                " hydra.sweeper.params['train.iterations'], e.g. 500,1500,4500."
            )
        budgets.add(budget)
        rest = [o for o in overrides if plan.budget_of([o]) is None]
        configurations.setdefault(job_key(rest), rest)
    return Space(list(configurations.values()), sorted(budgets))


def promoted(reached: list[dict[str, Any]], eta: int) -> list[dict[str, Any]]:
    """The records that go on to the next rung: the best ``max(1, n // eta)`` of the
    ``n`` that reached this one, by validation accuracy, a tie going to the lower
    validation cost, then to the earlier in the grid. Failed records never go on."""
    finished = [r for r in reached if records.is_finished(r)]
    ranked = sorted(
        enumerate(finished),
        key=lambda pair: (
            -pair[1]["validation_accuracy"],
            pair[1].get("validation_cost", float("inf")),
            pair[0],
        ),
    )
    return [record for _, record in ranked[: max(1, len(reached) // eta)]]


def check_budgets(space: Space, eta: int) -> None:
    """Refuse, in one line, a space halving cannot run."""
    if not isinstance(eta, int) or isinstance(eta, bool) or eta < 2:
        raise ConfigError(
            f"hydra.sweeper.eta={eta!r} is not allowed: a whole number >= 2, or null for"
            " the exhaustive sweep."
        )
    if len(space.rungs) < 2:
        raise ConfigError(
            f"sweep=halving with the single budget {space.rungs}: list at least two rungs"
            " in hydra.sweeper.params['train.iterations']."
        )


def check_configurations(space: Space, base: Mapping[str, Any]) -> None:
    """Refuse, in one line and before any training, configurations halving cannot rank
    or go on from: without validation rows, or with early stopping. ``base`` holds the
    sweep's own values of ``train.validation_size`` and ``train.patience``."""
    for configuration in space.configurations:
        values = dict(base) | dict(override_value(o) for o in configuration)
        if values.get("train.patience") not in (None, "null"):
            raise ConfigError(
                f"train.patience={values['train.patience']} is not allowed with"
                " sweep=halving: null. Early stopping restores the best weights at each"
                " run's end, so a later rung cannot go on from it."
            )
        if float(values.get("train.validation_size") or 0.0) == 0.0:
            raise ConfigError(
                "sweep=halving ranks configurations on validation rows: set"
                " train.validation_size > 0 (the preset holds out 0.15 of the training rows)."
            )


def override_value(override: str) -> tuple[str, str | None]:
    """The key an override sets and its value; None for a deletion without a value
    (``~train.patience``), which leaves the key unset."""
    key, has_value, value = override.lstrip("+~").partition("=")
    return key, value if has_value else None


def run(launcher: RungLauncher, space: Space, eta: int, store: Store | None) -> list[str]:
    """Successive halving over ``space``; the keys of every (configuration, rung)
    reached, rung by rung, as the summary lists them."""
    check_budgets(space, eta)
    survivors: list[tuple[list[str], dict[str, Any] | None]] = [
        (c, None) for c in space.configurations
    ]
    keys: list[str] = []
    for rung, budget in enumerate(space.rungs):
        top = rung == len(space.rungs) - 1
        steps = [Step(c, budget, earlier, keep=not top) for c, earlier in survivors]
        log.info("rung %d: %d configurations to %d iterations", rung, len(steps), budget)
        keys += [s.key for s in steps]
        records.write_jobs(launcher.sweep_dir, keys)
        reached = launcher.run(steps)
        _missing_validation(reached)
        chosen = [] if top else promoted(reached, eta)
        chosen_keys = {r["key"] for r in chosen}
        tagged = []
        for record in reached:
            outcome = outcome_of(record, rung, budget, top, record["key"] in chosen_keys)
            launcher.annotate(record, **{RUNG: rung, OUTCOME: outcome})
            tagged.append((record, {"halving.rung": str(rung), "halving.outcome": outcome}))
        tag_runs(store, tagged)
        by_key = {s.key: s.configuration for s in steps}
        survivors = [(by_key[r["key"]], r) for r in chosen]
    return keys


def outcome_of(record: dict[str, Any], rung: int, budget: int, top: bool, chosen: bool) -> str:
    if not records.is_finished(record):
        return f"failed at rung {rung}"
    if top:
        return "reached the top rung"
    return f"promoted from rung {rung}" if chosen else f"stopped at rung {rung} ({budget} it)"


def _missing_validation(reached: list[dict[str, Any]]) -> None:
    if any(records.is_finished(r) and r.get("validation_accuracy") is None for r in reached):
        raise ConfigError(
            "sweep=halving ranks configurations on validation rows: set"
            " train.validation_size > 0 (the preset holds out 0.15 of the training rows)."
        )


def describe(rows: list[dict[str, Any]]) -> list[str]:
    """The summary's paragraph on the rungs: how many configurations reached each one,
    how many stopped there, and which reached the top; nothing for another sweep."""
    rungs = sorted({r[RUNG] for r in rows if RUNG in r})
    if not rungs:
        return []
    lines = ["Successive halving, rung by rung:", "", "| rung | budget | reached | stopped |"]
    lines.append("|---|---|---|---|")
    for rung in rungs:
        at = [r for r in rows if r.get(RUNG) == rung]
        budget = plan.budget_of(at[0].get("overrides") or []) or ""
        stopped = sum(1 for r in at if str(r.get(OUTCOME, "")).startswith("stopped"))
        lines.append(f"| {rung} | {budget} | {len(at)} | {stopped} |")
    top = [r["job"] for r in rows if r.get(OUTCOME) == "reached the top rung"]
    lines += ["", f"Reached the top rung: {', '.join(top) or 'none'}."]
    return ["\n".join(lines)]
