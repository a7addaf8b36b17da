"""Which rows play which part: checked against scikit-learn's own splitters, computed here
independently (train_test_split, RepeatedStratifiedKFold, StandardScaler)."""

import numpy as np
import pytest
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from digits_nn.data import rows, steps
from digits_nn.data.rows import Holdout


@pytest.fixture(scope="module")
def digits():
    return steps.load_digits()


@pytest.mark.parametrize("seed", [0, 7])
def test_without_folds_the_rows_are_train_test_splits(digits, seed) -> None:
    train, test = rows.partition(digits.y, Holdout(test_size=0.4), seed)
    X_train, X_test, y_train, y_test = train_test_split(
        digits.X, digits.y, test_size=0.4, random_state=seed
    )
    split = steps.take(digits.X, digits.y, (train, test))
    np.testing.assert_array_equal(split.X_train, X_train)
    np.testing.assert_array_equal(split.X_test, X_test)
    np.testing.assert_array_equal(split.y_train, y_train)
    np.testing.assert_array_equal(split.y_test, y_test)
    assert (len(train), len(test)) == (1078, 719)


def test_taking_the_partitions_rows_is_the_split_step(digits) -> None:
    """The stages split by row indices; the classic split.npz must stay byte-identical."""
    from digits_nn.data.artifacts import split_arrays
    from digits_nn.data.files import npz_bytes

    taken = steps.take(digits.X, digits.y, rows.partition(digits.y, Holdout(), 0))
    split = steps.split(digits.X, digits.y, 0.4, 0)
    assert npz_bytes(**split_arrays(taken)) == npz_bytes(**split_arrays(split))


@pytest.mark.parametrize(("folds", "repeats", "seed"), [(5, 3, 0), (3, 2, 11)])
def test_the_folds_are_repeated_stratified_k_folds(digits, folds, repeats, seed) -> None:
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    expected = list(splitter.split(digits.X, digits.y))
    for number, (train, test) in enumerate(expected):
        repeat, fold = divmod(number, folds)
        holdout = Holdout(folds=folds, fold=fold, repeat=repeat)
        got_train, got_test = rows.partition(digits.y, holdout, seed)
        np.testing.assert_array_equal(got_train, train)
        np.testing.assert_array_equal(got_test, test)


def test_the_first_repeat_is_a_stratified_k_fold_with_a_shuffle(digits) -> None:
    """Repeat 0 is StratifiedKFold(shuffle=True) drawn from a generator seeded with seed."""
    generator = np.random.RandomState(3)
    folds = StratifiedKFold(5, shuffle=True, random_state=generator).split(digits.X, digits.y)
    for fold, (_, test) in enumerate(folds):
        _, got = rows.partition(digits.y, Holdout(folds=5, fold=fold, repeat=0), 3)
        np.testing.assert_array_equal(got, test)


def test_every_row_is_a_test_row_once_per_repeat(digits) -> None:
    for repeat in (0, 1):
        tests = [
            rows.partition(digits.y, Holdout(folds=5, fold=f, repeat=repeat), 0)[1]
            for f in range(5)
        ]
        np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(len(digits.y)))
    a = rows.partition(digits.y, Holdout(folds=5, fold=0, repeat=0), 0)[1]
    b = rows.partition(digits.y, Holdout(folds=5, fold=0, repeat=1), 0)[1]
    assert not np.array_equal(a, b), "a repeat must shuffle the rows anew"


def test_the_scaler_sees_every_row_in_the_classic_order(digits) -> None:
    assert rows.scaling_rows(digits.y, Holdout(scaler_rows="all"), 0, 0.0) is None


@pytest.mark.parametrize(
    "holdout", [Holdout(scaler_rows="train"), Holdout(folds=5, fold=4, repeat=1)]
)
def test_the_leak_free_scaling_equals_one_fitted_on_the_training_rows_alone(
    digits, holdout
) -> None:
    train, test = rows.partition(digits.y, holdout, 0)
    fitted = rows.scaling_rows(digits.y, holdout, 0, 0.0)
    scaled = steps.standardise(digits, fitted)
    alone = StandardScaler().fit(digits.X[train])
    np.testing.assert_array_equal(scaled.mean, alone.mean_)
    np.testing.assert_array_equal(scaled.scale, alone.scale_)
    np.testing.assert_array_equal(scaled.X[test], alone.transform(digits.X[test]))
    leaky = StandardScaler().fit(digits.X)
    assert not np.allclose(scaled.mean, leaky.mean_), "the test rows must change the fit"


def test_the_scaler_leaves_out_the_validation_rows_too(digits) -> None:
    holdout = Holdout(scaler_rows="train")
    train, _ = rows.partition(digits.y, holdout, 5)
    fitted = rows.scaling_rows(digits.y, holdout, 5, 0.2)
    fit, held = train_test_split(
        np.arange(len(train)), test_size=0.2, random_state=5, stratify=digits.y[train]
    )
    np.testing.assert_array_equal(fitted, train[fit])
    assert not set(fitted) & set(train[held])


def test_a_repeat_past_the_tenth_is_still_drawn_from_the_same_stream(digits) -> None:
    """scikit-learn's splitter repeats 10 times unless told; repeat 10 is the eleventh."""
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=11, random_state=0)
    expected = list(splitter.split(digits.X, digits.y))[10 * 3 + 2]
    got = rows.partition(digits.y, Holdout(folds=3, fold=2, repeat=10), 0)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_a_fold_past_the_last_is_refused_not_taken_from_the_next_repeat(digits) -> None:
    with pytest.raises(ValueError) as refused:
        rows.partition(digits.y, Holdout(folds=5, fold=5, repeat=1), 0)
    assert str(refused.value) == "fold 5 of repeat 1: there are 5 folds"
