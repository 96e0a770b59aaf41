"""Sliced Wasserstein Distance on a Laplacian pyramid, Progressive GAN's metric.

References: Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation" (§5, Table 1); Rabin et al. 2011, "Wasserstein Barycenter and its Application
to Texture Mixing" (sliced Wasserstein).  Implemented from METRICS.md, not from PGGAN's code.

Definition (METRICS.md "Sliced Wasserstein Distance"):

* images are float32 on the 0..255 scale; ``filter`` is the separable binomial
  ``[1, 4, 6, 4, 1] / 16`` with reflect-101 borders (``d c b | a b c d | c b a``);
  ``down(x) = filter(x)[::2, ::2]``; ``up(x) = 4 · filter(zero-insert(x))``;
* ``G_0 = image``, ``G_{i+1} = down(G_i)`` down to 16 px; level ``i = G_i − up(G_{i+1})``,
  the last level is the low-pass ``G_{L−1}`` itself;
* per image and level, 128 random 7×7 neighbourhoods (centres in ``[3, side − 4]``, with
  replacement) give 147-number descriptors (channel, row, column);
* each set is normalised on its own, per level and colour channel, by the mean and the
  population std over all its descriptors and the 49 positions;
* per level, 4 repeats of 128 unit directions ``θ`` (columns of N(0, 1) draws, normalised):
  ``SW = mean_θ mean_i |sort(A θ)_i − sort(B θ)_i|``, the level value is the mean over the
  repeats; reported ×1000, finest level first, with their mean as ``"avg"``.

Randomness — explicit, seeded, and independent of batch size and device:

* patch centres: a counter-based generator (SplitMix64, Steele, Lea & Flood 2014): the
  64-bit word for (image ``i``, patch ``p``, axis ``a``) at a level of side ``R`` is
  ``mix64(key + (c + 1) · γ)`` with ``c = 256 i + 2 p + a``, ``γ = 0x9E3779B97F4A7C15`` and
  ``key = mix64`` chained over ``(seed, crc32(stream), R)``; the centre is
  ``3 + ((word >> 32) · (R − 6)) >> 32``.  Image ``i`` is the ``i``-th image the set has seen,
  so any batching yields the same centres.  :func:`swd` uses the streams ``"fake"`` (``gen``)
  and ``"real"``; :func:`patch_centres` exposes the draws.
* directions: numpy's Philox with the key chained over ``(seed, crc32("directions"), R,
  repeat)``, drawn on the CPU as float32 N(0, 1) and normalised per column
  (:func:`projection_directions`).

Memory: PGGAN's protocol (16,384 images per set) makes 2²¹ descriptors per level per set,
≈1.2 GB of float32 each.  :class:`SWDDescriptors` keeps a set's descriptors in RAM until they
would exceed ``max_memory_bytes`` (1 GiB by default, per set), then moves them to one raw
float32 file per level in a temporary folder, appended to batch by batch and read back block by
block through short-lived ``np.memmap`` views (:class:`SpilledLevel`), so the mapped pages do not
pile up in the process.  In RAM, descriptors live in anonymous memory maps (allocated once for
``capacity`` images when that is known, as in :func:`swd`), outside the malloc heap that the
pyramid's temporaries fragment.  Projections run over fixed blocks of 32,768 descriptors and a fixed number of
directions at a time (a function of the descriptor count only: 128 up to 2¹⁹ descriptors, 32 at
2²¹), each direction's column sorted whole.  Nothing is approximated: where the descriptors live
changes only where the bytes are read from, never the arithmetic, so the spilled and in-memory
paths give bit-identical values; at the PGGAN protocol the projection buffers take
2 × 32 × 2²¹ × 4 B = 512 MiB besides the stored descriptors (on a GPU, ``torch.sort`` adds
its output and int64 indices).

The pyramid uses shifted-slice weighted sums rather than a convolution: every output is the
same fixed sequence of IEEE operations whatever the batch, so descriptors do not depend on the
batch size.  On the CPU the sorts use numpy's SIMD sort on a few threads (2–4× faster than
``torch.sort``); on other devices ``torch.sort``.
"""

from __future__ import annotations

import math
import mmap
import os
import shutil
import tempfile
import weakref
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import resolve_device, tf32_disabled
from ..distributed import (
    Shard,
    all_gather_objects,
    all_sum_int,
    broadcast_object,
    failing_together,
    gather_rows,
)
from ..errors import InputError, spelled
from .base import IMAGES, ISA_MEASURED, LOWER, Context, Metric, SetData, option, register

MIN_RESOLUTION = 16
PATCHES_PER_IMAGE = 128
PATCH_SIZE = 7
DESCRIPTOR_SIZE = 3 * PATCH_SIZE * PATCH_SIZE  # 147: (channel, row, column)
NUM_REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
SCALE = 1e3  # PGGAN reports SWD × 10³
DEFAULT_MAX_MEMORY_BYTES = 1 << 30

ROW_BLOCK = 1 << 15  # descriptors per projection / statistics block
PROJECTION_ELEMENTS = 1 << 26  # projection buffer per set: 256 MiB of float32
MIN_DIRECTION_CHUNK = 16

_KERNEL = (1.0 / 16, 4.0 / 16, 6.0 / 16)  # symmetric binomial taps: ends, next-to-ends, centre
_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------------------------------------
# counter-based random draws


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 words (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _key(*words: int | str) -> int:
    """A 64-bit key chained over integers and names (names by CRC-32)."""
    key = 0
    for word in words:
        value = zlib.crc32(word.encode()) if isinstance(word, str) else int(word)
        z = np.array([(key + (value & _MASK64) + _GAMMA) & _MASK64], dtype=np.uint64)
        key = int(_mix64(z)[0])
    return key


def patch_centres(seed: int, stream: str, resolution: int, start: int, count: int) -> np.ndarray:
    """Centres ``[count, 128, 2]`` (row, column), int64, of images ``start .. start + count − 1``.

    Uniform on ``[3, resolution − 4]`` per axis (multiply-shift of 32 random bits: bias below
    2⁻³²), a pure function of ``(seed, stream, resolution, image index)`` (see the module docstring).
    """
    return patch_centres_of(seed, stream, resolution, np.arange(start, start + count))


def patch_centres_of(seed: int, stream: str, resolution: int, indices: np.ndarray) -> np.ndarray:
    """Centres ``[len(indices), 128, 2]`` of the images with these indices in their set (:func:`patch_centres`)."""
    span = resolution - PATCH_SIZE + 1
    indices = np.asarray(indices, dtype=np.uint64)
    counters = (indices[:, None] * np.uint64(2 * PATCHES_PER_IMAGE)
                + np.arange(2 * PATCHES_PER_IMAGE, dtype=np.uint64)).ravel()
    words = _mix64(np.uint64(_key(seed, stream, resolution)) + (counters + np.uint64(1)) * np.uint64(_GAMMA))
    centres = ((words >> np.uint64(32)) * np.uint64(span)) >> np.uint64(32)
    return centres.astype(np.int64).reshape(len(indices), PATCHES_PER_IMAGE, 2) + PATCH_SIZE // 2


def projection_directions(seed: int, resolution: int, repeat: int) -> np.ndarray:
    """Unit directions ``[147, 128]`` float32 of one repeat: N(0, 1) columns over their norms."""
    rng = np.random.Generator(np.random.Philox(key=_key(seed, "directions", resolution, repeat)))
    directions = rng.standard_normal((DESCRIPTOR_SIZE, DIRECTIONS_PER_REPEAT), dtype=np.float32)
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


# ---------------------------------------------------------------------------------------------
# the Laplacian pyramid (pure functions on float32 [N, C, H, W] tensors)


def pyramid_resolutions(size: int) -> list[int]:
    """Level sides, finest first: ``size, size/2, ..., 16``."""
    return [size >> i for i in range(int(math.log2(size // MIN_RESOLUTION)) + 1)]


def binomial_filter(x: torch.Tensor, dim: int, step: int = 1) -> torch.Tensor:
    """``[1, 4, 6, 4, 1] / 16`` along ``dim`` (−1 or −2) with reflect-101 borders, every ``step``-th output."""
    pad = (2, 2, 0, 0) if dim == -1 else (0, 0, 2, 2)
    padded = F.pad(x, pad, mode="reflect")
    size = x.shape[dim]

    def tap(offset: int) -> torch.Tensor:
        window = slice(offset, offset + size, step)
        return padded[..., window] if dim == -1 else padded[..., window, :]

    return (tap(0) + tap(4)) * _KERNEL[0] + (tap(1) + tap(3)) * _KERNEL[1] + tap(2) * _KERNEL[2]


def downsample(x: torch.Tensor) -> torch.Tensor:
    """``filter(x)[..., ::2, ::2]``, computing only the kept outputs."""
    return binomial_filter(binomial_filter(x, -1, 2), -2, 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Zero-insert to twice the size (``x`` at even rows/columns), then filter with 4× the kernel."""
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, 2 * h, 2 * w)
    z[..., ::2, ::2] = x
    return binomial_filter(binomial_filter(z, -1), -2) * 4.0


def laplacian_pyramid(images: torch.Tensor) -> list[torch.Tensor]:
    """Levels ``G_i − up(G_{i+1})``, finest first, the last being the low-pass ``G_{L−1}``."""
    gaussians = [images]
    for _ in pyramid_resolutions(images.shape[-1])[1:]:
        gaussians.append(downsample(gaussians[-1]))
    return [g - upsample(coarser) for g, coarser in zip(gaussians, gaussians[1:])] + [gaussians[-1]]


def extract_patches(level: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """7×7 neighbourhoods ``[N · 128, 147]`` (channel, row, column) of ``level`` ``[N, 3, H, W]``."""
    n, c, h, w = level.shape
    offsets = torch.arange(PATCH_SIZE, device=level.device) - PATCH_SIZE // 2
    rows = centres[..., 0, None, None] + offsets[:, None]  # [N, 128, 7, 1]
    cols = centres[..., 1, None, None] + offsets  # [N, 128, 1, 7]
    index = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    patches = level.reshape(n, c, h * w).gather(2, index)  # [N, 3, 128 · 49]
    return patches.view(n, c, -1, PATCH_SIZE * PATCH_SIZE).transpose(1, 2).reshape(-1, DESCRIPTOR_SIZE)


# ---------------------------------------------------------------------------------------------
# descriptor accumulation


def check_image_size(height: int, width: int, what: str) -> None:
    """Raise :class:`InputError` unless images of ``height``×``width`` (``what``) suit SWD: square, a power
    of two of at least 16 px."""
    if height != width:
        raise InputError(f"{what} are {height}×{width}; SWD needs square images (resize or crop them)")
    if width < MIN_RESOLUTION or width & (width - 1):
        raise InputError(f"{what} are {width}×{width}; SWD needs a power-of-two side of at least "
                         f"{MIN_RESOLUTION} px (16, 32, 64, ...) — resize them")


def _blocks(n: int) -> Iterable[slice]:
    return (slice(start, min(start + ROW_BLOCK, n)) for start in range(0, n, ROW_BLOCK))


def anonymous_array(rows: int) -> np.ndarray:
    """An uninitialised float32 ``[rows, 147]`` array in its own anonymous memory map.

    Kept descriptors stay out of the malloc heap, where they would pin the holes left by the
    pyramid's temporaries (glibc cannot return those to the system); unmapped when released.
    """
    size = rows * DESCRIPTOR_SIZE * 4
    if size == 0:
        return np.empty((0, DESCRIPTOR_SIZE), np.float32)
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.float32).reshape(rows, DESCRIPTOR_SIZE)


class SpilledLevel:
    """One level's descriptors ``[rows, 147]`` in a raw float32 file, read and written by row ranges.

    Each access maps just those rows (``np.memmap`` with an offset) and unmaps them again, so
    the process holds at most one block of them at a time.
    """

    def __init__(self, path: Path, rows: int) -> None:
        self.path, self.rows = path, rows
        self.shape = (rows, DESCRIPTOR_SIZE)

    def __len__(self) -> int:
        return self.rows

    def _map(self, rows: slice, mode: str) -> np.memmap:
        start, stop, _ = rows.indices(self.rows)
        return np.memmap(self.path, dtype=np.float32, mode=mode, offset=start * DESCRIPTOR_SIZE * 4,
                         shape=(max(stop - start, 0), DESCRIPTOR_SIZE))

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.array(self._map(rows, "r"))

    def __setitem__(self, rows: slice, values: np.ndarray) -> None:
        mapped = self._map(rows, "r+")
        mapped[:] = values
        mapped.flush()
        del mapped

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[0:self.rows]
        return out if dtype is None else out.astype(dtype)


def channel_stats(descriptors: np.ndarray | SpilledLevel) -> tuple[np.ndarray, np.ndarray]:
    """Per colour channel mean and population std (float64) over all descriptors and 49 positions.

    Fixed blocks of rows merged with Chan et al.'s pairwise update, in float64.
    """
    count, mean, m2 = 0, np.zeros(3), np.zeros(3)
    for rows in _blocks(len(descriptors)):
        x = np.array(descriptors[rows], dtype=np.float64).reshape(-1, 3, PATCH_SIZE * PATCH_SIZE)
        block_count = x.shape[0] * x.shape[2]
        block_mean = x.sum(axis=2).sum(axis=0) / block_count
        x -= block_mean[:, None]
        block_m2 = np.square(x, out=x).sum(axis=2).sum(axis=0)
        delta, total = block_mean - mean, count + block_count
        mean = mean + delta * (block_count / total)
        m2 = m2 + block_m2 + delta**2 * (count * block_count / total)
        count = total
    return mean, np.sqrt(m2 / count)


def normalize_(descriptors: np.ndarray | SpilledLevel) -> None:
    """``(d − mean_c) / std_c`` per colour channel in place, float32 (a constant channel keeps std 1)."""
    mean, std = channel_stats(descriptors)
    mean32 = mean.astype(np.float32)[:, None]
    std32 = np.where(std > 0, std, 1.0).astype(np.float32)[:, None]
    for rows in _blocks(len(descriptors)):
        block = descriptors[rows].reshape(-1, 3, PATCH_SIZE * PATCH_SIZE)  # a view, or a copy of spilled rows
        block -= mean32
        block /= std32
        if isinstance(descriptors, SpilledLevel):
            descriptors[rows] = block.reshape(-1, DESCRIPTOR_SIZE)


class SWDDescriptors:
    """Streaming accumulator of one set's SWD descriptors.

    ``update(images)`` takes uint8 ``[N, 3, H, W]`` batches in order; it builds the Laplacian
    pyramid on ``device`` and stores each level's 128 descriptors per image (float32, in RAM,
    or in temporary files once they would exceed ``max_memory_bytes``).  ``finish()``
    normalises them per level and colour channel; :meth:`level` then reads them.  Patch
    centres come from ``(seed, stream, image index)``; use another ``stream`` for every set.
    ``capacity`` (the expected number of images, optional) allocates their storage up front.
    ``limit``: only the images whose index in the whole set is below it are taken.
    """

    def __init__(self, *, seed: int = 0, stream: str = "real", device: torch.device | str | None = None,
                 max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES, temp_dir: str | os.PathLike | None = None,
                 description: str = "images", capacity: int | None = None, limit: int | None = None) -> None:
        self.seed, self.stream, self.description = int(seed), str(stream), description
        self.limit = limit
        self.total_images: int | None = None  # of every rank together, once merged
        self.device = resolve_device(device)
        self.max_memory_bytes = int(max_memory_bytes)
        self.capacity = capacity  # expected number of images: storage for them is allocated at once
        self.num_images = 0
        self.resolutions: list[int] = []
        self._temp_parent = temp_dir
        self._chunks: list[list[np.ndarray]] = []  # per level; the last chunk may have spare rows
        self._spare = 0  # unused rows at the end of each level's last chunk
        self._held = 0
        self._folder: Path | None = None
        self._cleanup: weakref.finalize | None = None
        self._levels: list[np.ndarray | SpilledLevel] | None = None

    # -- properties
    @property
    def resolution(self) -> int | None:
        return self.resolutions[0] if self.resolutions else None

    @property
    def spilled(self) -> bool:
        """True once the descriptors live in temporary files."""
        return self._folder is not None

    @property
    def finished(self) -> bool:
        return self._levels is not None

    @property
    def num_descriptors(self) -> int:
        return self.num_images * PATCHES_PER_IMAGE

    @property
    def full(self) -> bool:
        """Never: which of a stream's images fall below ``limit`` is known per batch."""
        return False

    def merged(self, shard: Shard) -> SWDDescriptors:
        """This rank's descriptors, with the images of every rank counted in ``total_images`` (collective); the
        descriptors themselves are gathered when the SWD is computed (:func:`swd_across_ranks`)."""
        self.total_images = all_sum_int(self.num_images, shard)
        return self

    # -- accumulation
    def update(self, images: torch.Tensor, indices: np.ndarray | None = None) -> None:
        """Add a uint8 ``[N, 3, H, W]`` batch: the next ``N`` images, whose indices in the whole set are
        ``indices`` (default: the next ``N``; a rank's share under sharding) — the patch centres' key."""
        if self.finished:
            raise RuntimeError("SWDDescriptors.update() after finish()")
        if not isinstance(images, torch.Tensor):
            raise InputError(f"{self.description} mix image sizes; SWD needs one square power-of-two size")
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"SWD expects uint8 batches N×3×H×W, got {images.dtype} {tuple(images.shape)}")
        if len(images) == 0:
            return
        height, width = images.shape[-2:]
        check_image_size(height, width, self.description)
        if not self.resolutions:
            self.resolutions = pyramid_resolutions(width)
            self._chunks = [[] for _ in self.resolutions]
        elif width != self.resolution:
            raise InputError(f"{self.description} mix image sizes ({self.resolution}×{self.resolution} and "
                             f"{width}×{width}); SWD needs one size per set")
        if indices is None:
            indices = np.arange(self.num_images, self.num_images + len(images))
        if self.limit is not None:
            keep = int(np.count_nonzero(np.asarray(indices) < self.limit))
            images, indices = images[:keep], indices[:keep]
            if not keep:
                return
        levels = laplacian_pyramid(images.to(self.device, torch.float32))
        self._store([self._descriptors(level, resolution, indices)
                     for level, resolution in zip(levels, self.resolutions)])
        self.num_images += len(images)

    def _descriptors(self, level: torch.Tensor, resolution: int, indices: np.ndarray) -> torch.Tensor:
        centres = patch_centres_of(self.seed, self.stream, resolution, indices)
        return extract_patches(level, torch.from_numpy(centres).to(level.device))

    def _store(self, batch: list[torch.Tensor] | list[np.ndarray]) -> None:
        """Append the next images' descriptors, one ``[rows, 147]`` block per level."""
        rows = len(batch[0])
        if not self.spilled and rows > self._spare:
            expected = (self.capacity or 0) * PATCHES_PER_IMAGE - self.num_descriptors
            new_rows = max(rows, expected)
            size = new_rows * DESCRIPTOR_SIZE * 4 * len(batch)
            if self._held + size > self.max_memory_bytes:
                self._spill()
            else:
                for chunks in self._chunks:
                    chunks.append(anonymous_array(new_rows))
                self._held, self._spare = self._held + size, new_rows
        if self.spilled:
            for path, block in zip(self._paths(), batch):
                with open(path, "ab") as f:
                    (block.cpu().numpy() if isinstance(block, torch.Tensor) else block).tofile(f)
            return
        for chunks, block in zip(self._chunks, batch):
            start = len(chunks[-1]) - self._spare
            torch.from_numpy(chunks[-1][start:start + rows]).copy_(torch.as_tensor(block))
        self._spare -= rows

    def _stored(self, index: int) -> list[np.ndarray]:
        """Level ``index``'s in-RAM descriptors, in order, as views of the filled rows."""
        chunks = self._chunks[index]
        return chunks[:-1] + [chunks[-1][:len(chunks[-1]) - self._spare]] if chunks else []

    def _paths(self) -> list[Path]:
        assert self._folder is not None
        return [self._folder / f"level{i}_{r}px.f32" for i, r in enumerate(self.resolutions)]

    def _spill(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="ganmetrics-swd-", dir=self._temp_parent))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        for index, path in enumerate(self._paths()):
            with open(path, "wb") as f:
                for chunk in self._stored(index):
                    chunk.tofile(f)
        self._chunks, self._held, self._spare = [[] for _ in self.resolutions], 0, 0

    def _raw_rows(self, index: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop − 1`` of level ``index`` as stored (before normalisation)."""
        if self.spilled:
            return SpilledLevel(self._paths()[index], self.num_descriptors)[start:stop]
        parts, offset = [], 0
        for chunk in self._stored(index):
            lo, hi = max(start - offset, 0), min(stop - offset, len(chunk))
            if lo < hi:
                parts.append(chunk[lo:hi])
            offset += len(chunk)
        return np.concatenate(parts)

    def _with_rows(self, num_images: int, rows: Callable[[int, int, int], np.ndarray]) -> SWDDescriptors:
        """A new, unfinished accumulator of ``num_images`` images whose raw descriptors of level ``i``, images
        ``start .. stop − 1``, are ``rows(i, start, stop)`` (stored block by block, spilled past the memory cap)."""
        out = SWDDescriptors(seed=self.seed, stream=self.stream, device=self.device,
                             max_memory_bytes=self.max_memory_bytes, temp_dir=self._temp_parent,
                             description=self.description, capacity=num_images)
        out.resolutions, out._chunks = list(self.resolutions), [[] for _ in self.resolutions]
        step = max(1, ROW_BLOCK // PATCHES_PER_IMAGE)
        for start in range(0, num_images, step):
            stop = min(start + step, num_images)
            out._store([rows(index, start, stop) for index in range(len(self.resolutions))])
            out.num_images = stop
        return out

    def gathered(self, shard: Shard, *, dst: int = 0) -> SWDDescriptors | None:
        """The whole set's descriptors, in its image order, from every rank's share (collective: all ranks
        call it); on rank ``dst`` a new unfinished accumulator, None on the others.  Unsharded: ``self``."""
        if not shard.active:
            return self
        if self.finished:
            raise RuntimeError("SWDDescriptors.gathered() after finish(): the descriptors are normalised in place")
        known = {tuple(r) for r in all_gather_objects(self.resolutions, shard) if r}
        if len(known) > 1:
            raise InputError(f"{self.description}: the ranks' images have different sizes; SWD needs one size per set")
        resolutions = list(known.pop()) if known else []
        levels = []
        for index in range(len(resolutions)):
            local = (self._raw_rows(index, 0, self.num_descriptors) if self.num_images else
                     np.empty((0, DESCRIPTOR_SIZE), np.float32))
            levels.append(gather_rows(torch.from_numpy(local).view(-1, PATCHES_PER_IMAGE, DESCRIPTOR_SIZE), shard,
                                      dst=dst))
        if shard.rank != dst:
            return None
        self.resolutions = resolutions
        total = len(levels[0]) if levels else 0
        return self._with_rows(total, lambda i, start, stop: levels[i][start:stop].reshape(-1, DESCRIPTOR_SIZE).numpy())

    def truncated(self, num_images: int) -> SWDDescriptors:
        """A new, unfinished accumulator holding the first ``num_images`` images (call before :meth:`finish`).

        Equal, bit for bit, to one fed only those images.
        """
        if self.finished:
            raise RuntimeError("SWDDescriptors.truncated() after finish(): the descriptors are normalised in place")
        if not 1 <= num_images <= self.num_images:
            raise InputError(f"cannot keep {num_images} of the {self.num_images} images of {self.description}")
        return self._with_rows(num_images, lambda i, start, stop: self._raw_rows(i, start * PATCHES_PER_IMAGE,
                                                                                 stop * PATCHES_PER_IMAGE))

    # -- results
    def finish(self) -> SWDDescriptors:
        """Assemble and normalise the descriptors (idempotent); returns ``self``."""
        if self.finished:
            return self
        if not self.num_images:
            raise InputError(f"{self.description}: no images were given to SWD")
        n = self.num_descriptors
        if self.spilled:
            levels = [SpilledLevel(path, n) for path in self._paths()]
        else:
            levels = [self._assemble(index) for index in range(len(self.resolutions))]
            self._chunks, self._held, self._spare = [], 0, 0
        for level in levels:
            normalize_(level)
        self._levels = levels
        return self

    def _assemble(self, index: int) -> np.ndarray:
        """Level ``index`` as one array: the chunk itself when there is one (storage allocated for
        ``capacity``), else copied chunk by chunk, each released once copied."""
        parts = self._stored(index)
        self._chunks[index] = []
        if len(parts) == 1:
            return parts[0]
        out, start = anonymous_array(self.num_descriptors), 0
        while parts:
            part = parts.pop(0)
            out[start:start + len(part)] = part
            start += len(part)
        return out

    def level(self, index: int) -> np.ndarray | SpilledLevel:
        """Normalised descriptors ``[num_images · 128, 147]`` of level ``index`` (finest = 0)."""
        if self._levels is None:
            raise RuntimeError("call SWDDescriptors.finish() first")
        return self._levels[index]

    def close(self) -> None:
        """Drop the descriptors and delete the temporary files."""
        self._levels, self._chunks, self._held, self._spare = None, [], 0, 0
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = self._folder = None

    def __enter__(self) -> SWDDescriptors:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# sliced Wasserstein


def directions_per_chunk(num_descriptors: int) -> int:
    """How many directions are projected and sorted at once: a function of the count only."""
    return max(MIN_DIRECTION_CHUNK, min(DIRECTIONS_PER_REPEAT, PROJECTION_ELEMENTS // max(num_descriptors, 1)))


class _RowSorter:
    """Sorts each row of a ``[k, n]`` tensor ascending: numpy's SIMD sort in place on the CPU, rows
    split over ``threads`` threads (numpy releases the GIL); ``torch.sort`` elsewhere."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        if values.device.type != "cpu":
            return torch.sort(values, dim=1).values
        array = values.numpy()
        if self.pool is None or len(array) < 2:
            array.sort(axis=1)
            return values
        bounds = np.linspace(0, len(array), min(self.threads, len(array)) + 1).astype(int)
        list(self.pool.map(lambda lo, hi: array[lo:hi].sort(axis=1), bounds[:-1], bounds[1:]))
        return values

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def sorted_projections(descriptors: np.ndarray | SpilledLevel, directions: torch.Tensor, sort: _RowSorter) -> torch.Tensor:
    """``sort(D θ)`` per direction: ``[k, n]`` for descriptors ``[n, 147]`` and directions ``[147, k]``."""
    n = len(descriptors)
    out = torch.empty(directions.shape[1], n, dtype=torch.float32, device=directions.device)
    for rows in _blocks(n):
        block = torch.from_numpy(np.ascontiguousarray(descriptors[rows])).to(directions.device)
        out[:, rows] = directions.T @ block.T
    return sort(out)


def _abs_diff_sum(a: torch.Tensor, b: torch.Tensor) -> float:
    """``Σ |a − b|`` accumulated in float64, overwriting ``a`` (numpy's buffered cast on the CPU: no float64 copy)."""
    diff = a.sub_(b).abs_()
    if diff.device.type == "cpu":
        return float(diff.numpy().sum(dtype=np.float64))
    return float(diff.sum(dtype=torch.float64))


def sliced_wasserstein(a: np.ndarray | SpilledLevel, b: np.ndarray | SpilledLevel, directions: list[np.ndarray], *,
                       device: torch.device | str = "cpu") -> float:
    """``mean_repeats mean_θ mean_i |sort(A θ)_i − sort(B θ)_i|`` (Rabin et al. 2011), unscaled."""
    if len(a) != len(b):
        raise InputError(f"SWD needs equal descriptor counts, got {len(a)} and {len(b)}")
    device = torch.device(device)
    n, step = len(a), directions_per_chunk(len(a))
    sort = _RowSorter(torch.get_num_threads() if device.type == "cpu" else 1)
    repeats = []
    try:
        with tf32_disabled():
            for matrix in directions:
                theta = torch.from_numpy(np.ascontiguousarray(matrix)).to(device)
                total = 0.0
                for start in range(0, theta.shape[1], step):
                    chunk = theta[:, start:start + step]
                    sorted_a = sorted_projections(a, chunk, sort)
                    sorted_b = sorted_projections(b, chunk, sort)
                    total += _abs_diff_sum(sorted_a, sorted_b)
                    del sorted_a, sorted_b
                repeats.append(total / (n * theta.shape[1]))
    finally:
        sort.close()
    return float(np.mean(repeats))


def swd_from_descriptors(a: SWDDescriptors, b: SWDDescriptors, *, seed: int = 0, device=None) -> dict:
    """SWD ×10³ per resolution (finest first) and their mean, from two sets' descriptors.

    Both sets must have the same image size and number of images (the same descriptor count).
    """
    for d in (a, b):
        d.finish()
    if a.resolution != b.resolution:
        raise InputError(f"{a.description} are {a.resolution}×{a.resolution} px but {b.description} are "
                         f"{b.resolution}×{b.resolution}; SWD compares sets of the same resolution")
    if a.num_images != b.num_images:
        raise InputError(f"SWD needs the same number of images in both sets: {a.description} has {a.num_images}, "
                         f"{b.description} has {b.num_images}")
    device = resolve_device(device)
    levels = {}
    for index, resolution in enumerate(a.resolutions):
        directions = [projection_directions(seed, resolution, r) for r in range(NUM_REPEATS)]
        levels[resolution] = SCALE * sliced_wasserstein(a.level(index), b.level(index), directions, device=device)
    return {"levels": levels, "avg": float(np.mean(list(levels.values())))}


def swd_across_ranks(fake: SWDDescriptors, real: SWDDescriptors, shard: Shard, *, seed: int = 0, device=None) -> dict:
    """:func:`swd_from_descriptors` of the whole sets from every rank's share (collective): rank 0 gathers and
    computes, every rank returns the result."""
    if not shard.active:
        return swd_from_descriptors(fake, real, seed=seed, device=device)
    whole_fake, whole_real = fake.gathered(shard), real.gathered(shard)
    result = None
    with failing_together(shard):
        if shard.is_main:
            with whole_fake, whole_real:
                result = swd_from_descriptors(whole_fake, whole_real, seed=seed, device=device)
    return broadcast_object(result, shard)


@dataclass(frozen=True)
class SWDOptions:
    num_images: int | None = option(None, flag="--swd-images",
                                    help="SWD on the first N images of each set (default: all of A)")


@register
class SWDMetric(Metric):
    name, title, label, order, direction = "swd", "SWD ×10³ (avg)", "SWD×1e3", 40, LOWER
    needs = frozenset({IMAGES})
    Options = SWDOptions
    meaning = ("Sliced Wasserstein distance of 7×7 Laplacian-pyramid patches (Progressive GAN), mean over the levels "
               "below; lower is closer.")
    tolerance = 5e-4
    tolerance_basis = (ISA_MEASURED + "no SWD level (a float32 sort of float32 projections; 1e-4 at most with the "
                       "older SSE4.1 run); 5e-4 leaves a margin for the CUDA path.")

    def headline(self, value: dict) -> float:
        return value["avg"]

    def unavailable(self, gen, real, options: SWDOptions, ctx: Context) -> str | None:
        reason = super().unavailable(gen, real, options, ctx)
        if reason:
            return reason
        sizes = [ctx.image_sizes.get(role) for role in ("gen", "real")]
        try:
            for size, what in zip(sizes, (spelled("gen images", "A's images"), spelled("real images", "B's images"))):
                if size is not None:
                    check_image_size(*size, what)
        except InputError as exc:
            return str(exc)
        if None not in sizes and sizes[0] != sizes[1]:
            return (f"{spelled('gen', 'A')}'s images are {sizes[0][0]} px and {spelled('real', 'B')}'s "
                    f"{sizes[1][0]} px; SWD compares sets of one size")
        counts = [getattr(side, "total_images", None) for side in (gen, real)]  # opened images: their set sizes
        if None not in counts:
            wanted = min(counts[0], options.num_images or counts[0])
            if counts[1] < wanted:
                return self._too_few(wanted, counts[1])
        return None

    @staticmethod
    def _too_few(wanted: int, available: int) -> str:
        return (f"SWD compares equal-sized sets: {spelled('gen', 'A')} has {wanted} images but {spelled('real', 'B')} "
                f"only {available}; pass {spelled('swd_num_images', '--swd-images')} <= {available}")

    def accumulator(self, role: str, options: SWDOptions, ctx: Context, gen: SetData | None = None) -> SWDDescriptors:
        # the reference takes as many images as the generated set gave (all sets alike when scored alone)
        limit = gen.accumulators["swd"].total_images if role == "real" and gen is not None else options.num_images
        description = spelled("gen images", "A's images") if role == "gen" else spelled("real images", "B's images")
        return SWDDescriptors(seed=ctx.seed, stream="fake" if role == "gen" else "real", device=ctx.device,
                              description=description, limit=limit)

    def compute(self, gen: SetData, real: SetData, options: SWDOptions, ctx: Context) -> dict:
        fake, reals = gen.accumulators["swd"], real.accumulators["swd"]
        if reals.total_images < fake.total_images:
            raise InputError(self._too_few(fake.total_images, reals.total_images))
        return swd_across_ranks(fake, reals, ctx.shard, seed=ctx.seed, device=ctx.device)

    def short(self, value: dict) -> str:
        return f"{value['avg']:.4f}"

    def line(self, value: dict) -> str:
        levels = ", ".join(f"{res}px {v:.4f}" for res, v in value["levels"].items())
        return f"SWD×1e3  avg {value['avg']:.4f}  ({levels})"

    def detail(self, options: SWDOptions, protocol: str, num_images: list[int]) -> str:
        return f"the first {min(num_images[0], options.num_images or num_images[0])} images of each set"


__all__ = ["SWDDescriptors", "laplacian_pyramid", "patch_centres", "projection_directions",
           "swd_from_descriptors"]
