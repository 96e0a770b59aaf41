"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) and the GAN diversity metric of Karras et al. 2018 (PGGAN).

Per pair of RGB images ``(x, y)`` and per scale ``l = 0..4`` (halving the images in between):

* a Gaussian window of ``size = min(11, H_l, W_l)`` taps, ``σ = 1.5·size/11``, normalised to sum 1, with
  MATLAB ``fspecial`` coordinates (``−(size−1)/2 .. (size−1)/2``);
* 'valid' filtering of ``x, y, x², y², xy`` per channel → ``μx, μy, σx² = E[x²] − μx², σy², σxy``;
* ``cs_l = mean[(2σxy + C2) / (σx² + σy² + C2)]`` and
  ``ssim_l = mean[(2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))]``, the means over all
  pixels *and all channels together*, ``C1 = (0.01·L)²``, ``C2 = (0.03·L)²``;
* clipped at 0: ``MS-SSIM = Π_{l<4} cs_l^{w_l} · ssim_4^{w_4}``, ``w = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]``.

Precision follows the reference: images, the 2×2 box-average downsampling and the products ``x·x, y·y, x·y``
in float32; window and filtering in float64 (~1e-12 from the reference; all-float64 differs by ~5e-7).

The GAN metric (:func:`ms_ssim_diversity`) is the mean MS-SSIM over pairs ``(2k, 2k+1)`` of one set of
images (PGGAN: 10,000 pairs of generated images); lower means more diverse.  pytorch-msssim and
torchmetrics compute another quantity (per-channel products averaged afterwards, sides > 160 px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..distributed import Shard, all_gather_concat, all_sum_int
from ..errors import InputError
from .base import IMAGES, ISA_MEASURED, Context, Metric, SetData, option, register

K1 = 0.01
K2 = 0.03
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang et al. 2003, used as-is (they sum to 1.0001)."""
NUM_SCALES = len(WEIGHTS)
MAX_WINDOW = 11
SIDE_MULTIPLE = 2 ** (NUM_SCALES - 1)
"""Image sides must be divisible by 16: four exact 2×2 halvings."""
_CHUNK_ELEMENTS = 2 ** 23
"""Pairs are filtered in chunks of at most this many elements per image set (bounds float64 memory)."""
_TILE = 64
"""Output rows per band-matrix tile: a full band matrix is O(side) work per pixel, a tile O(_TILE + 10)."""


# ---------------------------------------------------------------------------------------------
# pure math


def window_schedule(height: int, width: int) -> tuple[int, ...]:
    """Gaussian window size at each scale: ``min(11, H >> l, W >> l)`` for ``l = 0..4``.

    32 px → (11, 11, 8, 4, 2); at 176 px and above every scale uses 11.
    """
    return tuple(min(MAX_WINDOW, height >> level, width >> level) for level in range(NUM_SCALES))


def gaussian_window(size: int, *, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """1-D Gaussian ``g`` with ``σ = 1.5·size/11``, normalised to sum 1; the 2-D window is ``g gᵀ``.

    Coordinates follow MATLAB ``fspecial``: ``−(size−1)/2 .. (size−1)/2``, i.e. ``−r..r`` for odd sizes
    and half-integers ``−(size/2 − 0.5) .. size/2 − 0.5`` for even sizes.
    """
    if size < 1:
        raise InputError(f"window size must be >= 1, got {size}")
    sigma = 1.5 * size / MAX_WINDOW
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords * coords) / (2 * sigma * sigma))
    return (g / g.sum()).to(device=device, dtype=dtype)


def _band_matrix(window: torch.Tensor, length: int) -> torch.Tensor:
    """``[length − k + 1, length]`` matrix ``B`` with ``(B v)_i = Σ_j g_j v_{i+j}``: 'valid' correlation as a matmul.

    Row ``i`` is ``g`` shifted right by ``i``: the first ``out·length`` entries of ``[g, 0 … 0]`` (length + 1)
    repeated, read as ``out × length``.
    """
    k = window.numel()
    out = length - k + 1
    padded = torch.cat([window, window.new_zeros(length + 1 - k)])
    return padded.repeat(out)[:out * length].view(out, length)


def _correlate(planes: torch.Tensor, window: torch.Tensor, dim: int) -> torch.Tensor:
    """'Valid' correlation of ``[n, H, W]`` along ``dim`` (1: ``B · X``, 2: ``X · Bᵀ``), in tiles of ``_TILE`` outputs.

    ``bmm`` runs every plane through the same kernel, so a value does not depend on the batch it is in and
    identical planes give identical outputs; the tiles keep the band matrices small on large images.
    """
    k = window.numel()
    out_len = planes.shape[dim] - k + 1
    parts = []
    for start in range(0, out_len, _TILE):
        stop = min(start + _TILE, out_len)
        band = _band_matrix(window, stop - start + k - 1).expand(planes.shape[0], -1, -1)
        piece = planes.narrow(dim, start, stop - start + k - 1)
        parts.append(torch.bmm(band, piece) if dim == 1 else torch.bmm(piece, band.transpose(1, 2)))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim)


def _filter_valid(planes: torch.Tensor, size: int) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering (window ``g gᵀ``) of the last two dims of float64 ``planes``."""
    window = gaussian_window(size, device=planes.device)
    out = _correlate(_correlate(planes.reshape(-1, *planes.shape[-2:]), window, 1), window, 2)
    return out.view(*planes.shape[:-2], *out.shape[-2:])


def _scale_stats(x: torch.Tensor, y: torch.Tensor, size: int, c1: float, c2: float,
                 *, luminance: bool) -> torch.Tensor:
    """Per-pair ``cs`` (or ``ssim`` when ``luminance``) of float32 ``[N, C, H, W]`` images, float64 ``[N]``.

    Only ``σx² + σy²`` enters the formulas, so ``x² + y²`` is filtered once (filtering is linear; the
    products are rounded in float32 as specified and added in float64): four filterings instead of five.
    """
    quantities = x.new_empty((4, *x.shape), dtype=torch.float64)
    quantities[0], quantities[1] = x, y
    torch.mul(x, x, out=quantities[2])  # computed (rounded) in float32, stored widened
    quantities[2].add_(y * y)
    torch.mul(x, y, out=quantities[3])
    mu_x, mu_y, e_sq, e_xy = _filter_valid(quantities, size).unbind(0)
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    value = (2 * (e_xy - mu_xy) + c2) / (e_sq - mu_sq + c2)
    if luminance:
        value = value * ((2 * mu_xy + c1) / (mu_sq + c1))
    return value.flatten(1).mean(1)


def _ms_ssim_float32(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """MS-SSIM of checked float32 ``[N, C, H, W]`` pairs (sides divisible by 16), float64 ``[N]``."""
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    result = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for level, (size, weight) in enumerate(zip(window_schedule(*x.shape[-2:]), WEIGHTS)):
        if level:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)  # 2×2 block means, float32
        value = _scale_stats(x, y, size, c1, c2, luminance=level == NUM_SCALES - 1)
        result = result * value.clamp(min=0) ** weight
    return result


# ---------------------------------------------------------------------------------------------
# public API


def _as_images(t: Any, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise InputError(f"ms_ssim: {name} must be a torch.Tensor N×C×H×W (uint8 0..255, or float on the "
                         f"0..data_range scale), got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise InputError(f"ms_ssim: {name} has dtype {t.dtype}; expected uint8 or float images")
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[1] == 0:
        raise InputError(f"ms_ssim: {name} has shape {tuple(t.shape)}; expected N×C×H×W or a single C×H×W image")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise InputError(f"ms_ssim: {name} holds NaN or infinite values")
    return t


def check_side_lengths(height: int, width: int) -> None:
    """Raise :class:`InputError` unless both sides are positive multiples of 16."""
    if height <= 0 or width <= 0 or height % SIDE_MULTIPLE or width % SIDE_MULTIPLE:
        raise InputError(
            f"MS-SSIM needs image sides divisible by {SIDE_MULTIPLE} (five scales, four exact 2×2 halvings); "
            f"got {height}×{width} (H×W) — crop or resize the images, e.g. to "
            f"{max(SIDE_MULTIPLE, height // SIDE_MULTIPLE * SIDE_MULTIPLE)}×"
            f"{max(SIDE_MULTIPLE, width // SIDE_MULTIPLE * SIDE_MULTIPLE)}"
        )


def ms_ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 255.0) -> torch.Tensor:
    """MS-SSIM of each pair ``(x[i], y[i])``, float64 ``[N]``, computed on the inputs' device.

    ``x``, ``y``: uint8 ``[N, C, H, W]`` (or float on the ``0..data_range`` scale; a single ``[C, H, W]``
    pair gives ``[1]``), RGB for the PGGAN metric; sides divisible by 16.  Wang, Simoncelli & Bovik 2003,
    "Multiscale structural similarity for image quality assessment", as generalised to RGB by Karras et
    al. 2018 (PGGAN): the SSIM means run over all pixels and channels together.  Identical images give
    exactly 1.
    """
    x, y = _as_images(x, "x"), _as_images(y, "y")
    if x.shape != y.shape:
        raise InputError(f"ms_ssim: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.device != y.device:
        raise InputError(f"ms_ssim: x is on {x.device} but y on {y.device}; move them to one device")
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise InputError(f"ms_ssim: data_range must be a positive number, got {data_range!r}")
    check_side_lengths(*x.shape[-2:])
    x, y = x.to(torch.float32), y.to(torch.float32)
    step = max(1, _CHUNK_ELEMENTS // math.prod(x.shape[1:]))
    chunks = [_ms_ssim_float32(x[i:i + step], y[i:i + step], float(data_range)) for i in range(0, len(x), step)]
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.float64, device=x.device)


class MSSSIMDiversity:
    """Streaming mean MS-SSIM over consecutive pairs ``(2k, 2k+1)`` of a stream of uint8 image batches.

    ``update(batch)`` pairs images across batch boundaries (an odd image waits for the next batch) and
    stops counting once ``max_pairs`` pairs are in; ``compute()`` is the mean (an exactly rounded sum, so
    the value does not depend on how the stream is batched).  Used by :func:`ms_ssim_diversity` and the
    one-pass ``evaluate()``.  ``device``: where to compute (default: where each batch lives).
    """

    def __init__(self, *, max_pairs: int | None = None, device: torch.device | str | None = None,
                 data_range: float = 255.0) -> None:
        if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, int)
                                      or max_pairs < 1):
            raise InputError(f"max_pairs must be an integer >= 1 or None, got {max_pairs!r}")
        self.max_pairs = max_pairs
        self.device = torch.device(device) if device is not None else None
        self.data_range = data_range
        self.num_images = 0
        self._values: list[torch.Tensor] = []
        self._num_pairs = 0
        self._leftover: torch.Tensor | None = None
        self._size: tuple[int, int] | None = None

    @classmethod
    def for_shard(cls, shard: Shard, *, max_pairs: int, device: torch.device | str | None = None) -> MSSSIMDiversity:
        """The accumulator of this rank's share of the first ``max_pairs`` pairs (pairs are never split across
        ranks): it scores those of its pairs, possibly none; :meth:`merged_across_ranks` joins the ranks'."""
        accumulator = cls(max_pairs=max_pairs, device=device)
        accumulator.max_pairs = shard.count(2 * max_pairs) // 2
        return accumulator

    @property
    def num_pairs(self) -> int:
        """Pairs scored so far."""
        return self._num_pairs

    @property
    def full(self) -> bool:
        """True once ``max_pairs`` pairs are in (further updates are ignored)."""
        return self.max_pairs is not None and self._num_pairs >= self.max_pairs

    def _as_batch(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(images, (list, tuple)):
            sizes = sorted({tuple(image.shape[-2:]) for image in images})
            if len(sizes) > 1:
                shown = ", ".join(f"{h}×{w}" for h, w in sizes[:4]) + (" ..." if len(sizes) > 4 else "")
                raise InputError(f"MS-SSIM needs all images the same size; got sizes {shown} — resize or crop them")
            images = torch.stack(list(images)) if images else torch.empty(0, 3, 0, 0, dtype=torch.uint8)
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise InputError(f"MSSSIMDiversity.update expects an N×C×H×W batch, got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        size = tuple(images.shape[-2:])
        if len(images) and self._size is not None and size != self._size:
            raise InputError(f"MS-SSIM needs all images the same size; got {self._size[0]}×{self._size[1]} "
                             f"and then {size[0]}×{size[1]} — resize or crop them")
        if len(images):
            check_side_lengths(*size)
            self._size = size
        return images.to(self.device) if self.device is not None else images

    def update(self, images: torch.Tensor | list[torch.Tensor], indices: Any = None) -> None:
        """Score the complete pairs of ``images`` (uint8 ``[N, C, H, W]``, or a list of ``[C, H, W]``); pairs are
        consecutive images of this stream, so ``indices`` (their places in the whole set) are not needed."""
        batch = self._as_batch(images)
        self.num_images += len(batch)
        if self.full or not len(batch):
            return
        if self._leftover is not None:
            batch = torch.cat([self._leftover.to(batch.device)[None], batch])
        pairs = len(batch) // 2
        if self.max_pairs is not None:
            pairs = min(pairs, self.max_pairs - self._num_pairs)
        if pairs:
            values = ms_ssim(batch[0:2 * pairs:2], batch[1:2 * pairs:2], data_range=self.data_range)
            self._values.append(values.cpu())
            self._num_pairs += pairs
        self._leftover = batch[-1].clone() if len(batch) % 2 and not self.full else None

    def merged_across_ranks(self, shard: Shard) -> MSSSIMDiversity:
        """The pairs of every rank's share together (collective: all ranks call it); the mean is an exactly
        rounded sum, so it equals the single-process value whatever the sharding."""
        if not shard.active:
            return self
        values = torch.cat(self._values) if self._values else torch.empty(0, dtype=torch.float64)
        merged = MSSSIMDiversity(max_pairs=None, device=self.device, data_range=self.data_range)
        merged._values = [all_gather_concat(values.to(torch.float64), shard)]
        merged._num_pairs = len(merged._values[0])
        merged.num_images = all_sum_int(self.num_images, shard)
        return merged

    merged = merged_across_ranks

    def compute(self) -> float:
        """Mean MS-SSIM over the pairs scored so far."""
        if not self._num_pairs:
            raise InputError(f"MS-SSIM diversity needs at least 2 images (one pair); got {self.num_images}")
        return math.fsum(torch.cat(self._values).tolist()) / self._num_pairs


@dataclass(frozen=True)
class MSSSIMOptions:
    num_pairs: int = option(10000, flag="--ms-ssim-pairs", help="at most this many image pairs of A (default: 10000)")


@register
class MSSSIMMetric(Metric):
    name, title, order, direction = "ms_ssim", "MS-SSIM", 50, None
    aliases = ("msssim", "ms-ssim")
    sides = 1
    needs = frozenset({IMAGES})
    Options = MSSSIMOptions
    meaning = "Mean MS-SSIM over pairs of images of A (Progressive GAN); lower is more diverse."
    tolerance = 1e-5
    tolerance_basis = ISA_MEASURED + "MS-SSIM not at all (float64 sums of float32 SSIM maps); 1e-5 for the CUDA path."

    def accumulator(self, role: str, options: MSSSIMOptions, ctx: Context, gen: SetData | None = None):
        return MSSSIMDiversity.for_shard(ctx.shard, max_pairs=options.num_pairs)

    def compute(self, gen: SetData, real: SetData | None, options: MSSSIMOptions, ctx: Context) -> float:
        return gen.accumulators["ms_ssim"].compute()

    def detail(self, options: MSSSIMOptions, protocol: str, num_images: list[int]) -> str:
        return f"at most {options.num_pairs} pairs"


__all__ = ["MSSSIMDiversity", "check_side_lengths", "gaussian_window", "ms_ssim", "window_schedule"]
