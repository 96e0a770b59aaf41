"""Pictures for people: sample grids and FID against the number of samples.

A grid is the images themselves, pixel for pixel (no resampling), tiled into rows; the FID curve is a
matplotlib chart (matplotlib is needed for the curve only).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .errors import InputError
from .imageio import save_png
from .sources import is_generator, open_source


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 0) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` tiled row by row into ``ceil(N / columns)`` rows (default: a square grid),
    ``padding`` white pixels between tiles; missing tiles of the last row stay white."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise InputError(f"a grid needs uint8 images [N, H, W, 3] with N >= 1, got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    out = np.full((rows * h + (rows - 1) * padding, columns * w + (columns - 1) * padding, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + padding):r * (h + padding) + h, c * (w + padding):c * (w + padding) + w] = image
    return out


def first_images(source, n: int, *, seed: int = 0, value_range=(-1.0, 1.0)) -> np.ndarray:
    """The first ``n`` images of any source :func:`ganmetrics.fid` accepts (a generator: ``n`` samples from
    ``seed``), as uint8 ``[n', H, W, 3]`` (``n' <= n``); one image size is required."""
    images = open_source(source, num_samples=n if is_generator(source) else None, batch_size=min(n, 64), seed=seed,
                         value_range=value_range, device="cpu", num_workers=0)  # a smaller set gives what it has
    taken: list[torch.Tensor] = []
    count = 0
    for batch in images:
        if taken and batch.shape[1:] != taken[0].shape[1:]:
            raise InputError(f"{images.description}: a grid needs images of one size, but this set mixes sizes")
        taken.append(batch[:n - count])
        count += len(taken[-1])
        if count >= n:
            break
    if not taken:
        raise InputError(f"{images.description} has no images")
    return torch.cat(taken).permute(0, 2, 3, 1).numpy()


def save_grid(images: np.ndarray, path: str | os.PathLike, *, columns: int | None = None, padding: int = 2) -> Path:
    """Write :func:`image_grid` of uint8 ``[N, H, W, 3]`` images as a PNG (atomically); return its path."""
    path = Path(path)
    save_png(path, image_grid(images, columns, padding))
    return path


def pyplot(purpose: str):
    """``matplotlib.pyplot`` on the non-interactive Agg backend; a clear error naming ``purpose`` without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InputError(f"{purpose} needs matplotlib: pip install matplotlib") from exc
    return plt


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (100 dpi, no software stamp, so equal figures give equal bytes); closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    pyplot("a chart").close(fig)
    return buffer.getvalue()


def fid_curve_png(result: dict, *, title: str = "FID against 1/N and its extrapolation FD∞") -> bytes:
    """FD∞'s fit as PNG bytes: the subsets' FIDs against 1/N, the least-squares line, its intercept at 1/N = 0
    (``result``: :func:`ganmetrics.metrics.fid_infinity.fid_infinity`'s)."""
    from .metrics.fid_infinity import fit_line

    sizes = [int(n) for n in result["fid_n"]]
    fids = list(result["fid_n"].values())
    intercept, slope = fit_line(sizes, fids)
    fig, ax = pyplot("the FID curve").subplots(figsize=(5.5, 3.6))
    x = [1 / n for n in sizes]
    ax.plot(x, fids, "o", label="FID of a random subset of N images")
    ax.plot([0, max(x)], [intercept, intercept + slope * max(x)], "-", linewidth=1,
            label=f"least squares; FD∞ = {intercept:.3f}")
    ax.plot([0], [intercept], "s")
    ax.set_xlabel("1 / N")
    ax.set_ylabel("FID")
    ax.set_xlim(left=0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def save_fid_curve(result: dict, path: str | os.PathLike, **kwargs) -> Path:
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(fid_curve_png(result, **kwargs))
    return path

