"""The champion gate's parts: the rows both models are evaluated on, the thresholds as
MLflow's, and the one line of its verdict. The gate itself, against a real store and
through ``python -m digits_nn.promote``, is tests/e2e/test_champion_gate.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from digits_nn.config import PromoteConfig, parse
from digits_nn.data import steps
from digits_nn.errors import RegistryError
from digits_nn.pipeline import provenance
from digits_nn.pipeline.prepared import prepare
from digits_nn.sweeps import champion
from digits_nn.sweeps.champion import Contest, Rows


def version(number: int, seed: int = 0, md5: str | None = None) -> SimpleNamespace:
    """A registry version as a validated sweep tags it."""
    if md5 is None:
        md5 = provenance.split_md5(prepare(parse({"seed": seed})).split)
    tags = {"param.seed": str(seed), "param.data.test_size": "0.4", "data_md5": md5}
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


def test_a_version_whose_rows_cannot_be_rebuilt_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"v3 was trained on data_md5 0{32}, but seed 0"):
        champion.gate_rows([version(3, md5="0" * 32)])
    untagged = SimpleNamespace(version=4, tags={}, aliases=[])
    with pytest.raises(RegistryError, match=r"v4 has no param\.seed"):
        champion.gate_rows([untagged])


def test_without_a_challenger_the_gate_says_how_to_get_one(store) -> None:
    with pytest.raises(RegistryError, match=r"no digits-nn@challenger in .*sweep=grid_validated"):
        champion.gate(store, PromoteConfig())


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


def test_the_verdict_is_one_line_with_both_figures_and_the_threshold() -> None:
    contest = Contest(version(7), version(5), ROWS, PromoteConfig(min_gain=0.005))
    line = contest.line(False, {"7": 0.9430, "5": 0.9513})
    assert line == (
        "refused: digits-nn v7 stays the challenger: accuracy 0.9430, needed >= 0.9563"
        " (champion v5's 0.9513 + promote.min_gain 0.005; promote.min_accuracy 0), on the 3"
        " test rows of data_md5 abc (seed 0); the champion stays v5."
    )
    first = Contest(version(7), None, ROWS, PromoteConfig(min_accuracy=0.9))
    assert first.line(True, {"7": 0.95}) == (
        "promoted: digits-nn v7 is the first champion: accuracy 0.9500, needed >= 0.9000"
        " (promote.min_accuracy 0.9; no champion yet), on the 3 test rows of data_md5 abc"
        " (seed 0)."
    )
