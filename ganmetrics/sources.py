"""Turning any image input into uint8 ``N×3×H×W`` batches.

:func:`open_source` accepts a folder (recursive), a ``.zip`` of images, a ``.npz``/``.npy``
array file, a numpy array, a ``torch.Tensor``, a ``DataLoader`` or any other iterable of
batches, or a generator (``nn.Module`` or callable taking ``z`` [and labels]), and returns an
:class:`ImageSource`: a re-iterable sequence of :data:`ImageBatch` es.

Conversions, the same for every kind of source:

* grayscale (1 channel) is repeated to 3 channels;
* RGBA (4 channels) drops the alpha channel — it is *not* composited over a background;
* 16-bit values (uint16 arrays/tensors, 16-bit PNGs) are scaled with ``round(x * 255 / 65535)``
  (Pillow's ``convert("RGB")`` would clip or truncate them instead);
* float values in ``value_range`` are quantised the StyleGAN way, see :func:`quantize`;
* 8-bit image files decode exactly as ``np.asarray(Image.open(f).convert("RGB"))``, like the
  peer libraries (see :mod:`ganmetrics.imageio`).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .devices import check_device
from .distributed import LOCAL, Shard
from .errors import InputError, SourceNotFoundError, spelled
from .imageio import IMAGE_EXTENSIONS, decode_image, is_image_name, max_image_file_bytes, scale_16bit
from .untouched import UntouchedCall

ImageBatch = torch.Tensor | list[torch.Tensor]
"""uint8 ``[N, 3, H, W]``; a list of uint8 ``[3, H, W]`` only when a batch mixes image sizes."""

ValueRange = tuple[float, float]

_IMAGE_KEYS = ("image", "images", "img")
_ARRAY_KEYS = ("images", "arr_0", "x")
_UINT16 = getattr(torch, "uint16", None)  # torch >= 2.3


@dataclass
class ImageSource:
    """A re-iterable stream of uint8 image batches.

    Every iteration starts again from the beginning (a generator source redraws the same
    latents from its seed).  ``num_images`` is how many images an iteration yields, ``None``
    when unknown in advance (iterables without ``num_samples``).  ``shard``: which images of the
    whole set (``description``) this process yields — its ``j``-th is ``shard.global_index(j)``
    (:mod:`ganmetrics.distributed`); all of them by default.  ``total_images``: the size of the
    whole set (``num_images`` without sharding; None when unknown).
    """

    description: str
    num_images: int | None
    iterate: Callable[[], Iterator[ImageBatch]] = field(repr=False, compare=False)
    shard: Shard = LOCAL
    total_images: int | None = None
    #: the name of image ``i`` of the whole set (a file path, an archive member ...), for error messages
    name_of: Callable[[int], str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.total_images is None and not self.shard.active:
            self.total_images = self.num_images

    def image_name(self, index: int) -> str:
        """What error messages call image ``index`` of the whole set."""
        return self.name_of(index) if self.name_of is not None else f"image {index} of {self.description}"

    def __iter__(self) -> Iterator[ImageBatch]:
        return iter(self.iterate())


# ---------------------------------------------------------------------------------------------
# value conversions


def _check_value_range(value_range: Sequence[float]) -> ValueRange:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InputError(f"value_range must be a pair (low, high), got {value_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise InputError(f"{spelled('value_range', '--value-range LO HI')} must be two finite numbers with "
                         f"low < high, got {spelled(repr(value_range), f'{lo:g} {hi:g}')}")
    return lo, hi


def quantize(x: torch.Tensor, value_range: Sequence[float] = (-1.0, 1.0)) -> torch.Tensor:
    """Float images in ``value_range`` → uint8, the StyleGAN way.

    ``(x * (255 / (hi - lo)) + (0.5 - lo * 255 / (hi - lo))).clamp(0, 255).to(uint8)``; for
    ``(-1, 1)`` this is exactly StyleGAN's ``(x * 127.5 + 128).clamp(0, 255).to(uint8)``, so
    scoring a generator directly and scoring its samples saved as PNG give the same uint8
    images.  float16/bfloat16 are computed in float32; values outside the range are clamped.
    """
    lo, hi = _check_value_range(value_range)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError(f"quantize() expects a float tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    scale = 255.0 / (hi - lo)
    return (x * scale + (0.5 - lo * scale)).clamp(0, 255).to(torch.uint8)


def _value_range_words(lo: float, hi: float) -> str:
    return spelled(f"value_range=({lo:g}, {hi:g})", f"--value-range {lo:g} {hi:g}")


def _range_hint(observed_min: float, observed_max: float) -> str:
    if observed_min >= -0.01 and observed_max <= 1.01:
        return _value_range_words(0, 1)
    if observed_min >= -1.02 and observed_max <= 1.02:
        return _value_range_words(-1, 1)
    if observed_min >= -2.55 and observed_max <= 257.55:
        return _value_range_words(0, 255)
    return spelled("value_range=(low, high)", "--value-range LOW HIGH") + " matching your data"


def _check_floats(observed_min: float, observed_max: float, finite: bool, value_range: ValueRange,
                  what: str, warn: bool = True) -> None:
    """Reject user floats that are non-finite or outside ``value_range`` by more than 1% of its width."""
    lo, hi = value_range
    if not finite:
        raise InputError(f"{what} holds NaN or infinite values; clean the data before computing metrics")
    tolerance = 0.01 * (hi - lo)
    if observed_min < lo - tolerance or observed_max > hi + tolerance:
        raise InputError(
            f"{what} has float values in [{observed_min:.4g}, {observed_max:.4g}], outside the expected "
            f"{spelled('value_range', 'value range')} ({lo:g}, {hi:g}); pass {_range_hint(observed_min, observed_max)}, "
            "or give uint8 images (0..255)"
        )
    if warn and (lo, hi) == (-1.0, 1.0) and observed_min >= 0.0 and observed_max <= 1.0:
        warnings.warn(
            f"{what} has float values in [{observed_min:.4g}, {observed_max:.4g}] but "
            f"{spelled('value_range', 'the value range')} is (-1, 1); if these are [0, 1] images (e.g. torchvision "
            f"ToTensor), pass {_value_range_words(0, 1)}",
            UserWarning, stacklevel=4,
        )


def _check_tensor_floats(x: torch.Tensor, value_range: ValueRange, what: str, warn: bool = True) -> None:
    if x.numel() == 0:
        return
    finite = bool(torch.isfinite(x).all())
    observed = (float(x.min()), float(x.max())) if finite else (float("nan"), float("nan"))
    _check_floats(*observed, finite, value_range, what, warn)


def _check_tensor_dtype(dtype: torch.dtype, what: str) -> None:
    if dtype == torch.uint8 or (_UINT16 is not None and dtype == _UINT16) or dtype.is_floating_point:
        return
    raise InputError(
        f"{what} has dtype {dtype}; expected uint8 (0..255), uint16 (16-bit) or float in value_range — "
        "convert it, e.g. x.to(torch.uint8) if the values are already 0..255"
    )


def _check_nchw(shape: Sequence[int], what: str, *, single_image_hint: bool = True) -> None:
    shape = tuple(shape)
    if len(shape) == 3 and shape[0] in (1, 3, 4) and single_image_hint:
        raise InputError(f"{what} has shape {shape}, a single C×H×W image; add a batch dimension (x[None])")
    if len(shape) != 4:
        raise InputError(f"{what} has shape {shape}; expected N×C×H×W (4 dimensions) with C in 1, 3, 4")
    if shape[1] not in (1, 3, 4):
        hint = " — it looks channels-last, use x.permute(0, 3, 1, 2)" if shape[3] in (1, 3, 4) else ""
        raise InputError(f"{what} has shape {shape}; expected N×C×H×W with C (dim 1) in 1, 3, 4{hint}")
    if shape[2] == 0 or shape[3] == 0:
        raise InputError(f"{what} has shape {shape}: the images are empty")


def _tensor_to_uint8(x: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    """A checked N×C×H×W tensor (uint8, uint16 or float) → contiguous uint8 N×3×H×W."""
    if x.dtype == torch.uint8:
        pass
    elif x.is_floating_point():
        x = quantize(x, value_range)
    else:  # uint16
        x = ((x.to(torch.int32) * 255 + 32767) // 65535).to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 4:
        x = x[:, :3]
    return x.contiguous()


def _check_array_dtype(dtype: np.dtype, what: str) -> None:
    if (dtype.kind == "u" and dtype.itemsize in (1, 2)) or (dtype.kind == "f" and dtype.itemsize <= 8):
        return
    raise InputError(
        f"{what} has dtype {dtype}; expected uint8 (0..255), uint16 (16-bit) or float in value_range — "
        "convert it, e.g. a.astype(np.uint8) if the values are already 0..255"
    )


def _check_nhwc(shape: Sequence[int], what: str) -> None:
    shape = tuple(shape)
    if len(shape) == 3:
        if shape[2] in (3, 4):
            raise InputError(f"{what} has shape {shape}, a single H×W×C image; add a batch axis (a[None])")
        if shape[1] == 0 or shape[2] == 0:
            raise InputError(f"{what} has shape {shape}: the images are empty")
        return
    if len(shape) != 4:
        raise InputError(f"{what} has shape {shape}; expected N×H×W×C with C in 1, 3, 4, or N×H×W (grayscale)")
    if shape[3] not in (1, 3, 4):
        hint = (" — it looks channels-first; numpy arrays are read as N×H×W×C, so use a.transpose(0, 2, 3, 1) "
                "or pass torch.from_numpy(a)") if shape[1] in (1, 3, 4) else ""
        raise InputError(f"{what} has shape {shape}; expected N×H×W×C with C (last axis) in 1, 3, 4{hint}")
    if shape[1] == 0 or shape[2] == 0:
        raise InputError(f"{what} has shape {shape}: the images are empty")


def _array_to_uint8(a: np.ndarray, value_range: ValueRange) -> torch.Tensor:
    """A checked N×H×W[×C] array → contiguous uint8 N×3×H×W tensor (CPU)."""
    if a.ndim == 3:
        a = a[..., None]
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:
        a = scale_16bit(a)
    a = np.array(a, dtype=a.dtype.newbyteorder("="), copy=True)  # native byte order, writable, contiguous
    return _tensor_to_uint8(torch.from_numpy(a).permute(0, 3, 1, 2), value_range)


def _check_array_floats(a: np.ndarray, value_range: ValueRange, what: str, warn: bool = True) -> None:
    if a.size == 0:
        return
    finite = bool(np.isfinite(a).all())
    observed = (float(a.min()), float(a.max())) if finite else (float("nan"), float("nan"))
    _check_floats(*observed, finite, value_range, what, warn)


# ---------------------------------------------------------------------------------------------
# argument checks


def _check_count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _take(available: int, num_samples: int | None, what: str) -> int:
    """How many images to use: all, or the first ``num_samples`` (error when fewer exist)."""
    if num_samples is None:
        return available
    if num_samples > available:
        raise InputError(
            f"{what}: {spelled(f'num_samples={num_samples}', f'--num-samples {num_samples}')} requested but only "
            f"{available} images found; lower {spelled('num_samples', '--num-samples')} (at most {available}) or add "
            "images"
        )
    return num_samples


def _count_text(n: int, available: int) -> str:
    return f"{n} images" if n == available else f"first {n} of {available} images"


# ---------------------------------------------------------------------------------------------
# image files: folders and zips


class _DecodeFailure:
    """A decode error carried as a value out of a DataLoader worker (torch would re-wrap an exception)."""

    def __init__(self, message: str) -> None:
        self.message = message


def collate_images(items: list) -> ImageBatch | _DecodeFailure:
    """DataLoader collate: H×W×3 uint8 arrays → a stacked N×3×H×W tensor, or a list when sizes differ."""
    for item in items:
        if isinstance(item, _DecodeFailure):
            return item
    images = [torch.from_numpy(item).permute(2, 0, 1) for item in items]
    if all(image.shape == images[0].shape for image in images):
        return torch.stack(images)
    return [image.contiguous() for image in images]


class _FileDataset(Dataset):
    """Image files under a folder, by relative path."""

    def __init__(self, root: str, names: list[str]) -> None:
        self.root, self.names = root, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> np.ndarray | _DecodeFailure:
        path = os.path.join(self.root, self.names[index])
        try:
            return decode_image(path, path)
        except InputError as e:
            return _DecodeFailure(str(e))


def check_member_size(info: zipfile.ZipInfo, label: str) -> None:
    """InputError when an archive member declares more bytes than any image can have
    (:func:`~ganmetrics.imageio.max_image_file_bytes`)."""
    cap = max_image_file_bytes()
    if cap is not None and info.file_size > cap:
        raise InputError(f"{label}: the member declares {info.file_size:,} bytes, more than any image ganmetrics "
                         f"reads ({cap:,} bytes: PIL.Image.MAX_IMAGE_PIXELS × 8 + 1 MiB); refusing to inflate it "
                         "(a zip bomb?) — remove it from the archive")


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    """The bytes of one archive member, refusing a member larger than an image can be
    (:func:`~ganmetrics.imageio.max_image_file_bytes`) before reading it, and one that inflates past its declared
    size while being read (a zip bomb lies about its size): memory stays bounded by the cap."""
    check_member_size(info, label)
    chunks, size = [], 0
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            size += len(chunk)
            if size > info.file_size:
                raise InputError(f"{label}: the member inflates past its declared {info.file_size:,} bytes; the "
                                 "archive is corrupt or malicious — re-create it")
            chunks.append(chunk)
    return b"".join(chunks)


class _ZipDataset(Dataset):
    """Image members of a zip archive; each process opens its own ``ZipFile`` (they are not fork-safe)."""

    def __init__(self, path: str, members: list[tuple[str, int]]) -> None:
        self.path, self.members = path, members
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.members)

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zip=None, _pid=None)

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip

    def __getitem__(self, index: int) -> np.ndarray | _DecodeFailure:
        name, position = self.members[index]
        label = f"{self.path}:{name}"
        try:
            archive = self._archive()
            data = read_member(archive, archive.infolist()[position], label)
        except InputError as e:
            return _DecodeFailure(str(e))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
                NotImplementedError, RuntimeError, ValueError) as e:  # CRC, compression, encryption ...
            return _DecodeFailure(f"{label}: cannot read the zip member ({type(e).__name__}: {e}); "
                                  "re-create the archive or remove the member")
        try:
            return decode_image(data, label)
        except InputError as e:
            return _DecodeFailure(str(e))


def _default_workers(num_workers: int | None) -> int:
    if num_workers is None:
        return min(4, os.cpu_count() or 1)
    return _check_count(num_workers, "num_workers", minimum=0)


def _loader_source(dataset: Dataset, description: str, *, batch_size: int, num_workers: int,
                   shard: Shard = LOCAL, total: int | None = None,
                   name_of: Callable[[int], str] | None = None) -> ImageSource:
    count = len(dataset)
    workers = min(num_workers, math.ceil(count / batch_size))

    def iterate() -> Iterator[ImageBatch]:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                            collate_fn=collate_images)
        failure = None
        batches = iter(loader)
        for batch in batches:
            if isinstance(batch, _DecodeFailure):
                failure = batch
                break
            yield batch
        del batches  # shut the workers down before raising
        if failure is not None:
            raise InputError(failure.message)

    return ImageSource(description, count, iterate, shard, total, name_of)


def list_image_files(folder: str | os.PathLike) -> list[str]:
    """Image files under ``folder``, recursively, as sorted relative POSIX paths.

    Extensions (:data:`IMAGE_EXTENSIONS`) match case-insensitively; hidden files and folders
    (names starting with ".") are skipped; symlinked folders are followed once.
    """
    root = os.fspath(folder)
    names: list[str] = []
    seen: set[str] = set()

    def fail(error: OSError) -> None:
        raise InputError(f"cannot list {error.filename}: {error.strerror or error}; check its permissions")

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        relative = os.path.relpath(dirpath, root)
        for filename in filenames:
            if filename.startswith(".") or not is_image_name(filename):
                continue
            names.append(filename if relative == "." else Path(relative, filename).as_posix())
    names.sort()
    return names


def _local_items(items: list, total: int, shard: Shard) -> list:
    """This rank's items among the first ``total`` (all of them without sharding)."""
    return items[:total] if not shard.active else [items[i] for i in shard.indices(total)]


def _local_rows(total: int, batch_size: int, shard: Shard) -> Iterator[slice | torch.Tensor]:
    """Row selections of this rank's images among ``total``, ``batch_size`` at a time: slices without
    sharding, index tensors with it."""
    if not shard.active:
        for start in range(0, total, batch_size):
            yield slice(start, min(start + batch_size, total))
        return
    indices = torch.from_numpy(shard.indices(total))
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]


def _first_row(rows: slice | torch.Tensor) -> int:
    return rows.start if isinstance(rows, slice) else int(rows[0])


def _no_images_message(what: str, has_files: bool) -> str:
    state = "has no image files" if has_files else "is empty"
    return (f"{what} {state}: looked recursively for {', '.join(IMAGE_EXTENSIONS)} (any letter case; "
            "hidden files and folders skipped); point to the folder or archive that holds the images")


def _folder_source(folder: Path, *, num_samples: int | None, batch_size: int, num_workers: int,
                   shard: Shard = LOCAL) -> ImageSource:
    folder = folder.resolve()
    names = list_image_files(folder)
    if not names:
        has_files = any(files for _, _, files in os.walk(folder))
        raise InputError(_no_images_message(f"folder {folder}", has_files))
    n = _take(len(names), num_samples, f"folder {folder}")
    description = f"folder {folder} ({_count_text(n, len(names))})"
    return _loader_source(_FileDataset(str(folder), _local_items(names, n, shard)), description,
                          batch_size=batch_size, num_workers=num_workers, shard=shard, total=n,
                          name_of=lambda i: str(folder / names[i]))


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_member(name: str) -> bool:
    name = name.replace("\\", "/")
    return name.startswith("/") or bool(_DRIVE.match(name)) or ".." in name.split("/")


def _zip_source(path: Path, *, num_samples: int | None, batch_size: int, num_workers: int,
                shard: Shard = LOCAL) -> ImageSource:
    path = path.resolve()
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{path}: not a readable zip archive ({e}); re-create it with zip or shutil.make_archive") from e
    members = []
    for position, info in enumerate(infos):
        if _unsafe_member(info.filename):
            raise InputError(
                f"{path}: refusing the archive, member {info.filename!r} has an absolute path or a '..' "
                "component; re-create the zip with relative member names"
            )
        parts = info.filename.replace("\\", "/").split("/")
        if info.is_dir() or any(part.startswith(".") for part in parts) or not is_image_name(parts[-1]):
            continue
        check_member_size(info, f"{path}:{info.filename}")  # a bomb is refused before any image is read
        members.append((info.filename, position))
    if not members:
        raise InputError(_no_images_message(f"zip archive {path}", bool(infos)))
    members.sort()
    n = _take(len(members), num_samples, f"zip archive {path}")
    description = f"zip {path} ({_count_text(n, len(members))})"
    return _loader_source(_ZipDataset(str(path), _local_items(members, n, shard)), description,
                          batch_size=batch_size, num_workers=num_workers, shard=shard, total=n,
                          name_of=lambda i: f"{path}:{members[i][0]}")


# ---------------------------------------------------------------------------------------------
# arrays and tensors


def _array_source(a: np.ndarray, what: str, *, num_samples: int | None, batch_size: int,
                  value_range: ValueRange, shard: Shard = LOCAL) -> ImageSource:
    _check_array_dtype(a.dtype, what)
    _check_nhwc(a.shape, what)
    if a.shape[0] == 0:
        raise InputError(f"{what} holds no images (shape {tuple(a.shape)})")
    n = _take(a.shape[0], num_samples, what)
    if a.dtype.kind == "f":
        _check_array_floats(a[:n], value_range, what)

    def iterate() -> Iterator[ImageBatch]:
        for rows in _local_rows(n, batch_size, shard):
            yield _array_to_uint8(a[rows if isinstance(rows, slice) else rows.numpy()], value_range)

    return ImageSource(f"{what} {tuple(a.shape)} ({_count_text(n, a.shape[0])})", shard.count(n), iterate, shard, n)


def _array_file_source(path: Path, **kwargs: Any) -> ImageSource:
    path = path.resolve()
    advice = ("ganmetrics reads arrays with allow_pickle=False; save a plain uint8 N×H×W×C array, "
              "e.g. np.save(path, images.astype(np.uint8))")
    try:
        if path.suffix.lower() == ".npy":
            array, what = np.load(path, mmap_mode="r", allow_pickle=False), f"npy {path}"
        else:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.files)
                if "mu" in keys and "sigma" in keys:
                    raise InputError(
                        f"{path} holds statistics (mu, sigma), not images; "
                        + spelled("pass it where statistics are accepted (the real/reference side of gm.fid, or "
                                  "gm.load_stats)", "give it where statistics are accepted: as B, the reference set")
                    )
                if len(keys) == 1:
                    key = keys[0]
                else:
                    key = next((k for k in _ARRAY_KEYS if k in keys), None)
                    if key is None:
                        raise InputError(
                            f"{path} holds arrays {keys}; expected a single array or one named "
                            f"{', '.join(map(repr, _ARRAY_KEYS))} — re-save it with np.savez(path, images=...)"
                        )
                array, what = archive[key], f"npz {path}[{key!r}]"
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{path}: cannot load the array ({type(e).__name__}: {e}); {advice}") from e
    return _array_source(array, what, **kwargs)


def _tensor_source(x: torch.Tensor, *, num_samples: int | None, batch_size: int, value_range: ValueRange,
                   device: torch.device | None, shard: Shard = LOCAL) -> ImageSource:
    what = f"{str(x.dtype).replace('torch.', '')} tensor"
    _check_tensor_dtype(x.dtype, what)
    _check_nchw(x.shape, what)
    if x.shape[0] == 0:
        raise InputError(f"{what} holds no images")
    x = x.detach()
    n = _take(x.shape[0], num_samples, what)
    if x.is_floating_point():
        _check_tensor_floats(x[:n], value_range, what)
    target = device if device is not None else x.device

    def iterate() -> Iterator[ImageBatch]:
        for rows in _local_rows(n, batch_size, shard):
            rows = rows if isinstance(rows, slice) else rows.to(x.device)
            yield _tensor_to_uint8(x[rows], value_range).to(target)

    return ImageSource(f"{what} {tuple(x.shape)} on {x.device} ({_count_text(n, x.shape[0])})", shard.count(n),
                       iterate, shard, n)


# ---------------------------------------------------------------------------------------------
# iterables of batches


def _batch_images(raw: Any, what: str) -> torch.Tensor | np.ndarray | list:
    """The image part of one batch: a tensor, an array, or a list of C×H×W tensors."""
    if isinstance(raw, (torch.Tensor, np.ndarray)):
        return raw
    if isinstance(raw, dict):
        key = next((k for k in _IMAGE_KEYS if k in raw), None)
        if key is None:
            raise InputError(f"{what} is a dict with keys {list(raw)}; expected the images under "
                             f"{', '.join(map(repr, _IMAGE_KEYS))}")
        return _batch_images(raw[key], f"{what}[{key!r}]")
    if isinstance(raw, (list, tuple)) and raw:
        if all(isinstance(item, torch.Tensor) and item.ndim == 3 for item in raw):
            return list(raw)  # a list of single images
        first = raw[0]
        if isinstance(first, (torch.Tensor, np.ndarray)):
            return first
        if isinstance(first, (list, tuple)) and first and all(
                isinstance(item, torch.Tensor) and item.ndim == 3 for item in first):
            return list(first)
        raise InputError(f"{what} is {_article(type(raw).__name__)} whose first element is "
                         f"{_article(type(first).__name__)}; "
                         "expected images (a tensor N×C×H×W or an array N×H×W×C) first, e.g. (images, labels)")
    raise InputError(f"{what} is {_article(type(raw).__name__)}; expected a tensor N×C×H×W, an array N×H×W×C, "
                     "or a tuple/list/dict holding one")


def _convert_batch(images: torch.Tensor | np.ndarray | list, value_range: ValueRange,
                   what: str, warn: bool = False) -> ImageBatch:
    """Check and convert one batch; ``warn`` allows the "[0, 1] data with value_range (-1, 1)" warning."""
    if isinstance(images, np.ndarray):
        _check_array_dtype(images.dtype, what)
        _check_nhwc(images.shape, what)
        if images.dtype.kind == "f":
            _check_array_floats(images, value_range, what, warn)
        return _array_to_uint8(images, value_range)
    if isinstance(images, torch.Tensor):
        _check_tensor_dtype(images.dtype, what)
        _check_nchw(images.shape, what)
        images = images.detach()
        if images.is_floating_point():
            _check_tensor_floats(images, value_range, what, warn)
        return _tensor_to_uint8(images, value_range)
    if isinstance(images, (list, tuple)) and not images:
        raise InputError(f"{what} is an empty {type(images).__name__}: no images")
    if not isinstance(images, (list, tuple)) or not all(isinstance(image, torch.Tensor) for image in images):
        found = type(images).__name__ if not isinstance(images, (list, tuple)) else (
            f"{type(images).__name__} of {', '.join(sorted({type(i).__name__ for i in images}))}")
        raise InputError(f"{what} is {_article(found)}; expected a batch of images: a tensor N×C×H×W, an array "
                         "N×H×W×C or a list of C×H×W tensors (a folder, file or generator is scored with "
                         "gm.fid / gm.evaluate, not fed batch by batch)")
    converted = [_convert_batch(image[None], value_range, f"{what} image {i}", warn and i == 0)[0]
                 for i, image in enumerate(images)]
    if converted and all(image.shape == converted[0].shape for image in converted):
        return torch.stack(converted)
    return converted


def _article(noun: str) -> str:
    """``noun`` with "a" or "an": "an int", "a str", "an ndarray"."""
    return f"{'an' if noun[:1].lower() in 'aeio' or noun.startswith(('nd', 'NaN')) else 'a'} {noun}"


def _select(chunk: ImageBatch, keep: np.ndarray) -> ImageBatch:
    """The images of ``chunk`` where ``keep`` (bool per image) is true."""
    if isinstance(chunk, torch.Tensor):
        return chunk[torch.from_numpy(keep).to(chunk.device)]
    return [image for image, kept in zip(chunk, keep, strict=True) if kept]


def to_uint8_batch(images: torch.Tensor | np.ndarray | list, value_range: Sequence[float] = (-1.0, 1.0),
                   what: str = "images", warn: bool = False) -> ImageBatch:
    """One batch as uint8 ``N×3×H×W``: a tensor N×C×H×W (uint8, uint16 or float in ``value_range``), an
    array N×H×W×C, or a list of C×H×W tensors — checked and converted as every source's batches are.
    ``warn``: warn when floats lie in [0, 1] while ``value_range`` is (-1, 1) (a source warns on its first batch)."""
    return _convert_batch(images, _check_value_range(value_range), what, warn)


def _iterable_source(iterable: Iterable, description: str, *, num_images: int | None, num_samples: int | None,
                     batch_size: int, value_range: ValueRange, device: torch.device | None,
                     shard: Shard = LOCAL) -> ImageSource:
    """Batches of an iterable; with sharding every rank reads all of it and keeps its own images."""
    one_shot = isinstance(iterable, Iterator)

    def iterate() -> Iterator[ImageBatch]:
        count = 0  # images of the whole set so far
        for index, raw in enumerate(iterable):
            what = f"batch {index} of {description}"
            batch = _convert_batch(_batch_images(raw, what), value_range, what, warn=index == 0)
            for start in range(0, len(batch), batch_size):
                chunk = batch[start:start + batch_size]
                if num_samples is not None:
                    chunk = chunk[:num_samples - count]
                first, count = count, count + len(chunk)
                if shard.active:
                    chunk = _select(chunk, shard.owns(np.arange(first, count)))
                if device is not None:
                    chunk = chunk.to(device) if isinstance(chunk, torch.Tensor) else [c.to(device) for c in chunk]
                if len(chunk):
                    yield chunk
                if count == num_samples:
                    return
        if count == 0:
            hint = (" (it is a one-shot iterator, already used up; pass a re-iterable such as a list or a "
                    "DataLoader)") if one_shot else ""
            raise InputError(f"{description} yielded no images{hint}")
        if num_samples is not None and count < num_samples:
            raise InputError(f"{description} yielded only {count} images but num_samples={num_samples} was "
                             f"requested; lower num_samples or give more data")

    total = num_samples if num_samples is not None else num_images
    return ImageSource(description, None if total is None else shard.count(total), iterate, shard, total)


# ---------------------------------------------------------------------------------------------
# generators


def _attribute(G: Any, name: str) -> Any:
    value = getattr(G, name, None)
    if value is None and isinstance(getattr(G, "module", None), nn.Module):  # DataParallel / DDP
        value = getattr(G.module, name, None)
    return value


def _module_placement(G: Any) -> tuple[torch.device, torch.dtype]:
    """Where (and in which float dtype) a module's parameters live; the CPU and float32 otherwise."""
    if isinstance(G, nn.Module):
        tensors = list(itertools.chain(G.parameters(), G.buffers()))
        for tensor in tensors:
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
        if tensors:
            return tensors[0].device, torch.float32
    return torch.device("cpu"), torch.float32


def _generator_source(G: Callable, *, num_samples: int | None, batch_size: int, seed: int,
                      value_range: ValueRange, device: torch.device | None, z_dim: int | None,
                      shard: Shard = LOCAL) -> ImageSource:
    name = type(G).__name__ if isinstance(G, nn.Module) else getattr(G, "__name__", type(G).__name__)
    if num_samples is None:
        raise InputError(f"generator {name}: pass num_samples= (how many images to generate)")
    if z_dim is None:
        z_dim = _attribute(G, "z_dim")
        if z_dim is None:
            raise InputError(f"generator {name} has no z_dim attribute; pass z_dim= (the latent size)")
    z_dim = _check_count(int(z_dim) if isinstance(z_dim, torch.Tensor) else z_dim, "z_dim", minimum=1)
    num_classes = int(_attribute(G, "num_classes") or 0)
    c_dim = int(_attribute(G, "c_dim") or 0) if not num_classes else 0
    target, dtype = _module_placement(G)
    if device is not None:
        target = device
    conditioning = (f", {num_classes} classes" if num_classes else "") + (f", c_dim={c_dim}" if c_dim else "")
    description = f"generator {name} (z_dim={z_dim}{conditioning}, seed={seed}, {num_samples} samples)"

    def iterate() -> Iterator[ImageBatch]:
        call = UntouchedCall(G, seed, target)
        rng = torch.Generator().manual_seed(seed)
        latents = torch.randn(num_samples, z_dim, generator=rng)  # 50,000 × 512 float32: 100 MB
        labels = torch.randint(0, num_classes or c_dim, (num_samples,), generator=rng) if num_classes or c_dim \
            else None
        for rows in _local_rows(num_samples, batch_size, shard):
            z = latents[rows]
            size, first = len(z), _first_row(rows)
            args = [z.to(target, dtype)]
            if num_classes:
                args.append(labels[rows].to(target))
            elif c_dim:  # StyleGAN2-ADA convention: one-hot float labels
                args.append(torch.nn.functional.one_hot(labels[rows], c_dim).to(target, dtype))
            out = call(*args)
            what = f"generator {name} (batch of {size} starting at sample {first})"
            if not isinstance(out, torch.Tensor):
                raise InputError(f"{what} returned {_article(type(out).__name__)}; expected a float tensor N×C×H×W in "
                                 f"value_range — wrap G to return only the images")
            if not out.is_floating_point():
                raise InputError(f"{what} returned dtype {out.dtype}; expected float images in value_range")
            _check_nchw(out.shape, f"{what} output", single_image_hint=False)
            if out.shape[0] != size:
                raise InputError(f"{what} returned {out.shape[0]} images (shape {list(out.shape)}) for {size} latents")
            if not bool(torch.isfinite(out).all()):
                raise InputError(f"{what} returned NaN or infinite values; check the model/checkpoint")
            yield _tensor_to_uint8(out, value_range)

    return ImageSource(description, shard.count(num_samples), iterate, shard, num_samples,
                       lambda i: f"sample {i} (seed {seed}) of generator {name}")


# ---------------------------------------------------------------------------------------------
# paths


def _reference_names() -> str:
    try:
        from .reference import available_references

        names = sorted(available_references())
    except (OSError, ValueError, KeyError, TypeError):  # an unreadable manifest only loses the hint
        names = []
    return f"; bundled reference sets: {', '.join(names)}" if names else ""


def _path_source(source: str | os.PathLike, **kwargs: Any) -> ImageSource:
    text = os.fspath(source)
    path = Path(os.path.expanduser(text))
    file_kwargs = {k: kwargs[k] for k in ("num_samples", "batch_size", "num_workers", "shard")}
    array_kwargs = {k: kwargs[k] for k in ("num_samples", "batch_size", "value_range", "shard")}
    if path.is_dir():
        return _folder_source(path, **file_kwargs)
    if path.exists():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return _zip_source(path, **file_kwargs)
        if suffix in (".npz", ".npy"):
            return _array_file_source(path, **array_kwargs)
        if not path.is_file():
            raise InputError(f"{path} is not a regular file or folder")
        raise InputError(f"{path} is a file but not a folder of images, a .zip, .npz or .npy; "
                         "put single images in a folder")
    separators = {"/", os.sep, os.altsep or "/"}
    looks_like_file = path.suffix.lower() in (".zip", ".npz", ".npy") + IMAGE_EXTENSIONS
    if isinstance(source, str) and not any(s in text for s in separators) and not looks_like_file:
        raise InputError(
            f"{text!r}: no such file or folder in {os.getcwd()}; expected a folder of images, a .zip, "
            f".npz or .npy file, a statistics file, or a bundled reference set name{_reference_names()}"
        )
    raise SourceNotFoundError(f"{path}: no such file or folder; check the path (relative paths start at {os.getcwd()})")


# ---------------------------------------------------------------------------------------------


def _has_distributed_sampler(loader: DataLoader) -> bool:
    from torch.utils.data.distributed import DistributedSampler

    samplers = (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None))
    return any(isinstance(sampler, DistributedSampler) for sampler in samplers)


def is_generator(source: Any) -> bool:
    """True when :func:`open_source` samples ``source`` as a generator (an ``nn.Module``, or a callable
    that is not an iterable, array, tensor or path); such sources need ``num_samples``."""
    if isinstance(source, (ImageSource, str, os.PathLike, torch.Tensor, np.ndarray, bytes, bytearray)):
        return False
    return isinstance(source, nn.Module) or (callable(source) and not isinstance(source, Iterable))


def open_source(source: Any, *, num_samples: int | None = None, batch_size: int = 64, seed: int = 0,
                value_range: Sequence[float] = (-1.0, 1.0), device: torch.device | str | None = None,
                num_workers: int | None = None, z_dim: int | None = None, shard: Shard = LOCAL) -> ImageSource:
    """Any image input → an :class:`ImageSource` of uint8 N×3×H×W batches (at most ``batch_size`` each).

    ``source``: a folder (recursive, sorted by relative path), a ``.zip``, a ``.npz``/``.npy``
    uint8 N×H×W[×C] array, a numpy array (NHWC; uint8, uint16 or float in ``value_range``), a
    ``torch.Tensor`` (NCHW; same dtypes), a ``DataLoader``/iterable of such batches (or of
    tuples/lists/dicts holding them first / under "image", "images", "img"), or a generator:
    an ``nn.Module`` or callable called as ``G(z)``, or ``G(z, labels)`` when it has
    ``num_classes`` (int labels) or ``c_dim`` (one-hot labels, the StyleGAN2-ADA convention).

    ``num_samples`` takes the first N images (required for generators).  Files are decoded in
    ``num_workers`` DataLoader worker processes (default ``min(4, cpu_count)``; 0 decodes in
    this process) and yielded on the CPU; tensors and generator samples are yielded on
    ``device`` (default: where the tensor / the module's parameters live).

    Generators: all latents ``z ~ N(0, I)`` ``[num_samples, z_dim]``, then all labels, are drawn
    on the CPU from ``torch.Generator().manual_seed(seed)`` before the first batch, so the images
    depend on the seed alone — not on the device or the batch size — and are exactly those of a
    zoo model's ``G.sample(num_samples, seed)`` (``ganmetrics sample`` writes them as PNGs).
    ``G`` is called in eval mode under ``torch.inference_mode()``, its noise (if it draws any from the global
    RNG) from a stream seeded by ``seed``; the module's mode, parameters and buffers and the caller's RNG
    states are left exactly as they were (:mod:`ganmetrics.untouched`).

    ``shard``: yield only this process's images of the set (:class:`ganmetrics.distributed.Shard`;
    ``num_samples`` still counts the whole set).  Files, arrays and tensors are read only for the
    rank's images; a generator draws every latent but generates only its rank's images; an iterable
    is read whole by every rank, each keeping its own images — so a DataLoader given under sharding
    must not have a ``DistributedSampler`` (an error says so).
    """
    batch_size = _check_count(batch_size, "batch_size", minimum=1)
    if num_samples is not None:
        num_samples = _check_count(num_samples, "num_samples", minimum=1)
    value_range = _check_value_range(value_range)
    workers = _default_workers(num_workers)
    target = check_device(device) if device is not None else None
    seed = _check_count(seed, "seed", minimum=0)

    if isinstance(source, ImageSource):
        if source.shard.active:
            raise InputError(f"{source.description} is already one rank's share of a set; pass the source itself")
        return _iterable_source(source, source.description, num_images=source.num_images, num_samples=num_samples,
                                batch_size=batch_size, value_range=value_range, device=target, shard=shard)
    if isinstance(source, (str, os.PathLike)):
        return _path_source(source, num_samples=num_samples, batch_size=batch_size, num_workers=workers,
                            value_range=value_range, shard=shard)
    if isinstance(source, torch.Tensor):
        return _tensor_source(source, num_samples=num_samples, batch_size=batch_size, value_range=value_range,
                              device=target, shard=shard)
    if isinstance(source, np.ndarray):
        what = f"{source.dtype} array"
        return _array_source(source, what, num_samples=num_samples, batch_size=batch_size, value_range=value_range,
                             shard=shard)
    if is_generator(source):
        return _generator_source(source, num_samples=num_samples, batch_size=batch_size, seed=seed,
                                 value_range=value_range, device=target, z_dim=z_dim, shard=shard)
    if isinstance(source, (bytes, bytearray)):
        raise InputError("got bytes as an image source; pass a path, an array or a tensor")
    if isinstance(source, Iterable):
        name = type(source).__name__
        description = f"{name} of batches" if not isinstance(source, DataLoader) else (
            f"DataLoader over {type(source.dataset).__name__}")
        if shard.active and isinstance(source, DataLoader) and _has_distributed_sampler(source):
            raise InputError(
                f"{description} uses a DistributedSampler, but ganmetrics shards the images itself under torchrun: "
                "pass a DataLoader without it (every rank reads it and keeps its own images), or feed each rank's "
                "batches to a metric object (ganmetrics.FID(...).update) instead")
        return _iterable_source(source, description, num_images=None, num_samples=num_samples,
                                batch_size=batch_size, value_range=value_range, device=target, shard=shard)
    raise InputError(
        f"cannot read images from {_article(type(source).__name__)}; expected a folder, .zip, .npz/.npy path, a numpy "
        "array, a torch.Tensor, a DataLoader/iterable of batches, or a generator (nn.Module / callable)"
    )


__all__ = ["IMAGE_EXTENSIONS", "ImageBatch", "ImageSource", "decode_image", "is_generator", "list_image_files",
           "open_source", "quantize", "to_uint8_batch"]
