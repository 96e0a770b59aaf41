"""Fuzzing image decoding: every input is decoded correctly or refused with an InputError naming the file.

The contract of :func:`ganmetrics.imageio.decode_image` (and of folder / zip sources, which decode
through it): random bytes, truncated or mutated files, decompression bombs and every odd Pillow mode
either give a uint8 ``H×W×3`` array following the documented conversion rule, or raise
:class:`~ganmetrics.errors.InputError` whose message starts with the file's name — never another
exception type, never a crash, never a hang.

Hypothesis runs derandomized (same examples on every run, no example database) with a per-example
deadline and modest ``max_examples``, so the file stays fast and CI reproducible.  A deadline only
reports a slow example once it has finished, so a watchdog guards against real hangs: SIGALRM
interrupts a test stuck in Python code (e.g. a looping Pillow plugin) and fails it with the input
being decoded; a decoder stuck in C code, which no signal handler interrupts, makes
:func:`faulthandler.dump_traceback_later` dump every thread's stack and end the process instead of a
silent CI timeout.
"""

from __future__ import annotations

import faulthandler
import io
import resource
import signal
import struct
import tempfile
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganmetrics.errors import InputError
from ganmetrics.imageio import decode_image, scale_16bit
from ganmetrics.sources import open_source

#: Per-example deadline: decoding a tiny image takes milliseconds; 2 s leaves room for a loaded CI box.
FUZZ = settings(max_examples=200, deadline=timedelta(seconds=2), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MODES = settings(FUZZ, max_examples=20)
HANG_TIMEOUT_S = 60  # per test; the whole file runs in well under this

# Pillow warns (UserWarning) about the corrupt TIFF/EXIF structures these tests feed it; that is expected.
pytestmark = pytest.mark.filterwarnings(r"ignore::UserWarning:PIL\..*")

MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff",
    "bmp": b"BM",
    "gif87": b"GIF87a",
    "gif89": b"GIF89a",
    "tiff-le": b"II*\x00",
    "tiff-be": b"MM\x00*",
    "webp-lossy": b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    "webp-lossless": b"RIFF\x00\x01\x00\x00WEBPVP8L",
    "webp-extended": b"RIFF\x00\x01\x00\x00WEBPVP8X",
}
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
LOSSLESS = ("PNG", "BMP", "TIFF", "WEBP")  # saved losslessly below; GIF quantises colours


class DecodeHang(BaseException):
    """Raised by the watchdog; not an Exception, so neither decode_image nor hypothesis swallows it."""


def _on_alarm(signum: int, frame) -> None:
    while frame is not None and frame.f_code is not decode_image.__code__:
        frame = frame.f_back
    if frame is None:
        raise DecodeHang(f"the test ran for over {HANG_TIMEOUT_S} s")
    data, name = frame.f_locals.get("data"), frame.f_locals.get("name")
    where = ""
    if isinstance(data, bytes):
        with tempfile.NamedTemporaryFile("wb", prefix="ganmetrics-hang-", suffix=".bin", delete=False) as handle:
            handle.write(data)
        where = f"; its {len(data)} bytes are saved in {handle.name} (starting {data[:32]!r})"
    raise DecodeHang(f"decode_image(..., {name!r}) ran for over {HANG_TIMEOUT_S} s{where}")


@pytest.fixture(autouse=True)
def hang_watchdog():
    """Fail a test stuck in Python code (SIGALRM); end the process if it is stuck in C code."""
    faulthandler.dump_traceback_later(2 * HANG_TIMEOUT_S, exit=True)
    alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(HANG_TIMEOUT_S)
    try:
        yield
    finally:
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------------------------------------
# helpers


def random_rgb(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    if fmt == "WEBP":
        options.setdefault("lossless", True)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode_or_refuse(data: bytes, name: str) -> np.ndarray | None:
    """``decode_image(data, name)``: the array if it decoded (checked), None if refused (message checked).

    Any exception other than InputError propagates, failing the test with the input hypothesis found.
    """
    try:
        array = decode_image(data, name)
    except InputError as e:
        assert str(e).startswith(f"{name}: "), f"the message does not name the file: {e}"
        return None
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8, (type(array), getattr(array, "dtype", None))
    assert array.ndim == 3 and array.shape[2] == 3 and array.shape[0] > 0 and array.shape[1] > 0, array.shape
    return array


def refused(data: bytes, name: str) -> str:
    """The InputError message decoding ``data`` gives (failing if it decodes); it starts with ``name``."""
    with pytest.raises(InputError) as info:
        decode_image(data, name)
    message = str(info.value)
    assert message.startswith(f"{name}: "), message
    return message


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_rows(rows: list[bytes], filters: list[int], bpp: int) -> bytes:
    """PNG scanline filtering (types 0-4), the encoder side: each row prefixed with its filter byte."""
    out, prior = bytearray(), bytes(len(rows[0]))
    for row, kind in zip(rows, filters):
        line = bytearray(len(row))
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            line[i] = (x - predictor) & 0xFF
        out += bytes([kind]) + line
        prior = row
    return bytes(out)


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def make_png(values: np.ndarray, depth: int, *, filters: Callable[[int], int] = lambda row: 0,
             interlace: bool = False, extra: bytes = b"") -> bytes:
    """A PNG written by hand: gray (H×W), gray+alpha, RGB or RGBA (H×W×C) at bit depth 8 or 16.

    Pillow cannot write 16-bit colour PNGs, filters of its choosing or Adam7 interlacing; this
    can.  ``filters(i)`` picks the filter type (0-4) of the i-th scanline written.
    """
    values = values if values.ndim == 3 else values[:, :, None]
    h, w, channels = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    samples = values.astype(">u2" if depth == 16 else np.uint8)
    bpp = channels * depth // 8
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    raw, count = b"", 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue  # empty Adam7 passes are skipped entirely
        rows = [row.tobytes() for row in sub.reshape(sub.shape[0], -1)]
        raw += _filter_rows(rows, [filters(count + i) for i in range(len(rows))], bpp)
        count += len(rows)
    header = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def make_tiff(values: np.ndarray, *, planar: bool = False, rows_per_strip: int | None = None,
              tile: tuple[int, int] | None = None, claimed_height: int | None = None,
              drop_last: bool = False) -> bytes:
    """An uncompressed little-endian TIFF written by hand: gray (H×W) or RGB (H×W×3), 8-bit.

    Strips of ``rows_per_strip`` rows or ``tile`` = (height, width) tiles (zero-padded at the
    edges), chunky or ``planar`` (one plane per band) — layouts Pillow decodes itself, without
    libtiff, and cannot all write.  ``claimed_height`` and ``drop_last`` (omit the last strip or
    tile) make the strips not cover the image, as a corrupt file would.
    """
    values = values if values.ndim == 3 else values[:, :, None]
    h, w, spp = values.shape
    chunks = []
    for plane in ([values[:, :, c:c + 1] for c in range(spp)] if planar else [values]):
        if tile:
            for ty in range(0, h, tile[0]):
                for tx in range(0, w, tile[1]):
                    block = np.zeros((*tile, plane.shape[2]), np.uint8)
                    part = plane[ty:ty + tile[0], tx:tx + tile[1]]
                    block[:part.shape[0], :part.shape[1]] = part
                    chunks.append(block.tobytes())
        else:
            rows = rows_per_strip or h
            chunks += [plane[y:y + rows].tobytes() for y in range(0, h, rows)]
    if drop_last:
        chunks = chunks[:-1]
    short, long = 3, 4
    tags = {256: (long, [w]), 257: (long, [claimed_height or h]), 258: (short, [8] * spp), 259: (short, [1]),
            262: (short, [2 if spp == 3 else 1]), 277: (short, [spp]), 284: (short, [2 if planar else 1])}
    if tile:
        offsets_tag = 324
        tags.update({322: (long, [tile[1]]), 323: (long, [tile[0]]), 325: (long, [len(c) for c in chunks])})
    else:
        offsets_tag = 273
        tags.update({278: (long, [rows_per_strip or h]), 279: (long, [len(c) for c in chunks])})

    def head(offsets: list[int]) -> bytes:
        tags[offsets_tag] = (long, offsets)
        ifd, extra = struct.pack("<H", len(tags)), b""
        extra_start = 8 + 2 + 12 * len(tags) + 4
        for tag in sorted(tags):
            kind, items = tags[tag]
            payload = struct.pack("<" + ("H" if kind == short else "I") * len(items), *items)
            if len(payload) <= 4:
                ifd += struct.pack("<HHI", tag, kind, len(items)) + payload.ljust(4, b"\0")
            else:
                ifd += struct.pack("<HHII", tag, kind, len(items), extra_start + len(extra))
                extra += payload
        return MAGIC["tiff-le"] + struct.pack("<I", 8) + ifd + bytes(4) + extra

    start = len(head([0] * len(chunks)))
    offsets = [start + sum(len(c) for c in chunks[:i]) for i in range(len(chunks))]
    return head(offsets) + b"".join(chunks)


def rgb_of(data: bytes) -> np.ndarray:
    """The documented rule for 8-bit files: ``np.asarray(Image.open(f).convert("RGB"))``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Palette images with Transparency", category=UserWarning)
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))


def gray3(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[:, :, None], 3, axis=2)


# ---------------------------------------------------------------------------------------------
# 1. random bytes, bare and behind real magic numbers


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes(data):
    decode_or_refuse(data, "fuzz/random.png")


@FUZZ
@given(magic=st.sampled_from(sorted(MAGIC)), tail=st.binary(max_size=2048))
def test_random_bytes_behind_magic_numbers(magic, tail):
    decode_or_refuse(MAGIC[magic] + tail, f"fuzz/{magic} file.img")


@FUZZ
@given(fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**32 - 1), keep=st.integers(0, 400),
       tail=st.binary(min_size=1, max_size=1024))
def test_real_header_then_random_bytes(fmt, seed, keep, tail):
    """A real file's first bytes (signature, headers, tables) followed by garbage."""
    data = encode(Image.fromarray(random_rgb(seed, 9, 7)), fmt)
    decode_or_refuse(data[:keep] + tail, f"fuzz/header.{fmt.lower()}")


@FUZZ
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1), depth=st.sampled_from([1, 2, 4, 8, 16, 3]),
       colour_type=st.sampled_from([0, 2, 3, 4, 6, 5]), interlace=st.integers(0, 2), tail=st.binary(max_size=512))
def test_png_random_header_fields(width, height, depth, colour_type, interlace, tail):
    """A well-formed IHDR (correct CRC) with arbitrary fields, followed by random bytes or a random IDAT."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace))
    signature = MAGIC["png"] + header
    decode_or_refuse(signature + tail, "fuzz/ihdr.png")
    idat = png_chunk(b"IDAT", zlib.compress(tail)) + png_chunk(b"IEND", b"")
    start = time.perf_counter()
    decode_or_refuse(signature + idat, "fuzz/ihdr.png")
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------------------------
# 2. truncated and mutated files


def _encoded(fmt: str, seed: int, h: int, w: int, **options) -> tuple[bytes, np.ndarray]:
    data = encode(Image.fromarray(random_rgb(seed, h, w)), fmt, **options)
    return data, rgb_of(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_at_every_position(fmt):
    """Every prefix of a small file: refused, or (a lossless format) decoded to exactly the full image."""
    data, full = _encoded(fmt, 7, 10, 12)
    name = f"cut/image.{fmt.lower()}"
    for cut in range(len(data)):
        array = decode_or_refuse(data[:cut], name)
        if array is not None:
            assert array.shape == full.shape, (cut, array.shape)
            if fmt in LOSSLESS:
                np.testing.assert_array_equal(array, full, err_msg=f"prefix of {cut}/{len(data)} bytes")


@FUZZ
@given(fmt=st.sampled_from(["PNG", "JPEG", "JPEG-progressive", "PNG-16bit"]), seed=st.integers(0, 2**32 - 1),
       h=st.integers(1, 24), w=st.integers(1, 24), position=st.integers(0, 2**20))
def test_truncated_png_and_jpeg(fmt, seed, h, w, position):
    if fmt == "PNG-16bit":
        values = np.random.default_rng(seed).integers(0, 65536, (h, w, 3), dtype=np.uint16)
        data, full = make_png(values, 16, filters=lambda row: row % 5), scale_16bit(values)
    elif fmt == "JPEG-progressive":
        data, full = _encoded("JPEG", seed, h, w, progressive=True, quality=90)
    else:
        data, full = _encoded(fmt, seed, h, w)
    cut = position % len(data)
    array = decode_or_refuse(data[:cut], f"cut/{fmt}.bin")
    if array is not None:
        assert array.shape == (h, w, 3)
        if fmt.startswith("PNG"):
            np.testing.assert_array_equal(array, full)


@FUZZ
@given(fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**32 - 1), h=st.integers(1, 16), w=st.integers(1, 16),
       flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 255)), min_size=1, max_size=6))
def test_mutated_bytes(fmt, seed, h, w, flips):
    """A few bytes XOR-ed at hypothesis-chosen positions (headers, tables, pixel data alike)."""
    data = bytearray(encode(Image.fromarray(random_rgb(seed, h, w)), fmt))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    start = time.perf_counter()
    decode_or_refuse(bytes(data), f"mutated/image.{fmt.lower()}")
    assert time.perf_counter() - start < 2.0


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 12), w=st.integers(1, 12), channels=st.sampled_from([3, 4]),
       interlace=st.booleans(), flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 255)),
                                               min_size=1, max_size=4))
def test_mutated_16bit_png(seed, h, w, channels, interlace, flips):
    """The 16-bit colour path decodes twice (high and low bytes): corruption must still give an InputError."""
    values = np.random.default_rng(seed).integers(0, 65536, (h, w, channels), dtype=np.uint16)
    data = bytearray(make_png(values, 16, interlace=interlace))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    decode_or_refuse(bytes(data), "mutated/16bit.png")


# ---------------------------------------------------------------------------------------------
# 3. decompression bombs


def _bomb_png(width: int, height: int) -> bytes:
    """A header claiming ``width×height`` RGB pixels, with a few bytes of actual (zero) image data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (MAGIC["png"] + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(bytes(1 + 3 * 64)))
            + png_chunk(b"IEND", b""))


def _bomb_jpeg(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.fromarray(random_rgb(1, 8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _bomb_bmp(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.fromarray(random_rgb(1, 8, 8)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _bomb_gif(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return MAGIC["gif89"] + screen + frame + b";"


def _bomb_tiff(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.fromarray(random_rgb(1, 8, 8)), "TIFF"))
    assert data[:4] == MAGIC["tiff-le"]
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[entry + 2:entry + 12] = struct.pack("<HII", 4, 1, value)  # as a LONG
    return bytes(data)


def _bomb_webp(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.fromarray(random_rgb(1, 8, 8)), "WEBP"))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = struct.unpack_from("<I", data, 21)[0]
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


BOMBS = {"PNG": _bomb_png, "JPEG": _bomb_jpeg, "BMP": _bomb_bmp, "GIF": _bomb_gif, "TIFF": _bomb_tiff,
         "WEBP": _bomb_webp}


BOMB_SIZES = {"100k": (100_000, 100_000), "60k": (60_000, 60_000), "16k": (16_384, 16_384),
              "10k-warning": (10_000, 10_000)}
BOMB_LIMITS = {"JPEG": 65_535, "GIF": 65_535, "WEBP": 16_384}  # the largest side each format can describe


@pytest.mark.parametrize(("fmt", "size"), [
    pytest.param(fmt, size, id=f"{fmt}-{label}") for fmt in sorted(BOMBS) for label, size in BOMB_SIZES.items()
    if max(size) <= BOMB_LIMITS.get(fmt, 2**31 - 1)])
def test_decompression_bomb_refused_quickly(fmt, size):
    """Huge claimed dimensions: refused by the bomb guard from the header alone (no 30 GB allocation).

    10000×10000 is above ``MAX_IMAGE_PIXELS`` but under twice it, Pillow's *warning* band, which
    decode_image must also refuse.
    """
    data = BOMBS[fmt](*size)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    message = refused(data, f"bombs/huge.{fmt.lower()}")
    elapsed = time.perf_counter() - start
    assert "decompression-bomb guard" in message and "MAX_IMAGE_PIXELS" in message, message
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 256 * 1024, f"peak memory grew by {grown_kib} KiB"


@pytest.mark.parametrize("pixels", [16 * 16, 12 * 12], ids=["error-band", "warning-band"])
@pytest.mark.parametrize("kind", ["png8", "png16", "jpeg"])
def test_decompression_bomb_guard_on_valid_files(monkeypatch, kind, pixels):
    """A complete, valid file over a lowered ``MAX_IMAGE_PIXELS`` (100) is refused, the 16-bit path included."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    side = int(pixels**0.5)
    rgb = random_rgb(3, side, side)
    data = {"png8": lambda: encode(Image.fromarray(rgb), "PNG"),
            "png16": lambda: make_png(rgb.astype(np.uint16) * 257, 16),
            "jpeg": lambda: encode(Image.fromarray(rgb), "JPEG")}[kind]()
    assert "decompression-bomb guard" in refused(data, f"bombs/{kind}.img")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the user's documented way out
    assert decode_image(data, "ok").shape == (side, side, 3)


@pytest.mark.parametrize("chunk", [b"zTXt", b"iCCP", b"iTXt"])
def test_png_compressed_metadata_bomb(chunk):
    """A 1×1 PNG with a metadata chunk inflating to 32 MiB: refused (or decoded) fast, not inflated."""
    bomb = zlib.compress(bytes(32 << 20), 9)
    body = {b"zTXt": b"k\x00\x00" + bomb, b"iCCP": b"p\x00\x00" + bomb, b"iTXt": b"k\x00\x01\x00\x00\x00" + bomb}
    data = make_png(np.zeros((1, 1), np.uint8), 8, extra=png_chunk(chunk, body[chunk]))
    start = time.perf_counter()
    decode_or_refuse(data, "bombs/metadata.png")
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------------------------
# 4. odd modes, against the documented conversion rule


def _palette(rng: np.random.Generator) -> list[int]:
    return rng.integers(0, 256, 256 * 3).tolist()


def _mode_case(case: str, rng: np.random.Generator, h: int, w: int) -> tuple[bytes, np.ndarray]:
    """(file bytes, the expected decoded uint8 H×W×3) for one odd-mode case."""
    u8 = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if case in ("L png", "L jpeg", "L tiff"):
        data = encode(Image.fromarray(u8[..., 0]), case.split()[1].upper())
        return data, rgb_of(data) if case == "L jpeg" else gray3(u8[..., 0])
    if case == "1 png":
        bits = u8[..., 0] > 127
        data = encode(Image.fromarray(bits), "PNG")
        return data, gray3(bits.astype(np.uint8) * 255)
    if case == "LA png":
        data = encode(Image.fromarray(u8[..., :2], "LA"), "PNG")
        return data, gray3(u8[..., 0])
    if case in ("RGBA png", "RGBA tiff", "RGBA webp"):
        # exact=True: libwebp would otherwise rewrite the colour of fully transparent pixels
        data = encode(Image.fromarray(u8, "RGBA"), case.split()[1].upper(), **({"exact": True} if "webp" in case else {}))
        return data, u8[..., :3]  # alpha dropped, not composited
    if case.startswith("P "):
        palette = np.array(_palette(rng), np.uint8).reshape(256, 3)
        index = u8[..., 0]
        image = Image.fromarray(index, "P")
        image.putpalette(palette.ravel().tolist())
        options = {"P png": {}, "P png transparency index": {"transparency": int(index[0, 0])},
                   "P png transparency bytes": {"transparency": rng.integers(0, 256, 256, dtype=np.uint8).tobytes()},
                   "P gif transparency": {"transparency": int(index[0, 0])}}[case]
        data = encode(image, case.split()[1].upper(), **options)
        if case.startswith("P gif"):
            return data, rgb_of(data)  # GIF may reorder / trim the palette
        return data, palette[index]
    if case == "PA tiff":
        palette = np.array(_palette(rng), np.uint8).reshape(256, 3)
        image = Image.new("PA", (w, h))
        image.putpalette(palette.ravel().tolist())
        image.putdata(list(zip(u8[..., 0].ravel().tolist(), u8[..., 1].ravel().tolist())))
        data = encode(image, "TIFF")
        return data, rgb_of(data)
    if case in ("CMYK jpeg", "CMYK tiff"):
        data = encode(Image.fromarray(u8, "CMYK"), case.split()[1].upper())
        return data, rgb_of(data)
    if case in ("I;16 png", "I;16 tiff"):
        values = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        image = Image.fromarray(values)
        assert image.mode == "I;16"
        return encode(image, case.split()[1].upper()), gray3(scale_16bit(values))
    if case == "I tiff":
        values = rng.integers(-70_000, 140_000, (h, w), dtype=np.int32)
        data = encode(Image.fromarray(values, "I"), "TIFF")
        return data, gray3(scale_16bit(np.clip(values, 0, 65535)))
    if case == "F tiff":
        values = rng.uniform(-20, 280, (h, w)).astype(np.float32)
        data = encode(Image.fromarray(values, "F"), "TIFF")
        return data, gray3(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if case in ("RGB 16-bit png", "RGBA 16-bit png", "gray 16-bit png"):
        channels = {"RGB": 3, "RGBA": 4, "gray": 1}[case.split()[0]]
        values = rng.integers(0, 65536, (h, w, channels), dtype=np.uint16)
        filters = rng.integers(0, 5, 64)
        data = make_png(values, 16, filters=lambda row: int(filters[row % 64]), interlace=bool(rng.integers(2)))
        scaled = scale_16bit(values)
        return data, gray3(scaled[..., 0]) if channels == 1 else scaled[..., :3]
    if case == "RGB 8-bit png interlaced":
        filters = rng.integers(0, 5, 64)
        data = make_png(u8[..., :3], 8, filters=lambda row: int(filters[row % 64]), interlace=True)
        return data, u8[..., :3]
    raise AssertionError(case)


MODE_CASES = ["L png", "L jpeg", "L tiff", "1 png", "LA png", "RGBA png", "RGBA tiff", "RGBA webp", "P png",
              "P png transparency index", "P png transparency bytes", "P gif transparency", "PA tiff",
              "CMYK jpeg", "CMYK tiff", "I;16 png", "I;16 tiff", "I tiff", "F tiff", "RGB 16-bit png",
              "RGBA 16-bit png", "gray 16-bit png", "RGB 8-bit png interlaced"]
#: Cases where ganmetrics does better than Pillow's ``convert("RGB")`` (16-bit scaled, I clipped, F rounded).
NOT_PEER_RULE = {"I;16 png", "I;16 tiff", "I tiff", "F tiff", "RGB 16-bit png", "RGBA 16-bit png", "gray 16-bit png"}


@pytest.mark.parametrize("case", MODE_CASES)
@MODES
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 13), w=st.integers(1, 13))
def test_odd_modes_follow_the_documented_rule(case, seed, h, w):
    data, expected = _mode_case(case, np.random.default_rng(seed), h, w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. the palette-transparency warning must not leak out
        array = decode_image(data, f"modes/{case}")
    assert array.dtype == np.uint8 and array.shape == (h, w, 3) and array.flags.writeable
    np.testing.assert_array_equal(array, expected)
    if case not in NOT_PEER_RULE:  # 8-bit files: exactly the peers' np.asarray(Image.open(f).convert("RGB"))
        np.testing.assert_array_equal(array, rgb_of(data))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_non_finite_values_is_refused(value):
    values = np.full((3, 4), 7.0, np.float32)
    values[1, 2] = value
    message = refused(encode(Image.fromarray(values, "F"), "TIFF"), "modes/nan.tif")
    assert "NaN or infinite" in message


def test_gray_alpha_16bit_png_is_scaled():
    """Pillow opens these as RGBA keeping the high byte (gray 255 → 0); ganmetrics scales them like every 16-bit image."""
    values = np.array([[[255, 0], [33023, 65535], [65535, 1]]], dtype=np.uint16)  # 1×3 gray+alpha
    array = decode_image(make_png(values, 16), "modes/la16.png")
    np.testing.assert_array_equal(array[0, :, 0], scale_16bit(values[0, :, 0]))


# ---------------------------------------------------------------------------------------------
# uncompressed TIFFs: strips and tiles must cover the image


TIFF_LAYOUTS = st.one_of(st.builds(lambda rows: {"rows_per_strip": rows}, st.integers(1, 40)),
                         st.builds(lambda th, tw: {"tile": (16 * th, 16 * tw)}, st.integers(1, 2), st.integers(1, 2)))


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 40), w=st.integers(1, 40), channels=st.sampled_from([1, 3]),
       planar=st.booleans(), layout=TIFF_LAYOUTS)
def test_uncompressed_tiff_layouts_decode_exactly(seed, h, w, channels, planar, layout):
    """Strips of any height, tiles with edge padding, chunky or planar: decoded exactly (none refused)."""
    values = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    array = decode_image(make_tiff(values, planar=planar, **layout), "tiff/layout.tif")
    np.testing.assert_array_equal(array, gray3(values[..., 0]) if channels == 1 else values)


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 40), w=st.integers(1, 40), channels=st.sampled_from([1, 3]),
       planar=st.booleans(), layout=TIFF_LAYOUTS, extra_rows=st.integers(1, 10**6), drop_last=st.booleans())
def test_tiff_strips_not_covering_the_image_are_refused(seed, h, w, channels, planar, layout, extra_rows, drop_last):
    """ImageLength beyond the strips / tile grid, or a strip missing: refused, not padded with black rows.

    Pillow decodes such uncompressed TIFFs without complaint, leaving the uncovered pixels black
    (libtiff, used for compressed TIFFs, refuses them).
    """
    values = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    rows = layout.get("rows_per_strip") or layout["tile"][0]
    grid_height = -(-h // rows) * rows  # rows the strips / tiles hold, edge padding included
    if drop_last:
        data = make_tiff(values, planar=planar, drop_last=True, **layout)
    else:
        data = make_tiff(values, planar=planar, claimed_height=grid_height + extra_rows, **layout)
    start = time.perf_counter()
    message = refused(data, "tiff/short.tif")
    assert time.perf_counter() - start < 1.0
    tile_w = layout["tile"][1] if "tile" in layout else w
    chunks = -(-h // rows) * -(-w // tile_w) * (channels if planar else 1)
    if not (drop_last and chunks == 1):  # no strip at all: Pillow does not even identify the file
        assert "strips/tiles cover only" in message, message


def test_regression_tiff_claiming_87m_pixels_from_674_bytes():
    """Found by fuzzing: a Pillow-written 7×19 CMYK TIFF whose ImageLength was corrupted to 12,517,395.

    Before the strip-coverage check it decoded — in 3-5 s, allocating ~600 MB — to a 12517395×7
    image that was black below row 19; it is now refused at once.
    """
    data = bytearray(encode(Image.fromarray(random_rgb(5, 19, 7)).convert("CMYK"), "TIFF"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 257:  # ImageLength
            data[entry + 2:entry + 12] = struct.pack("<HII", 4, 1, 12_517_395)
    start = time.perf_counter()
    message = refused(bytes(data), "found/cmyk.tif")
    assert "cover only 133 of its 7×12517395 pixels" in message, message
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------------------------
# 5. one corrupt file among good ones, in a folder and in a zip


def _good_files() -> dict[str, bytes]:
    """Same-size (8×8) valid images in several formats, the 16-bit colour PNG path included."""
    rgb = random_rgb(11, 8, 8)
    return {"a_rgb.png": encode(Image.fromarray(rgb), "PNG"),
            "b_16bit.png": make_png(np.random.default_rng(12).integers(0, 65536, (8, 8, 3), dtype=np.uint16), 16),
            "d_gray.jpg": encode(Image.fromarray(rgb[..., 0]), "JPEG"),
            "e_pal.bmp": encode(Image.fromarray(rgb).convert("P"), "BMP")}


CORRUPT = "c_corrupt.png"


def _corrupt_bytes() -> bytes:
    data = encode(Image.fromarray(random_rgb(13, 8, 8)), "PNG")
    return data[: len(data) // 2]


def _check_stream(source, first_names: list[str], files: dict[str, bytes], bad_label: str) -> None:
    batches = iter(source)
    first = next(batches)  # batch_size=2: the two images sorted before the corrupt one
    expected = np.stack([decode_image(files[n], n) for n in first_names]).transpose(0, 3, 1, 2)
    assert isinstance(first, torch.Tensor)
    np.testing.assert_array_equal(first.numpy(), expected)
    with pytest.raises(InputError) as info:
        next(batches)
    message = str(info.value)
    assert message.startswith(f"{bad_label}: "), message
    assert "cannot decode the image" in message
    assert not any(name in message for name in files if name != CORRUPT)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_folder_with_one_corrupt_file(tmp_path, num_workers):
    files = {**_good_files(), CORRUPT: _corrupt_bytes()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    source = open_source(tmp_path, batch_size=2, num_workers=num_workers)
    _check_stream(source, ["a_rgb.png", "b_16bit.png"], files, str(tmp_path.resolve() / CORRUPT))


def test_zip_with_one_corrupt_member(tmp_path):
    files = {**_good_files(), CORRUPT: _corrupt_bytes()}
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name, data in sorted(files.items()):
            handle.writestr(f"set/{name}", data)
    source = open_source(archive, batch_size=2, num_workers=0)
    bad_label = f"{archive.resolve()}:set/{CORRUPT}"
    _check_stream(source, ["a_rgb.png", "b_16bit.png"], files, bad_label)


@pytest.mark.parametrize("as_path", [str, Path])
def test_corrupt_file_given_by_path(tmp_path, as_path):
    """decode_image(path) (what folders use): the same InputError, naming the path; also the empty file."""
    bad = tmp_path / "bad file.png"
    bad.write_bytes(_corrupt_bytes())
    refused_path = as_path(bad)
    with pytest.raises(InputError, match="cannot decode the image"):
        decode_image(refused_path, str(bad))
    bad.write_bytes(b"")
    with pytest.raises(InputError, match=r"^.*bad file\.png: the file is empty"):
        decode_image(refused_path, str(bad))
