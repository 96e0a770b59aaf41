"""Pixel values: dtype, layout and range checks, and the conversion of every kind of batch to uint8 N×3×H×W —
grayscale repeated to 3 channels, alpha dropped, 16-bit scaled, floats quantised the StyleGAN way."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError, spelled
from .base import ValueRange

_UINT16 = getattr(torch, "uint16", None)  # torch >= 2.3


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


def _check_floats(x: torch.Tensor, value_range: ValueRange, what: str, warn: bool = True) -> None:
    """Reject user floats that are non-finite or outside ``value_range`` by more than 1% of its width; warn when
    (-1, 1) is assumed for what look like [0, 1] images."""
    if x.numel() == 0:
        return
    lo, hi = value_range
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{what} holds NaN or infinite values; clean the data before computing metrics")
    observed_min, observed_max = float(x.min()), float(x.max())
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
            UserWarning, stacklevel=3,
        )


def _check_dtype(dtype: torch.dtype | None, what: str, *, shown: object = None,
                 advice: str = "x.to(torch.uint8)") -> None:
    """uint8, uint16 or float pixels; otherwise an error naming ``shown`` (default: the dtype)."""
    if dtype is not None and (dtype == torch.uint8 or (_UINT16 is not None and dtype == _UINT16)
                              or dtype.is_floating_point):
        return
    raise InputError(
        f"{what} has dtype {dtype if shown is None else shown}; expected uint8 (0..255), uint16 (16-bit) or float in "
        f"value_range — convert it, e.g. {advice} if the values are already 0..255"
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


def _torch_dtype(dtype: np.dtype) -> torch.dtype | None:
    """The tensor dtype a numpy array of ``dtype`` becomes, None when torch has none."""
    try:
        return torch.from_numpy(np.empty(0, dtype=dtype.newbyteorder("="))).dtype
    except (TypeError, ValueError):
        return None


def _as_tensor(a: np.ndarray) -> torch.Tensor:
    """A numpy array as a tensor over the same memory where it can be (native byte order), for the checks: numpy
    arrays are checked as tensors, so every check exists once."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    with warnings.catch_warnings():  # a read-only array (np.load mmap_mode="r"): the checks only read
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _check_array_dtype(dtype: np.dtype, what: str) -> None:
    _check_dtype(_torch_dtype(dtype), what, shown=dtype, advice="a.astype(np.uint8)")


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
    """A checked N×H×W[×C] array → contiguous uint8 N×3×H×W tensor (CPU), through the tensor conversion."""
    if a.ndim == 3:
        a = a[..., None]
    a = np.array(a, dtype=a.dtype.newbyteorder("="), copy=True)  # native byte order, writable, contiguous
    return _tensor_to_uint8(torch.from_numpy(a).permute(0, 3, 1, 2), value_range)
