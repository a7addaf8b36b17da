"""The augmentation: seeded and deterministic, the originals first and untouched, and
each transform checked against an independent computation (whole-pixel shifts by
slicing, quarter turns by np.rot90, bilinear sampling by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from digits_nn.data import augment
from digits_nn.data.augment import Affine, augmented, draws, transformed

SPEC = Affine(copies=3, rotation=12.0, shift=1.0, zoom=0.1)


@pytest.fixture(scope="module")
def raw():
    """Forty raw digits (pixels 0..16) and their labels."""
    digits = load_digits()
    return digits.data[:40].astype(np.float64), digits.target[:40]


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_copies(raw) -> None:
    X, y = raw
    first, _ = augmented(X, y, SPEC, seed=5)
    again, _ = augmented(X.copy(), y, SPEC, seed=5)
    other, _ = augmented(X, y, SPEC, seed=6)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[: len(X)], other[: len(X)])  # the originals
    assert not np.allclose(first[len(X) :], other[len(X) :])  # the copies differ


def test_the_originals_come_first_then_each_copy_of_every_row_with_its_label(raw) -> None:
    X, y = raw
    rows, labels = augmented(X, y, SPEC, seed=0)
    assert rows.shape == ((SPEC.copies + 1) * len(X), 64)
    np.testing.assert_array_equal(rows[: len(X)], X)
    np.testing.assert_array_equal(labels, np.concatenate([y] * (SPEC.copies + 1)))
    # Copy c of row i is row i under its own draw.
    transforms = draws(SPEC, len(X), seed=0)
    for c, i in [(0, 0), (1, 7), (2, len(X) - 1)]:
        expected = transformed(X[i].reshape(8, 8), transforms[c, i]).ravel()
        np.testing.assert_array_equal(rows[(c + 1) * len(X) + i], expected)


def test_one_hot_targets_are_repeated_as_rows(raw) -> None:
    X, y = raw
    Y = np.eye(10)[y]
    _, targets = augmented(X, Y, SPEC, seed=0)
    np.testing.assert_array_equal(targets, np.concatenate([Y] * (SPEC.copies + 1)))


def test_no_copies_gives_the_rows_themselves(raw) -> None:
    X, y = raw
    rows, labels = augmented(X, y, Affine(copies=0), seed=0)
    assert rows is X and labels is y


def test_draws_are_uniform_in_each_range_and_seeded_on_their_own_stream() -> None:
    spec = Affine(copies=50, rotation=12.0, shift=1.0, zoom=0.1)
    found = draws(spec, 100, seed=3)
    assert found.shape == (50, 100, 4)
    for column, half in enumerate([12.0, 1.0, 1.0, 0.1]):
        values = found[..., column]
        assert values.min() >= -half and values.max() <= half
        assert values.min() < -0.9 * half and values.max() > 0.9 * half  # spread out
    # The stream: default_rng([seed, STREAM]), as scalar uniform draws in this order.
    rng = np.random.default_rng([3, augment.STREAM])
    first = [rng.uniform(-12, 12), *rng.uniform(-1, 1, 2), rng.uniform(-0.1, 0.1)]
    np.testing.assert_array_equal(found[0, 0], first)


def test_a_whole_pixel_shift_moves_the_digit_and_fills_with_zero(raw) -> None:
    image = raw[0][3].reshape(8, 8)
    down = np.zeros_like(image)
    down[1:] = image[:-1]
    left = np.zeros_like(image)
    left[:, :-1] = image[:, 1:]
    np.testing.assert_array_equal(transformed(image, np.array([0.0, 1.0, 0.0, 0.0])), down)
    np.testing.assert_array_equal(transformed(image, np.array([0.0, 0.0, -1.0, 0.0])), left)


def test_a_quarter_turn_about_the_centre_is_rot90(raw) -> None:
    image = raw[0][5].reshape(8, 8)
    turned = transformed(image, np.array([90.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(turned, np.rot90(image, k=-1), atol=1e-9)
    back = transformed(turned, np.array([-90.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(back, image, atol=1e-9)


def test_a_half_pixel_shift_is_the_mean_of_neighbours(raw) -> None:
    """Bilinear: halfway between two pixels is their mean, and 0 beyond the edge."""
    image = raw[0][9].reshape(8, 8)
    shifted = transformed(image, np.array([0.0, 0.0, 0.5, 0.0]))
    # out(r, c) = image(r, c - 0.5): the mean of columns c - 1 and c.
    expected = np.empty_like(image)
    expected[:, 1:] = (image[:, :-1] + image[:, 1:]) / 2
    # Column 0 samples at -0.5, outside the grid of pixel centres: 0 there, however
    # bright column 0 was (scipy's mode="constant" does not interpolate past the edge).
    expected[:, 0] = 0.0
    np.testing.assert_allclose(shifted, expected, atol=1e-12)


def test_a_zoom_keeps_the_centre_and_spreads_the_rest() -> None:
    """A 2x zoom maps pixel p to c + (p - c) / 2 of the source."""
    rows, cols = np.mgrid[0:8, 0:8]
    ramp = (rows * 8 + cols).astype(float)  # linear, so bilinear sampling is exact
    zoomed = transformed(ramp, np.array([0.0, 0.0, 0.0, np.log(2.0)]))
    source_r, source_c = 3.5 + (rows - 3.5) / 2, 3.5 + (cols - 3.5) / 2
    np.testing.assert_allclose(zoomed, source_r * 8 + source_c, atol=1e-9)


def test_copies_stay_pixels_of_the_same_range(raw) -> None:
    """Bilinear sampling mixes pixels and zeros: nothing leaves 0..16."""
    rows, _ = augmented(raw[0], raw[1], Affine(copies=4, rotation=30.0, shift=2.0, zoom=0.3), 1)
    assert rows.min() >= 0.0 and rows.max() <= 16.0
    assert rows.dtype == np.float64
