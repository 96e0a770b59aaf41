"""The protocols: how uint8 images become the Inception network's 299×299 float input.

Every protocol takes uint8 RGB images ``[N, 3, H, W]`` and returns float32
``[N, 3, 299, 299]`` normalised to about [-1, 1] (DESIGN.md §2):

============  ==============================================================  ======================
protocol      resize to 299×299, then normalise                               reproduces
============  ==============================================================  ======================
``tf``        TF1 bilinear (source coordinate ``i·in/out``, no half pixel,    TTUR, torch-fidelity,
              edge clamp) on float32; ``(x − 128) / 128``                     StyleGAN2-ADA metrics
``clean``     PIL bicubic per channel on float32 (mode ``F``), clipped to     clean-fid ``clean``
              [0, 255], not re-quantised; ``(x − 128) / 128``
``pytorch-fid`` ``x/255``, ``F.interpolate(bilinear, align_corners=False)``;  pytorch-fid
              ``2x − 1``
============  ==============================================================  ======================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ProtocolError

INCEPTION_SIZE = 299
DEFAULT_PROTOCOL = "tf"


def tf1_bilinear_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)`` of a float ``[N, C, H, W]`` batch.

    Output pixel ``i`` samples the source at ``s = i · (in/out)`` (float32, no half-pixel
    offset): ``lo = ⌊s⌋``, ``hi = min(lo + 1, in − 1)``, weight ``s − lo``.  Columns are
    interpolated first, then rows, each as ``a + (b − a)·t`` like TF's kernel, so the result
    is bit-identical to it (and to torch-fidelity's port) on the CPU.
    """

    def axis(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        src = torch.arange(size, dtype=torch.float32, device=x.device) * scale.to(x.device)
        lo = src.long()
        return lo, (lo + 1).clamp_max(n_in - 1), (src - lo.float()).to(x.dtype)

    x_lo, x_hi, dx = axis(x.shape[3])
    y_lo, y_hi, dy = axis(x.shape[2])
    left, right = x.index_select(3, x_lo), x.index_select(3, x_hi)
    rows = left + (right - left) * dx
    top, bottom = rows.index_select(2, y_lo), rows.index_select(2, y_hi)
    return top + (bottom - top) * dy[:, None]


def pil_bicubic_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """clean-fid's resize: each channel as a float32 PIL image (mode ``F``), bicubic, clipped to [0, 255]."""
    images = x.detach().to("cpu", torch.float32).numpy()
    out = np.empty((images.shape[0], images.shape[1], size, size), dtype=np.float32)
    for n, image in enumerate(images):
        for c, channel in enumerate(image):
            resized = Image.fromarray(channel, mode="F").resize((size, size), resample=Image.BICUBIC)
            out[n, c] = np.asarray(resized).clip(0, 255)
    return torch.from_numpy(out).to(x.device)


def _bilinear(x: torch.Tensor, size: int, antialias: bool = False) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


def _tf(x: torch.Tensor) -> torch.Tensor:
    return (tf1_bilinear_resize(x.float()) - 128) / 128


def _clean(x: torch.Tensor) -> torch.Tensor:
    return (pil_bicubic_resize(x) - 128) / 128


def _pytorch_fid(x: torch.Tensor) -> torch.Tensor:
    return 2 * _bilinear(x.float() / 255, INCEPTION_SIZE) - 1


def _torchmetrics(x: torch.Tensor) -> torch.Tensor:
    """torchmetrics ≥ 1.8's default (``antialias=True``): torch's antialiased bilinear resize of the uint8 values
    as float, then ``(x − 128) / 128``."""
    return (_bilinear(x.float(), INCEPTION_SIZE, antialias=True) - 128) / 128


#: each protocol's resize alone, for extractors other than Inception: float ``[N, 3, H, W]`` → ``[N, 3, S, S]``
RESIZES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "tf": tf1_bilinear_resize,
    "clean": pil_bicubic_resize,
    "pytorch-fid": _bilinear,
    "torchmetrics": lambda x, size: _bilinear(x, size, antialias=True),
}


def resize(images: torch.Tensor, protocol: str, size: int) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` → float32 ``[N, 3, size, size]`` in [0, 255] units, resized as ``protocol`` resizes
    (the input of an extractor that declares its size; Inception's own path is :func:`preprocess`)."""
    return RESIZES[check_protocol(protocol)](images.float(), size)


PROTOCOLS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tf": _tf,
    "clean": _clean,
    "pytorch-fid": _pytorch_fid,
    "torchmetrics": _torchmetrics,
}
PROTOCOL_REFERENCES = {
    "tf": "TTUR / torch-fidelity / StyleGAN2-ADA (TF1 bilinear resize)",
    "clean": "clean-fid mode='clean' (PIL bicubic resize)",
    "pytorch-fid": "pytorch-fid (torch bilinear resize)",
    "torchmetrics": "torchmetrics >= 1.8 FrechetInceptionDistance default (antialiased bilinear resize)",
}


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if known, else raise :class:`ProtocolError` listing the known ones."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def preprocess(images: torch.Tensor | Sequence[torch.Tensor], protocol: str = DEFAULT_PROTOCOL) -> torch.Tensor:
    """uint8 RGB images → float32 ``[N, 3, 299, 299]`` network input under ``protocol``.

    ``images`` is a uint8 ``[N, 3, H, W]`` tensor or a list of ``[3, H, W]`` tensors of
    different sizes (each is resized on its own, so the result is the same either way).
    """
    transform = PROTOCOLS[check_protocol(protocol)]
    if isinstance(images, torch.Tensor):
        return transform(images)
    return torch.cat([transform(image[None]) for image in images])
