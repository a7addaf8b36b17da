"""The champion gate: the rows both models are evaluated on, the thresholds as MLflow's,
the one line of its verdict; then, against a real SQLite store holding two tiny
registered versions, each evaluation, the promotion, and the gate's every outcome.
Through ``python -m digits_nn.promote`` and a served champion, it is
tests/e2e/test_champion_gate.py."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from digits_nn import config
from digits_nn.config import PromoteConfig, TrackingConfig, parse
from digits_nn.data import steps
from digits_nn.data.digits import PIXEL_COLUMNS
from digits_nn.errors import RegistryError
from digits_nn.pipeline import app, provenance
from digits_nn.pipeline.prepared import prepare
from digits_nn.sweeps import champion, registry
from digits_nn.sweeps.champion import Contest, Rows, Verdict
from digits_nn.tracking import runs
from digits_nn.tracking.store import Store, open_store


def version(
    number: int, seed: int = 0, md5: str | None = None, test_size: float = 0.4
) -> SimpleNamespace:
    """A registry version as a validated sweep tags it."""
    if md5 is None:
        cfg = parse({"seed": seed, "data": {"test_size": test_size}})
        md5 = provenance.split_md5(prepare(cfg).split)
    tags = {"param.seed": str(seed), "param.data.test_size": str(test_size), "data_md5": md5}
    return SimpleNamespace(version=number, tags=tags, aliases=[])


def test_one_split_gives_its_test_rows_as_the_raw_pixels_a_user_has() -> None:
    rows = champion.gate_rows([version(2), version(1)])
    digits = steps.load_digits()
    split = steps.split(digits.X, digits.y, 0.4, 0)
    order = np.lexsort(split.X_test.T)  # the same rows, whatever their order
    assert np.array_equal(rows.pixels[np.lexsort(rows.pixels.T)], split.X_test[order])
    assert rows.described.startswith("the 719 test rows of data_md5 ")
    assert rows.described.endswith("(seed 0, test_size 0.4)")


def test_versions_of_two_splits_are_compared_on_the_test_rows_they_share() -> None:
    rows = champion.gate_rows([version(2, seed=1), version(1, seed=0)])
    digits = steps.load_digits()
    index = np.arange(len(digits.y))
    tested = [set(steps.split(index, digits.y, 0.4, s).X_test.tolist()) for s in (0, 1)]
    common = sorted(tested[0] & tested[1])
    assert np.array_equal(rows.labels, digits.y[common]) and 200 < len(common) < 380
    assert rows.described.startswith(f"the {len(common)} rows in the test rows of both")
    assert "(seed 1, test_size 0.4) and data_md5" in rows.described


def test_a_version_whose_rows_cannot_be_rebuilt_is_refused_in_one_line() -> None:
    rebuilt = version(1).tags["data_md5"]
    with pytest.raises(RegistryError) as moved:
        champion.gate_rows([version(3, md5="0" * 32)])
    assert str(moved.value) == (
        f"digits-nn v3 was trained on data_md5 {'0' * 32}, but seed 0 and test_size 0.4 give"
        f" {rebuilt} here (other data or scaling): the rows it never saw cannot be rebuilt."
    )
    untagged = SimpleNamespace(version=4, tags={}, aliases=[])
    with pytest.raises(RegistryError) as unknown:
        champion.gate_rows([untagged])
    assert str(unknown.value) == (
        "digits-nn v4 has no param.seed, param.data.test_size and data_md5 tags: the rows it"
        " was tested on are unknown (register it from a sweep)."
    )


def test_versions_whose_test_rows_share_no_row_are_refused_in_one_line() -> None:
    # Seeds 0 and 1 draw 18 test rows each (1%) with none in common.
    apart = [version(2, seed=1, test_size=0.01), version(1, seed=0, test_size=0.01)]
    with pytest.raises(RegistryError) as refused:
        champion.gate_rows(apart)
    assert str(refused.value) == (
        "the versions' test rows have no row in common: nothing to compare."
    )


def test_without_a_challenger_the_gate_says_how_to_get_one(store) -> None:
    with pytest.raises(RegistryError) as missing:
        champion.gate(store, PromoteConfig())
    assert str(missing.value) == (
        f"no digits-nn@challenger in {store.uri}: register one with a validated sweep"
        " (e.g. `python pipelines/run.py sweep=grid_validated`)."
    )


ROWS = Rows(np.zeros((3, 64)), np.arange(3), "the 3 test rows of data_md5 abc (seed 0)")


@pytest.mark.parametrize(
    ("gate", "against", "absolute", "relative"),
    [
        (PromoteConfig(), True, None, 0.0),  # at least as accurate: >= with no margin
        (PromoteConfig(min_gain=0.005), True, 0.005, None),
        (PromoteConfig(min_gain=0.005, min_accuracy=0.9), False, None, None),  # floor only
    ],
)
def test_the_thresholds_are_mlflows(gate, against, absolute, relative) -> None:
    champion_version = version(1) if against else None
    contest = Contest(version(2), champion_version, ROWS, gate)
    [(metric, threshold)] = champion.thresholds_of(contest).items()
    assert metric == "accuracy_score" and threshold.greater_is_better
    assert threshold.threshold == gate.min_accuracy
    assert (threshold.min_absolute_change, threshold.min_relative_change) == (absolute, relative)


def test_mlflow_decides_with_the_thresholds_as_the_gate_words_them() -> None:
    """Equal figures pass a margin of 0 and fail a margin above 0; the floor applies with
    no champion."""
    figures = {"2": 0.95, "1": 0.95}

    def decided(gate: PromoteConfig, with_champion: bool = True) -> bool:
        contest = Contest(version(2), version(1) if with_champion else None, ROWS, gate)
        results = {v: SimpleNamespace(metrics={"accuracy_score": f}) for v, f in figures.items()}
        return champion.passes(contest, results)

    assert decided(PromoteConfig())
    assert not decided(PromoteConfig(min_gain=0.001))
    assert decided(PromoteConfig(min_accuracy=0.95), with_champion=False)
    assert not decided(PromoteConfig(min_accuracy=0.951), with_champion=False)


@pytest.mark.parametrize(
    ("champion", "settings", "promoted", "accuracies", "expected"),
    [
        (
            5,
            PromoteConfig(min_gain=0.005),
            False,
            {"7": 0.9430, "5": 0.9513},
            "refused: digits-nn v7 stays the challenger: accuracy 0.9430, needed >= 0.9563"
            " (champion v5's 0.9513 + promote.min_gain 0.005; promote.min_accuracy 0), on"
            " the 3 test rows of data_md5 abc (seed 0); the champion stays v5.",
        ),
        (
            None,
            PromoteConfig(min_accuracy=0.9),
            True,
            {"7": 0.95},
            "promoted: digits-nn v7 is the first champion: accuracy 0.9500, needed >= 0.9000"
            " (promote.min_accuracy 0.9; no champion yet), on the 3 test rows of data_md5 abc"
            " (seed 0).",
        ),
        (
            5,
            PromoteConfig(),
            True,
            {"7": 0.96, "5": 0.95},
            "promoted: digits-nn v7 is the champion: accuracy 0.9600, needed >= 0.9500"
            " (champion v5's 0.9500 + promote.min_gain 0; promote.min_accuracy 0), on the 3"
            " test rows of data_md5 abc (seed 0).",
        ),
        (
            None,
            PromoteConfig(min_accuracy=0.9),
            False,
            {"7": 0.85},
            "refused: digits-nn v7 stays the challenger: accuracy 0.8500, needed >= 0.9000"
            " (promote.min_accuracy 0.9; no champion yet), on the 3 test rows of data_md5 abc"
            " (seed 0); the champion stays none.",
        ),
    ],
    ids=["refused-against-a-champion", "first-champion", "replaces-a-champion", "refused-first"],
)
def test_the_verdict_is_one_line_with_both_figures_the_threshold_and_the_champion(
    champion: int | None,
    settings: PromoteConfig,
    promoted: bool,
    accuracies: dict[str, float],
    expected: str,
) -> None:
    contest = Contest(version(7), version(champion) if champion else None, ROWS, settings)
    assert contest.line(promoted, accuracies) == expected


# ---- against a real store: two registered versions, one weak and one strong ---------------

NAME = "digits-nn"
GATE_TAGS = ("validation_status", "gate.")


@dataclass(frozen=True)
class Registered:
    """A store holding two versions of ``digits-nn`` trained on the same split."""

    store: Store
    weak: str  # trained 2 iterations: about one digit in ten
    strong: str  # trained 300 iterations: about nine in ten

    def accuracy(self, version: str) -> float:
        """The version's test accuracy as it was registered: on the rows the gate uses."""
        return float(self.store.client.get_model_version(NAME, version).tags["test_accuracy"])

    def rows(self) -> str:
        md5 = self.store.client.get_model_version(NAME, self.weak).tags["data_md5"]
        return f"the 719 test rows of data_md5 {md5} (seed 0, test_size 0.4)"


def register(store: Store, folder: Path, iterations: int) -> str:
    """A run of ``iterations`` registered as the challenger, as a validated sweep
    registers its best job; its version."""
    cfg = parse({"train": {"alpha": 2.5, "iterations": iterations, "validation_size": 0.2}})
    cfg.tracking.uri = store.uri
    overrides = [f"train.iterations={iterations}"]
    outcome = app.run(cfg, app.RunPlace(folder, overrides, pictures=False))
    best = {
        "run_id": outcome.run_id,
        "params": config.flatten(cfg),
        "overrides": overrides,
        "test_accuracy": outcome.test_accuracy,
        "validation_accuracy": outcome.validation_accuracy,
    }
    return registry.register_best(store, best)


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Registered:
    """The module's store (a copy of the migrated one, as ``store_root`` makes) and its
    two versions."""
    # Registering costs seconds a version: the module's tests share two, and the
    # ``versions`` fixture puts the registry back as it was before each test.
    root = tmp_path_factory.mktemp("registry")
    shutil.copyfile(migrated_store, root / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        store = open_store(TrackingConfig(), root=root)
        assert store is not None
        weak = register(store, root / "weak", 2)
        strong = register(store, root / "strong", 300)
    return Registered(store, weak, strong)


@pytest.fixture
def versions(registered: Registered, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registered]:
    """The two versions with no champion and none of the gate's tags."""
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = registered.store.client
    for version in (registered.weak, registered.strong):
        for key in client.get_model_version(NAME, version).tags:
            if key.startswith(GATE_TAGS):
                client.delete_model_version_tag(NAME, version, key)
    with contextlib.suppress(MlflowException):
        client.delete_registered_model_alias(NAME, champion.CHAMPION)
    yield registered
    # MLflow's global state is the next test's too: the gate must leave none behind.
    assert not mlflow.is_tracking_uri_set() and mlflow.active_run() is None


def arrange(store: Store, challenger: str, champion_: str | None = None) -> None:
    store.client.set_registered_model_alias(NAME, "challenger", challenger)
    if champion_ is not None:
        store.client.set_registered_model_alias(NAME, "champion", champion_)


def registry_state(store: Store) -> list[tuple[str, list[str], dict[str, str]]]:
    """Every version with its aliases and tags."""
    found = store.client.search_model_versions(f"name = '{NAME}'")
    current = [store.client.get_model_version(NAME, v.version) for v in found]
    return sorted((str(v.version), sorted(v.aliases), dict(v.tags)) for v in current)


def gate_tags(store: Store, version: str) -> dict[str, str]:
    tags = store.client.get_model_version(NAME, version).tags
    return {k: v for k, v in tags.items() if k.startswith(GATE_TAGS)}


def aliases(store: Store) -> dict[str, str]:
    """alias -> version."""
    found = store.client.search_model_versions(f"name = '{NAME}'")
    current = [store.client.get_model_version(NAME, v.version) for v in found]
    return {alias: str(v.version) for v in current for alias in v.aliases}


def runs_since(store: Store, before: set[str]) -> list[Any]:
    """The runs created since ``before`` (run ids) was taken, oldest first."""
    found = store.client.search_runs([store.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in found if r.info.run_id not in before]


def run_ids(store: Store) -> set[str]:
    return {r.info.run_id for r in store.client.search_runs([store.experiment_id])}


# -- evaluate: one version on the rows, in a child run of the gate's run


def test_evaluate_scores_each_registered_version_in_a_child_run_of_the_gates_run(
    versions: Registered,
) -> None:
    store = versions.store
    arrange(store, challenger=versions.strong)
    challenger = store.client.get_model_version_by_alias(NAME, "challenger")
    other = store.client.get_model_version(NAME, versions.weak)
    rows = champion.gate_rows([challenger])
    with runs.run(store, name="a gate") as gate_run:
        strong = champion.evaluate(gate_run, challenger, rows)
        weak = champion.evaluate(gate_run, other, rows)
    # Each figure is its own version's: the accuracy it was registered with, on these rows.
    assert strong.metrics["accuracy_score"] == pytest.approx(
        versions.accuracy(versions.strong), abs=1e-6
    )
    assert weak.metrics["accuracy_score"] == pytest.approx(
        versions.accuracy(versions.weak), abs=1e-6
    )
    assert weak.metrics["accuracy_score"] < 0.3 < 0.8 < strong.metrics["accuracy_score"]

    children = store.client.search_runs(
        [store.experiment_id], f"tags.mlflow.parentRunId = '{gate_run.run_id}'"
    )
    found = {c.info.run_name: c for c in children}
    assert sorted(found) == [
        f"evaluate digits-nn v{versions.weak} (champion)",
        f"evaluate digits-nn v{versions.strong} (challenger)",
    ]
    for child, result, role in [
        (found[f"evaluate digits-nn v{versions.strong} (challenger)"], strong, "challenger"),
        (found[f"evaluate digits-nn v{versions.weak} (champion)"], weak, "champion"),
    ]:
        assert child.data.tags["gate.role"] == role and child.info.status == "FINISHED"
        assert child.data.metrics["accuracy_score"] == result.metrics["accuracy_score"]
        # The rows as a user sends them to the served model, with the true digit beside.
        [given] = [item.dataset for item in child.inputs.dataset_inputs]
        assert given.name == "digits-gate"
        assert json.loads(given.profile) == {"num_rows": 719, "num_elements": 719 * 65}
        columns = [c["name"] for c in json.loads(given.schema)["mlflow_colspec"]]
        assert columns == [*PIXEL_COLUMNS, "label"]
        # Explanations (SHAP) are off: they would cost more than the evaluation.
        artifacts = [a.path for a in store.client.list_artifacts(child.info.run_id)]
        assert not [a for a in artifacts if "shap" in a], artifacts


# -- promote: the gate's figures on the challenger's version, and the champion moved to it

TWO_ROWS = Rows(np.zeros((2, 64)), np.arange(2), "the 2 test rows of data_md5 abc (seed 0)")


def test_promote_tags_the_challenger_with_both_figures_and_makes_it_the_champion(
    versions: Registered,
) -> None:
    store = versions.store
    arrange(store, challenger=versions.strong, champion_=versions.weak)
    challenger = store.client.get_model_version(NAME, versions.strong)
    current = store.client.get_model_version(NAME, versions.weak)
    thresholds = PromoteConfig(min_gain=0.0125, min_accuracy=0.5)
    contest = Contest(challenger, current, TWO_ROWS, thresholds)
    figures = {versions.strong: 0.91234567, versions.weak: 0.0987654321}
    champion.promote(store, contest, Verdict(True, "promoted", figures), "gate-run-1")
    assert gate_tags(store, versions.strong) == {
        "validation_status": "approved",
        "gate.accuracy": "0.912346",
        "gate.champion_accuracy": "0.098765",
        "gate.previous_champion": versions.weak,
        "gate.min_gain": "0.0125",
        "gate.min_accuracy": "0.5",
        "gate.rows": "the 2 test rows of data_md5 abc (seed 0)",
        "gate.run_id": "gate-run-1",
    }
    assert gate_tags(store, versions.weak) == {}  # the champion it replaced keeps its own
    assert aliases(store) == {"challenger": versions.strong, "champion": versions.strong}


def test_the_first_champion_is_tagged_with_no_champion_before_it(versions: Registered) -> None:
    store = versions.store
    arrange(store, challenger=versions.weak)
    challenger = store.client.get_model_version(NAME, versions.weak)
    contest = Contest(challenger, None, TWO_ROWS, PromoteConfig())
    champion.promote(store, contest, Verdict(True, "promoted", {versions.weak: 0.1}), "gate-run-2")
    assert gate_tags(store, versions.weak) == {
        "validation_status": "approved",
        "gate.accuracy": "0.100000",
        "gate.champion_accuracy": "none",
        "gate.previous_champion": "none",
        "gate.min_gain": "0",
        "gate.min_accuracy": "0",
        "gate.rows": "the 2 test rows of data_md5 abc (seed 0)",
        "gate.run_id": "gate-run-2",
    }
    assert gate_tags(store, versions.strong) == {}
    assert aliases(store) == {"challenger": versions.weak, "champion": versions.weak}


# -- the gate: evaluate both on the same rows, then promote or refuse


def gate_run(store: Store, before: set[str], title: str, roles: list[str]) -> Any:
    """The one gate run created since ``before``, FINISHED, with a FINISHED child run per
    role evaluated; the gate's run."""
    created = runs_since(store, before)
    [parent] = [r for r in created if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_name == title and parent.info.status == "FINISHED"
    children = [r for r in created if r is not parent]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted(r.data.tags["gate.role"] for r in children) == sorted(roles)
    assert {r.info.status for r in children} == {"FINISHED"}
    return parent


def test_with_no_champion_the_challenger_becomes_the_first_champion(
    versions: Registered,
) -> None:
    store, weak = versions.store, versions.weak
    arrange(store, challenger=weak)
    before = run_ids(store)
    verdict = champion.gate(store, PromoteConfig())
    assert verdict.approved
    assert verdict.accuracies == {weak: pytest.approx(versions.accuracy(weak), abs=1e-6)}
    mine = verdict.accuracies[weak]
    assert verdict.line == (
        f"promoted: digits-nn v{weak} is the first champion: accuracy {mine:.4f}, needed"
        f" >= 0.0000 (promote.min_accuracy 0; no champion yet), on {versions.rows()}."
    )
    run = gate_run(store, before, f"champion gate: v{weak} (no champion yet)", ["challenger"])
    assert run.data.tags["gate.decision"] == "approved"
    assert run.data.tags["gate.verdict"] == verdict.line
    assert run.data.tags["gate.rows"] == versions.rows()
    assert aliases(store) == {"challenger": weak, "champion": weak}
    tags = gate_tags(store, weak)
    assert tags["validation_status"] == "approved" and tags["gate.accuracy"] == f"{mine:.6f}"
    assert tags["gate.previous_champion"] == tags["gate.champion_accuracy"] == "none"
    assert tags["gate.run_id"] == run.info.run_id and tags["gate.rows"] == versions.rows()


def test_with_no_champion_a_challenger_below_the_floor_is_refused_and_nothing_changes(
    versions: Registered,
) -> None:
    store, weak = versions.store, versions.weak
    arrange(store, challenger=weak)
    state = registry_state(store)
    before = run_ids(store)
    verdict = champion.gate(store, PromoteConfig(min_accuracy=0.5))
    assert not verdict.approved
    mine = verdict.accuracies[weak]
    assert mine == pytest.approx(versions.accuracy(weak), abs=1e-6)
    assert verdict.line == (
        f"refused: digits-nn v{weak} stays the challenger: accuracy {mine:.4f}, needed"
        f" >= 0.5000 (promote.min_accuracy 0.5; no champion yet), on {versions.rows()};"
        " the champion stays none."
    )
    run = gate_run(store, before, f"champion gate: v{weak} (no champion yet)", ["challenger"])
    assert run.data.tags["gate.decision"] == "refused"
    assert run.data.tags["gate.verdict"] == verdict.line
    assert registry_state(store) == state and "champion" not in aliases(store)


def test_a_more_accurate_challenger_replaces_the_champion(versions: Registered) -> None:
    store, weak, strong = versions.store, versions.weak, versions.strong
    arrange(store, challenger=strong, champion_=weak)
    before = run_ids(store)
    # A margin the strong version clears by far: the champion's figure plus the gain.
    verdict = champion.gate(store, PromoteConfig(min_gain=0.25))
    assert verdict.approved
    assert verdict.accuracies == {
        strong: pytest.approx(versions.accuracy(strong), abs=1e-6),
        weak: pytest.approx(versions.accuracy(weak), abs=1e-6),
    }
    mine, best = verdict.accuracies[strong], verdict.accuracies[weak]
    assert verdict.line == (
        f"promoted: digits-nn v{strong} is the champion: accuracy {mine:.4f}, needed"
        f" >= {best + 0.25:.4f} (champion v{weak}'s {best:.4f} + promote.min_gain 0.25;"
        f" promote.min_accuracy 0), on {versions.rows()}."
    )
    title = f"champion gate: v{strong} against v{weak}"
    run = gate_run(store, before, title, ["challenger", "champion"])
    assert run.data.tags["gate.decision"] == "approved"
    assert aliases(store) == {"challenger": strong, "champion": strong}
    assert gate_tags(store, strong) == {
        "validation_status": "approved",
        "gate.accuracy": f"{mine:.6f}",
        "gate.champion_accuracy": f"{best:.6f}",
        "gate.previous_champion": weak,
        "gate.min_gain": "0.25",
        "gate.min_accuracy": "0",
        "gate.rows": versions.rows(),
        "gate.run_id": run.info.run_id,
    }
    assert gate_tags(store, weak) == {}


def test_a_less_accurate_challenger_is_refused_in_one_line_and_nothing_changes(
    versions: Registered,
) -> None:
    store, weak, strong = versions.store, versions.weak, versions.strong
    arrange(store, challenger=weak, champion_=strong)
    state = registry_state(store)
    before = run_ids(store)
    verdict = champion.gate(store, PromoteConfig())
    assert not verdict.approved
    mine, best = verdict.accuracies[weak], verdict.accuracies[strong]
    assert mine == pytest.approx(versions.accuracy(weak), abs=1e-6)
    assert best == pytest.approx(versions.accuracy(strong), abs=1e-6)
    assert verdict.line == (
        f"refused: digits-nn v{weak} stays the challenger: accuracy {mine:.4f}, needed"
        f" >= {best:.4f} (champion v{strong}'s {best:.4f} + promote.min_gain 0;"
        f" promote.min_accuracy 0), on {versions.rows()}; the champion stays v{strong}."
    )
    assert "\n" not in verdict.line
    run = gate_run(
        store, before, f"champion gate: v{weak} against v{strong}", ["challenger", "champion"]
    )
    assert run.data.tags["gate.decision"] == "refused"
    assert run.data.tags["gate.verdict"] == verdict.line
    assert registry_state(store) == state
    assert aliases(store) == {"challenger": weak, "champion": strong}


def test_a_challenger_that_is_already_the_champion_is_nothing_to_do(versions: Registered) -> None:
    store, strong = versions.store, versions.strong
    arrange(store, challenger=strong, champion_=strong)
    state = registry_state(store)
    before = run_ids(store)
    verdict = champion.gate(store, PromoteConfig(min_accuracy=0.99))
    assert verdict == Verdict(
        True, f"digits-nn v{strong} is already the champion: nothing to do.", {}
    )
    assert registry_state(store) == state and runs_since(store, before) == []
