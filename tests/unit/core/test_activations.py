"""The activation table: each hidden activation and its derivative, written in terms of
the activation's output, and the ``out`` array they work in place into."""

from __future__ import annotations

import numpy as np
import pytest

from digits_nn.core.activations import DERIVATIVES, HIDDEN

Z = np.array([[-3.0, -0.5, 0.0], [0.25, 1.0, 4.0]])


def by_hand(name: str) -> tuple[np.ndarray, np.ndarray]:
    """f(Z) and f'(Z) from their textbook formulas."""
    if name == "sigmoid":
        h = 1.0 / (1.0 + np.exp(-Z))
        return h, h * (1.0 - h)
    if name == "tanh":
        return np.tanh(Z), 1.0 / np.cosh(Z) ** 2
    return np.maximum(Z, 0.0), (Z > 0.0).astype(float)


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_an_activation_and_its_derivative_write_into_the_out_array_they_are_given(
    name: str,
) -> None:
    """The module promises to work in place when given ``out``: the values land there,
    and that same array is returned; without it, the inputs are left as they were."""
    value, slope = by_hand(name)
    out = np.full_like(Z, np.nan)
    h = HIDDEN[name](Z, out=out)
    assert h is out
    np.testing.assert_allclose(out, value, rtol=1e-12)
    into = np.full_like(Z, np.nan)
    derivative = DERIVATIVES[name](out, out=into)
    assert derivative is into
    np.testing.assert_allclose(into, slope, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out, value, rtol=1e-12)  # h itself untouched

    z = Z.copy()
    fresh = HIDDEN[name](z)
    np.testing.assert_allclose(fresh, value, rtol=1e-12)
    np.testing.assert_array_equal(z, Z)
    np.testing.assert_allclose(DERIVATIVES[name](fresh), slope, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fresh, value, rtol=1e-12)
