"""Data augmentation: random affine copies of the training images, seeded.

A copy of an 8x8 image is the image rotated about its centre, zoomed and shifted by
amounts drawn at random for that image and that copy, resampled bilinearly with zero
outside the frame. It works on raw pixels (0..16), whose background is 0; the caller
scales the copies as it scales the originals. Only training rows are ever given here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from digits_nn.data.digits import N_PIXELS

SIDE = math.isqrt(N_PIXELS)  # the images are SIDE x SIDE
CENTRE = np.full(2, (SIDE - 1) / 2)  # the middle of the pixel grid, (3.5, 3.5)
# The copies' draws come from a stream of their own, apart from the initial weights
# (RandomState(seed)) and the trainer's shuffles (default_rng([seed, 1])).
STREAM = 2


@dataclass(frozen=True)
class Affine:
    """How many copies of each image, and the half-widths of the uniform ranges their
    transforms are drawn from: degrees, pixels (each axis) and the log of the zoom."""

    copies: int
    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0


def draws(spec: Affine, n_images: int, seed: int) -> np.ndarray:
    """The transforms of every copy, ``(copies, n_images, 4)``: angle in degrees, row
    shift, column shift (+ is down and right) and log zoom, drawn copy by copy and
    image by image in that order from ``default_rng([seed, STREAM])``."""
    rng = np.random.default_rng([seed, STREAM])
    unit = rng.random((spec.copies, n_images, 4))
    half = np.array([spec.rotation, spec.shift, spec.shift, spec.zoom])
    return -half + 2.0 * half * unit


def transformed(image: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """``image`` (SIDE x SIDE) under one draw: ``out(p) = image(c + M (p - shift - c))``
    in (row, column) coordinates about the centre ``c``, with
    ``M = [[cos a, -sin a], [sin a, cos a]] / exp(log_zoom)``; bilinear, and 0 where
    the point sampled falls outside the grid of pixel centres.

    So the digit is zoomed by ``exp(log_zoom)``, turned by ``a`` and then moved by
    ``shift``.
    """
    from scipy import ndimage

    angle, shift, log_zoom = np.deg2rad(draw[0]), draw[1:3], draw[3]
    cos, sin = np.cos(angle), np.sin(angle)
    M = np.array([[cos, -sin], [sin, cos]]) * np.exp(-log_zoom)
    offset = CENTRE - M @ CENTRE - M @ shift
    return ndimage.affine_transform(image, M, offset=offset, order=1, mode="constant", cval=0.0)


def augmented(
    X: np.ndarray, y: np.ndarray, spec: Affine, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``X`` (raw pixels, one image a row) and their labels or targets ``y``,
    followed by ``spec.copies`` copies of every row, copy by copy: ``(1 + copies) n``
    rows, with ``y`` repeated to match."""
    if spec.copies == 0:
        return X, y
    images = X.reshape(-1, SIDE, SIDE)
    transforms = draws(spec, len(images), seed)
    copies = [
        transformed(image, draw) for per_copy in transforms for image, draw in zip(images, per_copy)
    ]
    rows = np.concatenate([X, np.reshape(copies, (-1, N_PIXELS))]).astype(X.dtype, copy=False)
    return rows, np.concatenate([y] * (spec.copies + 1))
