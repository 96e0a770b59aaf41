"""Images in files: folders (recursive), zip archives, ``.npz``/``.npy`` arrays.  Image files are decoded in
DataLoader worker processes (:mod:`ganmetrics.imageio`); a file that cannot be decoded is an error naming it."""

from __future__ import annotations

import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..distributed import LOCAL, Shard
from ..errors import InputError, spelled
from ..imageio import IMAGE_EXTENSIONS, decode_image, is_image_name, max_image_file_bytes
from .base import ImageBatch, ImageSource, _check_count, _count_text, _local_items, _take, same_size_runs
from .memory import _array_source

_ARRAY_KEYS = ("images", "arr_0", "x")


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
            yield from same_size_runs(batch)
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
