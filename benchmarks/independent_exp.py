"""A float64 ``exp`` whose bits do not depend on numpy's SIMD dispatch, for measuring what
making the classic kernel platform-independent would cost (benchmarks/bench.py, section
p). Not used by the project: docs/reproducibility.md says why.

numpy's float64 ``exp`` runs an AVX-512 routine where the CPU has one and the C library's
scalar ``exp`` otherwise, and the two differ in the last bit on a few per cent of
arguments. This one is built from operations IEEE 754 rounds correctly whatever the
vector width (add, subtract, multiply, divide, rint; numpy never fuses two of them into
an FMA), so it gives the same bits on every x86-64 CPU. The method is the classic one of
fdlibm's ``e_exp.c``: reduce ``x = k ln2 + r`` with ``|r| <= ln2 / 2`` (ln2 split in two
so that ``k * LN2_HI`` is exact), approximate ``exp(r)`` by a rational function of ``r``
built on a degree-10 even polynomial, and scale by ``2**k``.
"""

from __future__ import annotations

import numpy as np

INV_LN2 = 1.44269504088896338700e00
LN2_HI = 6.93147180369123816490e-01  # ln 2 with its low 32 bits zero: k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
# The minimax coefficients of fdlibm's e_exp.c: (r (e^r + 1) / (e^r - 1) - 2) / r^2.
P1 = 1.66666666666666019037e-01
P2 = -2.77777777770155933842e-03
P3 = 6.61375632143793436117e-05
P4 = -1.65339022054652515390e-06
P5 = 4.13813679705723846039e-08
# Beyond these exp(x) is inf or 0; inside, k stays within ldexp's range.
HIGHEST, LOWEST = 710.0, -746.0
EXPONENT_BIAS = 1023


def exp(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``e**x`` elementwise for float64 ``x`` (float32 is widened and rounded once),
    within one unit in the last place, the same bits on any CPU."""
    dtype = x.dtype
    x = np.clip(np.asarray(x, dtype=np.float64), LOWEST, HIGHEST)
    k = np.rint(x * INV_LN2)
    hi = x - k * LN2_HI
    lo = k * LN2_LO
    r = hi - lo
    r2 = r * r
    c = r - r2 * (P1 + r2 * (P2 + r2 * (P3 + r2 * (P4 + r2 * P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    return scale_by_power_of_two(y, k.astype(np.int64), out, dtype)


def scale_by_power_of_two(
    y: np.ndarray, k: np.ndarray, out: np.ndarray | None, dtype: np.dtype
) -> np.ndarray:
    """``y * 2**k``: by a power of two built from its bits where it is a normal number
    (one exact multiplication), by ldexp (exact too, one rounding) elsewhere."""
    normal = (k >= 1 - EXPONENT_BIAS) & (k <= EXPONENT_BIAS)
    power = ((np.where(normal, k, 0) + EXPONENT_BIAS) << 52).view(np.float64)
    with np.errstate(over="ignore"):
        scaled = y * power
        if not normal.all():
            scaled[~normal] = np.ldexp(y[~normal], k[~normal].astype(np.int32))
    if out is None:
        return scaled.astype(dtype, copy=False)
    out[...] = scaled
    return out


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-z))`` with this module's ``exp``, into ``out`` (may be ``z``)."""
    out = np.negative(z, out=out)
    exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)
