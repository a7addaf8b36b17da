"""The data steps: load, standardise, split and one-hot, and the validation rows held
out of the training rows."""

import numpy as np
import pytest

from digits_nn.data import steps


@pytest.fixture(scope="module")
def digits():
    return steps.load_digits()


@pytest.fixture(scope="module")
def scaled(digits):
    return steps.standardise(digits)


def sorted_rows(X, y):
    """Rows of [X | y] in a canonical order, so two row sets compare as multisets."""
    table = np.column_stack([X, y])
    return table[np.lexsort(table.T[::-1])]


def test_load_digits_shapes_dtypes_and_values(digits):
    assert digits.X.shape == (1797, 64)
    assert digits.X.dtype == np.float64
    assert digits.y.shape == (1797,)
    assert digits.y.dtype == np.int64
    assert digits.X.min() == 0.0
    assert digits.X.max() == 16.0
    np.testing.assert_array_equal(digits.X, np.round(digits.X))
    np.testing.assert_array_equal(np.unique(digits.y), np.arange(10))


def test_standardise_gives_zero_mean_unit_variance_per_pixel(digits, scaled):
    assert scaled.X.shape == (1797, 64)
    np.testing.assert_array_equal(scaled.y, digits.y)
    constant = digits.X.std(axis=0) == 0
    # A few pixels are blank in every image; the check below needs some of each kind.
    assert 0 < constant.sum() < 64
    np.testing.assert_allclose(scaled.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaled.X[:, ~constant].std(axis=0), 1.0, rtol=1e-12)


def test_standardise_leaves_constant_pixels_at_zero_with_unit_scale(digits, scaled):
    constant = digits.X.std(axis=0) == 0
    # StandardScaler keeps a zero-variance feature's scale at 1 rather than dividing by 0.
    np.testing.assert_array_equal(scaled.scale[constant], 1.0)
    np.testing.assert_array_equal(scaled.mean[constant], digits.X[0, constant])
    np.testing.assert_array_equal(scaled.X[:, constant], 0.0)
    assert np.all(np.isfinite(scaled.X))


def test_standardise_returns_the_fitted_mean_and_scale(digits, scaled):
    assert scaled.mean.shape == (64,)
    assert scaled.scale.shape == (64,)
    np.testing.assert_allclose(scaled.mean, digits.X.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaled.X, (digits.X - scaled.mean) / scaled.scale, atol=1e-12)


def test_per_pixel_scaling_is_scikit_learns_standard_scaler_bit_for_bit(digits, scaled):
    """The classic run's scaled rows stay the same bytes."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(digits.X)
    np.testing.assert_array_equal(scaled.X, scaler.transform(digits.X))
    np.testing.assert_array_equal(scaled.mean, scaler.mean_)
    np.testing.assert_array_equal(scaled.scale, scaler.scale_)


def test_global_scaling_is_one_mean_and_one_std_over_every_pixel_value(digits):
    rows = digits.X[:500]
    mean, scale = steps.scaling(rows, "global")
    assert mean.shape == scale.shape == (64,)
    np.testing.assert_array_equal(mean, np.mean(rows))
    np.testing.assert_array_equal(scale, np.std(rows))
    whole = steps.standardise(digits, how="global")
    np.testing.assert_allclose(whole.X.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(whole.X.std(), 1.0, rtol=1e-12)
    # A blank border pixel stays as small as the digits' background, not an outlier.
    assert np.abs(whole.X).max() < 3


def test_global_scaling_of_constant_rows_keeps_unit_scale():
    mean, scale = steps.scaling(np.full((3, 64), 7.0), "global")
    np.testing.assert_array_equal(mean, 7.0)
    np.testing.assert_array_equal(scale, 1.0)


def test_split_gives_1078_train_and_719_test_rows(scaled):
    split = steps.split(scaled.X, scaled.y, test_size=0.4, seed=0)
    assert split.X_train.shape == (1078, 64)
    assert split.X_test.shape == (719, 64)
    assert split.y_train.shape == (1078,)
    assert split.y_test.shape == (719,)


def test_split_is_a_permutation_of_all_rows(scaled):
    split = steps.split(scaled.X, scaled.y, test_size=0.4, seed=0)
    X_all = np.vstack([split.X_train, split.X_test])
    y_all = np.concatenate([split.y_train, split.y_test])
    np.testing.assert_array_equal(sorted_rows(X_all, y_all), sorted_rows(scaled.X, scaled.y))


def test_split_keeps_each_row_with_its_label():
    # Tag each row with its index so a mismatch between X and y cannot hide.
    X = np.arange(100, dtype=np.float64).reshape(50, 2)
    y = np.arange(50) % 10
    split = steps.split(X, y, test_size=0.4, seed=5)
    for part_X, part_y in ((split.X_train, split.y_train), (split.X_test, split.y_test)):
        rows = (part_X[:, 0] / 2).astype(int)
        np.testing.assert_array_equal(part_y, y[rows])
    assert (len(split.y_train), len(split.y_test)) == (30, 20)


def test_split_is_seeded(scaled):
    a = steps.split(scaled.X, scaled.y, test_size=0.4, seed=0)
    b = steps.split(scaled.X, scaled.y, test_size=0.4, seed=0)
    c = steps.split(scaled.X, scaled.y, test_size=0.4, seed=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_one_hot_round_trips_through_argmax(digits):
    encoded = steps.one_hot(digits.y)
    assert encoded.shape == (1797, 10)
    np.testing.assert_array_equal(np.argmax(encoded, axis=1), digits.y)
    np.testing.assert_array_equal(encoded.sum(axis=1), 1.0)
    assert set(np.unique(encoded)) == {0.0, 1.0}


def test_one_hot_places_the_one_at_the_label_index():
    np.testing.assert_array_equal(
        steps.one_hot(np.array([0, 9, 3])),
        [
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        ],
    )
    assert steps.one_hot(np.array([], dtype=np.int64)).shape == (0, 10)


# ---- the validation rows -----------------------------------------------------------------


@pytest.fixture(scope="module")
def split(scaled):
    return steps.split(scaled.X, scaled.y, test_size=0.4, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_rows_are_a_stratified_share_of_the_training_rows(split, seed) -> None:
    Y_train = steps.one_hot_split(split).Y_train
    fit, held = steps.validation_rows(split.y_train, 0.2, seed)
    Y_fit, Y_val = Y_train[fit], Y_train[held]
    per_class = Y_train.sum(axis=0)
    # Stratified: each digit's share of the validation rows is its share of the training
    # rows, up to rounding (a plain random 20 % misses by ~4 rows per digit).
    assert np.all(np.abs(Y_val.sum(axis=0) - 0.2 * per_class) <= 1)
    np.testing.assert_array_equal(Y_fit.sum(axis=0) + Y_val.sum(axis=0), per_class)
    assert sorted([*fit, *held]) == list(range(len(split.y_train)))  # the train rows only


def sklearn_validation_rows(labels: np.ndarray, size: float, seed: int):
    """The held-out rows as scikit-learn's stratified, seeded split draws them."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        np.arange(len(labels)), test_size=size, random_state=seed, stratify=labels
    )


# Mutation testing (docs/mutation.md).
@pytest.mark.parametrize(("size", "seed"), [(0.2, 0), (0.35, 5)])
def test_the_validation_rows_are_sklearns_stratified_seeded_share(split, size, seed) -> None:
    fit, held = sklearn_validation_rows(split.y_train, size, seed)
    got_fit, got_held = steps.validation_rows(split.y_train, size, seed)
    np.testing.assert_array_equal(got_fit, fit)
    np.testing.assert_array_equal(got_held, held)


def test_without_validation_rows_the_split_is_the_rows_fitted_on(split) -> None:
    """The split as training saw it: its train rows lose the validation rows, its test
    rows stay."""
    assert steps.without_validation(split, 0.0, 3) is split
    fitted = steps.without_validation(split, 0.3, 3)
    fit, _ = sklearn_validation_rows(split.y_train, 0.3, 3)
    np.testing.assert_array_equal(fitted.X_train, split.X_train[fit])
    np.testing.assert_array_equal(fitted.y_train, split.y_train[fit])
    np.testing.assert_array_equal(fitted.X_test, split.X_test)
    np.testing.assert_array_equal(fitted.y_test, split.y_test)


def test_raw_pixels_undo_the_standardisation(digits, scaled) -> None:
    np.testing.assert_allclose(steps.raw_pixels(scaled.X, scaled), digits.X, atol=1e-12)
