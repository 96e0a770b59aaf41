"""The built-in training set: ten classes of procedurally rendered shapes, no download needed.

Image ``i`` of a set is a pure function of ``(seed, i)``: its class is ``i mod 10`` and everything
else (colours, size, position, rotation, background) is drawn from ``numpy.random.default_rng([seed, i])``.
So any subset can be rendered on any machine, in any order, in parallel, and always gives the same
pixels.  Each image holds one shape of its class, with anti-aliased edges, a saturated colour that
contrasts with the background, a random size, position and (where it shows) rotation, on one of four
backgrounds: a linear gradient, a radial gradient, stripes or a checkerboard, each in two colours.

=====  ==========  =====================================================
class  name        shape
=====  ==========  =====================================================
0      disc        filled circle
1      square      filled square, rotated
2      diamond     square rotated by 45° plus jitter (L1 ball)
3      triangle    equilateral triangle, rotated
4      ring        annulus
5      cross       plus sign, rotated
6      ellipse     elongated, rotated
7      star        five-pointed star, rotated
8      two-discs   two small discs side by side
9      crescent    disc with an offset disc cut out
=====  ==========  =====================================================

The sets are named by resolution: ``shapes32`` (the zoo's training set) and ``shapes64``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError

NUM_CLASSES = 10
CLASS_NAMES = ("disc", "square", "diamond", "triangle", "ring", "cross", "ellipse", "star", "two-discs", "crescent")
#: dataset name → image size
DATASETS = {"shapes32": 32, "shapes64": 64}
DEFAULT_DATASET = "shapes32"

Mask = Callable[[np.ndarray, np.ndarray, float, np.random.Generator], np.ndarray]


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


# Each shape is a signed "inside" distance: positive inside, in units of the image side, so that
# clip(d · size + 0.5, 0, 1) anti-aliases the edge over one pixel.  x, y are centred coordinates.

def _disc(x, y, r, rng):
    return r - np.hypot(x, y)


def _square(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, np.pi / 2))
    return 0.8 * r - np.maximum(np.abs(u), np.abs(v))


def _diamond(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(-0.2, 0.2))
    return r - (np.abs(u) + np.abs(v))


def _triangle(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, 2 * np.pi / 3))
    # intersection of three half-planes at distance r/2 from the centre
    edges = [u * np.cos(a) + v * np.sin(a) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)]
    return 0.5 * r - np.maximum.reduce(edges)


def _ring(x, y, r, rng):
    thickness = rng.uniform(0.25, 0.45) * r
    return thickness / 2 - np.abs(np.hypot(x, y) - (r - thickness / 2))


def _cross(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, np.pi / 2))
    arm = rng.uniform(0.22, 0.35) * r
    bar_h = np.minimum(r - np.abs(u), arm - np.abs(v))
    bar_v = np.minimum(r - np.abs(v), arm - np.abs(u))
    return np.maximum(bar_h, bar_v)


def _ellipse(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, np.pi))
    aspect = rng.uniform(0.35, 0.55)
    return r * (1 - np.hypot(u / r, v / (aspect * r)))


def _star(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, 2 * np.pi / 5))
    angle, radius = np.arctan2(v, u), np.hypot(u, v)
    # radius of the star's outline at each angle: between the inner radius (0.45 r) and r
    phase = np.abs(((angle * 5 / (2 * np.pi)) % 1.0) - 0.5) * 2  # 1 at a tip, 0 between tips
    outline = r * (0.45 + 0.55 * phase ** 2)
    return (outline - radius) * 0.7


def _two_discs(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, np.pi))
    small = 0.48 * r
    return np.maximum(small - np.hypot(u - 0.55 * r, v), small - np.hypot(u + 0.55 * r, v))


def _crescent(x, y, r, rng):
    u, v = _rotate(x, y, rng.uniform(0, 2 * np.pi))
    return np.minimum(r - np.hypot(u, v), np.hypot(u - 0.45 * r, v) - 0.8 * r)


SHAPES: tuple[Mask, ...] = (_disc, _square, _diamond, _triangle, _ring, _cross, _ellipse, _star, _two_discs,
                            _crescent)


def _background(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Two colours mixed by a linear or radial gradient, stripes or a checkerboard (float32 H×W×3)."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    kind = rng.integers(4)
    if kind == 0:  # linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy) / np.sqrt(2) + 0.5
    elif kind == 1:  # radial gradient from a random centre
        cx, cy = rng.uniform(-0.5, 0.5, 2)
        t = np.clip(np.hypot(xx - cx, yy - cy) / 1.2, 0, 1)
    elif kind == 2:  # soft stripes
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.15, 0.4)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    else:  # checkerboard
        period = rng.uniform(0.2, 0.5)
        t = ((np.floor((xx + 1) / period) + np.floor((yy + 1) / period)) % 2) * 0.7 + 0.15
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _shape_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A saturated colour far from the background's mean, so the shape stands out."""
    mean = background.mean(axis=(0, 1))
    for _ in range(8):
        hue = rng.uniform(0, 255, 3)
        colour = np.where(hue > hue.mean(), rng.uniform(200, 255), rng.uniform(0, 60))
        if np.abs(colour - mean).sum() > 150:
            return colour
    return 255.0 - mean


def render_image(seed: int, index: int, size: int = 32) -> tuple[np.ndarray, int]:
    """Image ``index`` of the set ``seed`` at ``size`` px: ``(uint8 [size, size, 3], class)``, a pure function."""
    if index < 0:
        raise InputError(f"image index must be >= 0, got {index}")
    label = index % NUM_CLASSES
    rng = np.random.default_rng([seed, index])
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    background = _background(rng, xx, yy)
    radius = rng.uniform(0.35, 0.7)
    cx, cy = rng.uniform(-1 + radius, 1 - radius, 2) * 0.8
    inside = SHAPES[label](xx - cx, yy - cy, radius, rng)
    mask = np.clip(inside * size / 2 + 0.5, 0, 1)[..., None]  # size/2 px per coordinate unit
    image = background * (1 - mask) + _shape_colour(rng, background) * mask
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label


def dataset_size(name: str) -> int:
    """The image size of the built-in set ``name``; a clear error for unknown names."""
    if name not in DATASETS:
        raise InputError(f"unknown built-in dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def render_dataset(name: str, n: int, *, seed: int = 0, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images ``start .. start + n − 1`` of ``name``: uint8 ``[n, S, S, 3]`` and int64 labels ``[n]``."""
    size = dataset_size(name)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        images[i], labels[i] = render_image(seed, start + i, size)
    return images, labels


class BuiltinDataset(Dataset):
    """``n`` images of a built-in set as ``(uint8 [3, S, S] tensor, class)`` pairs, rendered on access."""

    def __init__(self, name: str = DEFAULT_DATASET, n: int = 50_000, *, seed: int = 0) -> None:
        self.name, self.size, self.n, self.seed = name, dataset_size(name), int(n), int(seed)
        if self.n < 1:
            raise InputError(f"the dataset needs at least one image, got n={n}")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        image, label = render_image(self.seed, index, self.size)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), label
