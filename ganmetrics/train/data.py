"""Training data: a built-in set or the user's images, held in memory, and each rank's batches.

The training set is loaded once as a uint8 tensor ``[N, 3, S, S]`` plus int64 labels (the zoo's
sets are small: 50,000 images at 32×32 are 150 MB).  Labels come with the built-in sets; for a
folder, the first path component of each image names its class when the images sit in two or more
sub-folders (ImageFolder layout, classes in sorted order), otherwise the set is unlabelled.

Batches are a pure function of ``(seed, step, rank, world size)`` — the data order needs no state
to save, so a resumed run sees exactly the images the uninterrupted run would have: epoch ``e`` is
the permutation ``randperm(N)`` seeded by ``(seed, e)``, dealt to the ranks like
``DistributedSampler`` (rank ``r`` takes every ``world``-th index from ``r``, the tail that does not
divide evenly is dropped), and each rank cuts its share into consecutive batches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.builtin import DATASETS, NUM_CLASSES, render_dataset
from ..errors import InputError
from ..sources import list_image_files, open_source


@dataclass(frozen=True)
class TrainingSet:
    images: torch.Tensor  # uint8 [N, 3, S, S]
    labels: torch.Tensor  # int64 [N]
    num_classes: int  # 0: unlabelled
    description: str

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])


def _folder_labels(folder: Path, num_images: int) -> tuple[torch.Tensor, int]:
    """Class of each image from its first sub-folder, when there are at least two; else all 0, no classes."""
    names = list_image_files(folder)[:num_images]
    tops = [name.split("/", 1)[0] if "/" in name else "" for name in names]
    classes = sorted(set(tops))
    if len(classes) < 2 or "" in classes:
        return torch.zeros(len(names), dtype=torch.int64), 0
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[top] for top in tops], dtype=torch.int64), len(classes)


def load_training_set(source: str, *, num_images: int | None = None, seed: int = 0) -> TrainingSet:
    """``source``: a built-in set name (``shapes32``; ``num_images`` default 50,000, ``seed`` picks the set),
    or a folder / zip / npz of square RGB images (all of them, or the first ``num_images``)."""
    if source in DATASETS:
        n = 50_000 if num_images is None else num_images
        images, labels = render_dataset(source, n, seed=seed)
        return TrainingSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels),
                           NUM_CLASSES, f"built-in {source} (seed {seed}, {n} images)")
    path = Path(source)
    if not path.exists():
        raise InputError(f"training data {source!r} is neither a built-in set ({', '.join(DATASETS)}) nor an "
                         "existing folder, zip or npz file")
    batches = list(open_source(str(path), num_samples=num_images, batch_size=256, num_workers=0))
    if any(isinstance(batch, list) for batch in batches):
        raise InputError(f"{source}: the images have different sizes; resize them to one square size first")
    images = torch.cat(batches)
    if images.shape[-1] != images.shape[-2]:
        raise InputError(f"{source}: images are {images.shape[-2]}×{images.shape[-1]}; the zoo trains on square "
                         "images (crop or resize them first)")
    if path.is_dir():
        labels, num_classes = _folder_labels(path, images.shape[0])
    else:
        labels, num_classes = torch.zeros(images.shape[0], dtype=torch.int64), 0
    classes = f", {num_classes} classes" if num_classes else ", unlabelled"
    return TrainingSet(images, labels, num_classes, f"{source} ({images.shape[0]} images{classes})")


@functools.lru_cache(maxsize=2)
def _epoch_permutation(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_images, generator=generator)


def batches_per_epoch(num_images: int, batch_size: int, world_size: int) -> int:
    per_rank = num_images // world_size
    if per_rank < batch_size:
        raise InputError(f"{num_images} training images are too few for {world_size} process(es) × batch "
                         f"{batch_size}; use more images or a smaller --batch-size")
    return per_rank // batch_size


def batch_indices(num_images: int, batch_size: int, *, step: int, rank: int, world_size: int,
                  seed: int) -> torch.Tensor:
    """Indices of rank ``rank``'s batch number ``step`` (counted from 0 over the whole run)."""
    per_epoch = batches_per_epoch(num_images, batch_size, world_size)
    epoch, position = divmod(step, per_epoch)
    share = _epoch_permutation(num_images, seed, epoch)[rank: (num_images // world_size) * world_size: world_size]
    return share[position * batch_size: (position + 1) * batch_size]


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 → float32 [-1, 1] (``x / 127.5 − 1``), the generators' output range."""
    return images.float() / 127.5 - 1.0
