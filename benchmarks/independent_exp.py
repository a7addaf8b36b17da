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
    within one unit in the last place, the same bits on any CPU. Works in scratch
    buffers kept per shape, as the classic kernel does, so a call allocates nothing."""
    dtype = x.dtype
    xc, k, lo, r, r2, work, power = scratch(x.shape)
    np.clip(x, LOWEST, HIGHEST, out=xc)
    np.multiply(xc, INV_LN2, out=k)
    np.rint(k, out=k)
    np.multiply(k, LN2_HI, out=lo)
    hi = np.subtract(xc, lo, out=xc)
    np.multiply(k, LN2_LO, out=lo)
    np.subtract(hi, lo, out=r)
    np.multiply(r, r, out=r2)
    # c = r - r2 (P1 + r2 (P2 + r2 (P3 + r2 (P4 + r2 P5)))), by Horner's rule.
    np.multiply(r2, P5, out=work)
    for coefficient in (P4, P3, P2, P1):
        work += coefficient
        work *= r2
    c = np.subtract(r, work, out=work)
    q = np.multiply(r, c, out=r)
    np.subtract(2.0, c, out=c)
    q /= c
    # y = 1 - ((lo - r c / (2 - c)) - hi)
    y = np.subtract(lo, q, out=lo)
    y -= hi
    np.subtract(1.0, y, out=y)
    return scale_by_power_of_two(y, k, power, out if out is not None else np.empty(x.shape, dtype))


_SCRATCH: dict[tuple[int, ...], list[np.ndarray]] = {}


def scratch(shape: tuple[int, ...]) -> list[np.ndarray]:
    if shape not in _SCRATCH:
        _SCRATCH[shape] = [np.empty(shape) for _ in range(7)]
    return _SCRATCH[shape]


def scale_by_power_of_two(
    y: np.ndarray, k: np.ndarray, power: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``y * 2**k`` into ``out``, k holding whole numbers (``power`` is scratch). Where
    2**k is a normal number it is built from its bits: ``k + 1023 + 2**52`` holds
    ``k + 1023`` in its low mantissa bits, which a shift by 52 moves into the exponent;
    one exact multiplication follows. Elsewhere (results near overflow or subnormal,
    rare) ldexp, also exact."""
    low, high = np.fmin.reduce(k, axis=None), np.fmax.reduce(k, axis=None)  # NaN aside
    np.add(k, EXPONENT_BIAS + 2.0**52, out=power)
    bits = power.view(np.int64)
    np.left_shift(bits, 52, out=bits)
    with np.errstate(over="ignore"):
        np.multiply(y, power, out=out, casting="same_kind")
        if low < 1 - EXPONENT_BIAS or high > EXPONENT_BIAS:
            odd = (k < 1 - EXPONENT_BIAS) | (k > EXPONENT_BIAS)
            out[odd] = np.ldexp(y[odd], k[odd].astype(np.int32))
    return out


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-z))`` with this module's ``exp``, into ``out`` (may be ``z``)."""
    out = np.negative(z, out=out)
    exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)
