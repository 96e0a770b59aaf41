"""Decoding one image file into a uint8 ``H×W×3`` array.

The rule for ordinary 8-bit files (RGB, RGBA, L, P, LA, CMYK, JPEG, ...) is the one the peer
libraries (pytorch-fid, torch-fidelity, clean-fid) use: ``np.asarray(Image.open(f).convert("RGB"))``
— so alpha is dropped, not composited over a background, and the EXIF orientation is ignored.

Where Pillow would lose information we do better:

* 16-bit images are scaled to 8 bits with ``round(x * 255 / 65535)``.  Pillow's own
  ``convert("RGB")`` *clips* ``I;16`` (everything above 255 becomes white) and truncates
  16-bit colour PNGs to their high byte.  Scaling applies to 16-bit grayscale in any format
  Pillow opens as ``I;16`` and to 16-bit RGB/RGBA and gray+alpha PNGs; other 16-bit colour formats (e.g. TIFF)
  are reduced to 8 bits by Pillow itself.
* ``I`` (32-bit integer) images are read as 16-bit values (clipped to 0..65535) and scaled
  the same way; ``F`` (32-bit float) images are read as 0..255 values (Pillow's convention),
  rounded and clipped.
"""

from __future__ import annotations

import io
import os
import stat
import warnings

import numpy as np
from PIL import Image

from .errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

# 16-bit colour PNGs: Pillow decodes these raw modes to 8 bits by keeping the high byte of each
# big-endian sample.  Decoding a second time with the little-endian raw mode keeps the *other*
# byte (the low one), which gives back the exact 16-bit values (same filter stride, same bits).
_PNG16_LOW_BYTE = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


def is_image_name(name: str) -> bool:
    """Whether ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitively)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def scale_16bit(x: np.ndarray) -> np.ndarray:
    """uint16 values → uint8 with ``round(x * 255 / 65535)`` (exact integer arithmetic)."""
    x = x.astype(np.uint32)
    return ((x * 255 + 32767) // 65535).astype(np.uint8)


def _to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _tile_rawmode(image: Image.Image) -> str | None:
    tiles = getattr(image, "tile", None) or []
    if len(tiles) != 1:
        return None
    args = tiles[0].args
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else None


def _check_tiff_coverage(image: Image.Image) -> None:
    """Refuse a TIFF whose strips or tiles leave part of the image undefined.

    Pillow decodes uncompressed TIFFs itself, one tile per strip (per band when the TIFF is planar),
    and leaves the pixels no strip covers black: a corrupt ImageLength or a missing StripOffsets
    entry would silently decode to black rows — and a few hundred bytes could claim ~89 M pixels.
    libtiff, which decodes compressed TIFFs, refuses such files itself.
    """
    if image.format != "TIFF" or any(tile.codec_name == "libtiff" for tile in image.tile):
        return
    width, height = image.size
    covered: dict[object, int] = {}  # pixels covered, per band (planar TIFFs) or all bands at once
    for tile in image.tile:
        x0, y0, x1, y1 = tile.extents
        band = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        area = max(0, min(x1, width) - max(x0, 0)) * max(0, min(y1, height) - max(y0, 0))
        covered[band] = covered.get(band, 0) + area
    bands = len(image.getbands()) if image.tag_v2.get(284) == 2 else 1  # PlanarConfiguration
    if len(covered) < bands or any(area < width * height for area in covered.values()):
        held = min(covered.values(), default=0) if len(covered) >= bands else 0
        raise ValueError(f"the TIFF's strips/tiles cover only {held} of its {width}×{height} pixels")


def _decode_png16_gray_alpha(data: bytes | str) -> np.ndarray:
    """A 16-bit gray+alpha PNG (Pillow: mode RGBA, rawmode ``LA;16B``, keeping the high bytes) at full
    precision: read as raw ``RGBA`` (the same 4 bytes per pixel), gray = R·256 + G; scaled, alpha dropped."""
    with _open(data) as image:
        tile = image.tile[0]
        args = "RGBA" if isinstance(tile.args, str) else ("RGBA", *tile.args[1:])
        image.tile = [tile._replace(args=args)]
        image.load()
        raw = np.asarray(image).astype(np.uint16)
    return _to_rgb(scale_16bit(raw[:, :, 0] * 256 + raw[:, :, 1]))


def _decode_png16(data: bytes | str, rawmode: str) -> np.ndarray:
    """A 16-bit RGB/RGBA PNG at full precision, scaled to uint8 RGB (alpha dropped)."""
    bytes_ = []
    for raw in (rawmode, _PNG16_LOW_BYTE[rawmode]):
        with _open(data) as image:
            tile = image.tile[0]
            args = raw if isinstance(tile.args, str) else (raw, *tile.args[1:])
            image.tile = [tile._replace(args=args)]
            image.load()
            bytes_.append(np.asarray(image)[:, :, :3].astype(np.uint16))
    high, low = bytes_
    return scale_16bit(high * 256 + low)


#: bytes per pixel of the largest uncompressed image layout Pillow reads (16-bit RGBA), plus room for headers
_BYTES_PER_PIXEL, _HEADER_BYTES = 8, 1 << 20


def max_image_file_bytes() -> int | None:
    """The largest image file worth reading: an uncompressed 16-bit RGBA image of ``PIL.Image.MAX_IMAGE_PIXELS``
    pixels (the decoder's own cap), plus 1 MiB of headers — 717 MB at Pillow's default; ``None`` when the user
    lifted that cap (``MAX_IMAGE_PIXELS = None``).  Archive members declared larger are refused unread."""
    pixels = Image.MAX_IMAGE_PIXELS
    return None if pixels is None else int(pixels) * _BYTES_PER_PIXEL + _HEADER_BYTES


def _open(data: bytes | str) -> Image.Image:
    return Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)


def _convert(image: Image.Image) -> np.ndarray:
    """A loaded Pillow image → uint8 H×W×3."""
    mode = image.mode
    if mode.startswith("I;16"):
        return _to_rgb(scale_16bit(np.asarray(image)))
    if mode == "I":
        return _to_rgb(scale_16bit(np.clip(np.asarray(image), 0, 65535)))
    if mode == "F":
        values = np.asarray(image)
        if not np.isfinite(values).all():
            raise ValueError("the float image holds NaN or infinite values")
        return _to_rgb(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    with warnings.catch_warnings():
        # "Palette images with Transparency expressed in bytes should be converted to RGBA":
        # the transparency is dropped either way, like the peers do.
        warnings.filterwarnings("ignore", message="Palette images with Transparency", category=UserWarning)
        try:
            rgb = image.convert("RGB")
        except ValueError:  # modes without a direct path to RGB (e.g. "La")
            rgb = image.convert("RGBA").convert("RGB")
    return np.array(rgb)  # a writable copy (np.asarray gives a read-only view)


def decode_image(data: bytes | str | os.PathLike, name: str) -> np.ndarray:
    """Decode one image (file path or the file's bytes) into a uint8 ``H×W×3`` array.

    ``name`` is what error messages call the file (a path, or ``archive.zip:member.png``).
    Any failure — empty or truncated file, unknown format, an image larger than
    ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's decompression-bomb guard, warning included) —
    raises :class:`~ganmetrics.errors.InputError` naming the file.  Conversions: see the
    module docstring (alpha dropped, not composited; 16-bit scaled, not clipped).
    """
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if isinstance(data, bytes) and not data:
        raise InputError(f"{name}: the file is empty (0 bytes); remove it or replace it with a valid image")
    if isinstance(data, str):
        try:
            info = os.stat(data)
        except OSError as e:
            raise InputError(f"{name}: cannot read the file ({e.strerror or e}); check it exists and is readable") from e
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "a socket or device"
            raise InputError(f"{name}: not a regular file but {kind}; only image files are read: remove it or "
                             "rename it without an image extension")
        if info.st_size == 0:
            raise InputError(f"{name}: the file is empty (0 bytes); remove it or replace it with a valid image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open(data) as image:
                _check_tiff_coverage(image)
                rawmode = _tile_rawmode(image) if image.format == "PNG" else None  # before load() clears it
                if rawmode in _PNG16_LOW_BYTE:
                    array = _decode_png16(data, rawmode)
                elif rawmode == "LA;16B":
                    array = _decode_png16_gray_alpha(data)
                else:
                    image.load()
                    array = _convert(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(
            f"{name}: the image is too large for Pillow's decompression-bomb guard ({e}); if you trust "
            "the file, raise PIL.Image.MAX_IMAGE_PIXELS (or set it to None) before calling ganmetrics"
        ) from e
    except Image.UnidentifiedImageError as e:  # its message names a BytesIO object, not the file
        raise InputError(f"{name}: cannot decode the image: not in a format Pillow reads (PNG, JPEG, BMP, WebP, "
                         "TIFF ...); the file is corrupt or mislabelled — remove or re-save it") from e
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, struct.error ... on bad files
        raise InputError(
            f"{name}: cannot decode the image ({type(e).__name__}: {e}); the file is corrupt, truncated "
            "or not in a format Pillow reads — remove or re-save it"
        ) from e
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:  # defensive: should not happen
        raise InputError(f"{name}: decoded to an unexpected array {array.dtype} {array.shape}; re-save it as PNG")
    return array


__all__ = ["IMAGE_EXTENSIONS", "decode_image", "is_image_name", "scale_16bit"]


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 ``H×W×3`` image as PNG bytes (lossless: decoding gives the same array back)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 ``H×W×3`` image as a PNG, atomically (a reader never sees half a file)."""
    from .atomic import atomic_write

    with atomic_write(path) as handle:
        handle.write(encode_png(image))
