"""Procedurally rendered image sets, each image a pure function of ``(seed, index)``.

Two styles serve the ``ganmetrics demo`` command:

* ``"shapes"``: one filled disc, square or diamond of a random saturated colour, size and
  position on a smooth two-colour gradient background;
* ``"blobs"``: the same scenes drawn the way a weak generator might: blurred edges, washed-out
  colours and per-pixel noise — visibly different, so their FID to ``"shapes"`` is large.
"""

from __future__ import annotations

import numpy as np

STYLES = ("shapes", "blobs")


def _scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Background gradient and a soft-edged shape mask (float32, HxWx3 and HxW)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy + 1.5) / 3.0
    background = c0 * (1 - t[..., None]) + c1 * t[..., None]
    cx, cy = rng.uniform(0.25, 0.75, 2)
    radius = rng.uniform(0.12, 0.3)
    kind = rng.integers(3)
    dx, dy = np.abs(xx - cx), np.abs(yy - cy)
    distance = (np.hypot(dx, dy), np.maximum(dx, dy), dx + dy)[kind]
    mask = np.clip((radius - distance) * size + 0.5, 0, 1)
    return background.astype(np.float32), mask.astype(np.float32)


def render_image(style: str, seed: int, index: int, size: int = 32) -> np.ndarray:
    """One uint8 ``[size, size, 3]`` image of ``style``; the same arguments always give the same pixels."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}")
    rng = np.random.default_rng([seed, index])
    background, mask = _scene(rng, size)
    hue = rng.uniform(0, 255, 3)
    colour = np.where(hue > hue.mean(), 255.0, hue * 0.3)  # saturated
    if style == "blobs":
        kernel = np.array([1, 4, 6, 4, 1], np.float32) / 16
        for axis in (0, 1):
            mask = np.apply_along_axis(lambda m: np.convolve(m, kernel, mode="same"), axis, mask)
        colour = 0.5 * colour + 0.5 * background.mean((0, 1))
    image = background * (1 - mask[..., None]) + colour * mask[..., None]
    if style == "blobs":
        image = image + rng.normal(0, 12, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_images(style: str, n: int, *, seed: int = 0, size: int = 32) -> np.ndarray:
    """``n`` images of ``style`` as uint8 ``[n, size, size, 3]``."""
    return np.stack([render_image(style, seed, i, size) for i in range(n)]) if n else np.zeros((0, size, size, 3), np.uint8)
