"""The champion gate: ``digits-nn@challenger`` replaces ``digits-nn@champion`` only if it
does as well on rows neither model saw.

Both versions are evaluated with ``mlflow.models.evaluate`` on the same rows: the test
rows of the splits both were trained on (the split a version's ``data_md5`` names,
rebuilt from its seed and test share and checked against that md5), which neither model
trained on nor was chosen on (a sweep chooses on validation rows held out of the
training rows). ``mlflow.validate_evaluation_results`` then applies the thresholds of
``promote`` (:class:`~digits_nn.config.PromoteConfig`). Approved, the challenger's
version becomes ``champion`` and is tagged ``validation_status=approved`` with both
figures; refused, the registry is left as it was. With no champion yet, the challenger
needs only the floor (``promote.min_accuracy``) and becomes the first.

The evaluations are recorded as one MLflow run per gate, with a child run per model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from digits_nn.config import PromoteConfig
from digits_nn.errors import RegistryError
from digits_nn.sweeps.registry import ALIAS as CHALLENGER
from digits_nn.sweeps.registry import REGISTERED_MODEL
from digits_nn.tracking import runs
from digits_nn.tracking.redaction import redact
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store

log = logging.getLogger(__name__)

CHAMPION = "champion"
# The figure the gate compares: the default classifier evaluator's accuracy.
METRIC = "accuracy_score"
# The column of the evaluation rows that holds the true digit.
LABEL = "label"


@dataclass(frozen=True)
class Rows:
    """The rows a gate evaluates on, with what a person needs to know which they are."""

    pixels: np.ndarray  # (n, 64) raw 0..16 pixels, as the served model takes them
    labels: np.ndarray  # (n,) digits
    described: str  # e.g. "the 719 test rows of data_md5 3f2a... (seed 0, test_size 0.4)"


@dataclass(frozen=True)
class Contest:
    """The challenger against the champion (None before the first), on ``rows``."""

    challenger: Any  # mlflow ModelVersion
    champion: Any | None
    rows: Rows
    thresholds: PromoteConfig

    @property
    def versions(self) -> list[Any]:
        return [self.challenger] if self.champion is None else [self.challenger, self.champion]

    def needed(self, accuracies: dict[str, float]) -> str:
        """What the challenger needed, in the config's words and figures."""
        floor = f"promote.min_accuracy {self.thresholds.min_accuracy:g}"
        if self.champion is None:
            return f">= {self.thresholds.min_accuracy:.4f} ({floor}; no champion yet)"
        best = accuracies[str(self.champion.version)]
        gain = self.thresholds.min_gain
        least = max(best + gain, self.thresholds.min_accuracy)
        return (
            f">= {least:.4f} (champion v{self.champion.version}'s {best:.4f} + promote.min_gain"
            f" {gain:g}; {floor})"
        )

    def line(self, passed: bool, accuracies: dict[str, float]) -> str:
        """The one line that gives the verdict, both figures and the threshold."""
        mine = accuracies[str(self.challenger.version)]
        who = f"{REGISTERED_MODEL} v{self.challenger.version}"
        figures = f"accuracy {mine:.4f}, needed {self.needed(accuracies)}, on {self.rows.described}"
        if passed:
            role = "the first champion" if self.champion is None else "the champion"
            return f"promoted: {who} is {role}: {figures}."
        kept = f"v{self.champion.version}" if self.champion is not None else "none"
        return f"refused: {who} stays the challenger: {figures}; the champion stays {kept}."


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, and the one line that says so."""

    approved: bool
    line: str
    accuracies: dict[str, float]  # version -> accuracy on the rows


def gate(store: Store, thresholds: PromoteConfig) -> Verdict:
    """Evaluate challenger and champion on the same rows and move ``champion`` if the
    challenger passes ``thresholds``; the registry is unchanged otherwise."""
    challenger = _version(store, CHALLENGER)
    if challenger is None:
        raise RegistryError(
            f"no {REGISTERED_MODEL}@{CHALLENGER} in {redact(store.uri)}: register one with a"
            " validated sweep (e.g. `python pipelines/run.py sweep=grid_validated`)."
        )
    champion = _version(store, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        line = f"{REGISTERED_MODEL} v{challenger.version} is already the champion: nothing to do."
        return Verdict(True, line, {})
    contest = Contest(challenger, champion, gate_rows([challenger, champion]), thresholds)
    title = f"champion gate: v{challenger.version}" + (
        f" against v{champion.version}" if champion is not None else " (no champion yet)"
    )
    with runs.run(store, name=title, tags={"gate.rows": contest.rows.described}) as gate_run:
        results = {str(v.version): evaluate(gate_run, v, contest.rows) for v in contest.versions}
        accuracies = {version: float(r.metrics[METRIC]) for version, r in results.items()}
        passed = passes(contest, results)
        verdict = Verdict(passed, contest.line(passed, accuracies), accuracies)
        gate_run.tag("gate.decision", "approved" if passed else "refused")
        gate_run.tag("gate.verdict", verdict.line)
    if passed:
        promote(store, contest, verdict, gate_run.run_id)  # type: ignore[arg-type]
    return verdict


def _version(store: Store, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return store.client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException:  # no such model, or no such alias
        return None


def gate_rows(versions: list[Any]) -> Rows:
    """The test rows of every version's split (None: no version), as raw pixels and
    digits: rows none of them trained on or was chosen on.

    Each version's split is rebuilt from its seed and test share (its ``param.*`` tags)
    and must have the md5 its ``data_md5`` tag records; otherwise the rows it was tested
    on cannot be known, and the gate refuses to guess.
    """
    from digits_nn.data import steps

    digits = steps.load_digits()
    common: set[int] | None = None
    named = []
    for version in filter(None, versions):
        seed, test_size, md5 = _split_of(version)
        index = np.arange(len(digits.y))
        tested = set(steps.split(index, digits.y, test_size, seed).X_test.tolist())
        common = tested if common is None else common & tested
        named.append(f"data_md5 {md5} (seed {seed}, test_size {test_size:g})")
    chosen = np.array(sorted(common or ()), dtype=np.int64)
    if len(chosen) == 0:
        raise RegistryError("the versions' test rows have no row in common: nothing to compare.")
    splits = list(dict.fromkeys(named))
    kind = "test rows of" if len(splits) == 1 else "rows in the test rows of both"
    return Rows(
        digits.X[chosen], digits.y[chosen], f"the {len(chosen)} {kind} {' and '.join(splits)}"
    )


def _split_of(version: Any) -> tuple[int, float, str]:
    """A version's seed, test share and data md5, checked against the split they give."""
    from digits_nn import config
    from digits_nn.pipeline import provenance
    from digits_nn.pipeline.prepared import prepare

    tags = version.tags
    try:
        seed, test_size = int(tags["param.seed"]), float(tags["param.data.test_size"])
        md5 = tags["data_md5"]
    except (KeyError, ValueError):
        raise RegistryError(
            f"{REGISTERED_MODEL} v{version.version} has no param.seed, param.data.test_size"
            " and data_md5 tags: the rows it was tested on are unknown (register it from a"
            " sweep)."
        ) from None
    rebuilt = provenance.split_md5(
        prepare(config.parse({"seed": seed, "data": {"test_size": test_size}})).split
    )
    if rebuilt != md5:
        raise RegistryError(
            f"{REGISTERED_MODEL} v{version.version} was trained on data_md5 {md5}, but seed"
            f" {seed} and test_size {test_size:g} give {rebuilt} here (other data or scaling):"
            " the rows it never saw cannot be rebuilt."
        )
    return seed, test_size, md5


def evaluate(gate_run: RunLog, version: Any, rows: Rows) -> Any:
    """``mlflow.models.evaluate`` of one registered version on ``rows``, in a child run of
    the gate's run; its ``EvaluationResult``."""
    import mlflow
    import pandas as pd

    from digits_nn.data.digits import PIXEL_COLUMNS

    frame = pd.DataFrame(rows.pixels, columns=list(PIXEL_COLUMNS)).assign(**{LABEL: rows.labels})
    role = CHALLENGER if CHALLENGER in (version.aliases or []) else CHAMPION
    tags = {"mlflow.parentRunId": gate_run.run_id, "gate.role": role}
    name = f"evaluate {REGISTERED_MODEL} v{version.version} ({role})"
    with runs.run(gate_run.store, name=name, tags=tags) as child, runs.as_active(child):  # type: ignore[arg-type]
        dataset = mlflow.data.from_pandas(frame, targets=LABEL, name="digits-gate")
        return mlflow.models.evaluate(
            model=f"models:/{REGISTERED_MODEL}/{version.version}",
            data=dataset,
            model_type="classifier",
            evaluators=["default"],
            evaluator_config={"default": {"log_model_explainability": False}},
        )


def thresholds_of(contest: Contest) -> dict[str, Any]:
    """The config's thresholds as MLflow's: a floor, and a gain over the champion.

    MLflow requires a positive ``min_absolute_change``; a gain of 0 ("at least as
    accurate") is its ``min_relative_change`` of 0, which compares with ``>=`` too.
    """
    from mlflow.models import MetricThreshold

    gain: dict[str, float] = {}
    if contest.champion is not None:
        if contest.thresholds.min_gain > 0:
            gain = {"min_absolute_change": contest.thresholds.min_gain}
        else:
            gain = {"min_relative_change": 0.0}
    floor = contest.thresholds.min_accuracy
    return {METRIC: MetricThreshold(threshold=floor, greater_is_better=True, **gain)}


def passes(contest: Contest, results: dict[str, Any]) -> bool:
    """``mlflow.validate_evaluation_results`` of the challenger against the champion."""
    import mlflow
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    champion = contest.champion
    baseline = results[str(champion.version)] if champion is not None else None
    try:
        mlflow.validate_evaluation_results(
            thresholds_of(contest), results[str(contest.challenger.version)], baseline
        )
    except ModelValidationFailedException:
        return False
    return True


def promote(store: Store, contest: Contest, verdict: Verdict, gate_run_id: str) -> None:
    """Tag the challenger's version with the gate's figures, then move ``champion`` to it."""
    client = store.client
    version = str(contest.challenger.version)
    champion = contest.champion
    tags = {
        "validation_status": "approved",
        "gate.accuracy": f"{verdict.accuracies[version]:.6f}",
        "gate.champion_accuracy": (
            f"{verdict.accuracies[str(champion.version)]:.6f}" if champion else "none"
        ),
        "gate.previous_champion": str(champion.version) if champion else "none",
        "gate.min_gain": f"{contest.thresholds.min_gain:g}",
        "gate.min_accuracy": f"{contest.thresholds.min_accuracy:g}",
        "gate.rows": contest.rows.described,
        "gate.run_id": gate_run_id,
    }
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, key, value)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
