"""ganmetrics.metrics.swd against a float64 NumPy oracle written from METRICS.md ("Sliced Wasserstein Distance").

The oracle consumes the same random draws (``patch_centres``, ``projection_directions``) and
follows the spec literally, image by image: scipy ``correlate1d(mode="mirror")`` (reflect-101)
for the binomial filter, slicing for the 7×7 patches, ``np.sort`` per projected column.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate1d

from ganmetrics.api import swd
from ganmetrics.data.synthetic import render_images
from ganmetrics.errors import InputError
from ganmetrics.metrics import swd as swd_module
from ganmetrics.metrics.swd import (
    NUM_REPEATS,
    PATCHES_PER_IMAGE,
    SWDDescriptors,
    binomial_filter,
    downsample,
    laplacian_pyramid,
    patch_centres,
    projection_directions,
    pyramid_resolutions,
    swd_from_descriptors,
    upsample,
)

KERNEL = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16


# ---------------------------------------------------------------------------------------------
# the oracle


def oracle_filter(x: np.ndarray) -> np.ndarray:
    """Separable binomial filter of a ``[C, H, W]`` image, reflect-101 borders."""
    return correlate1d(correlate1d(x, KERNEL, axis=1, mode="mirror"), KERNEL, axis=2, mode="mirror")


def oracle_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """Laplacian levels of one ``[3, H, W]`` image, finest first, the last the low-pass."""
    gaussians = [image.astype(np.float64)]
    while gaussians[-1].shape[-1] > 16:
        gaussians.append(oracle_filter(gaussians[-1])[:, ::2, ::2])
    levels = []
    for fine, coarse in zip(gaussians, gaussians[1:]):
        zeros = np.zeros_like(fine)
        zeros[:, ::2, ::2] = coarse
        levels.append(fine - 4 * oracle_filter(zeros))
    return levels + [gaussians[-1]]


def oracle_descriptors(images: np.ndarray, centres: list[np.ndarray]) -> list[np.ndarray]:
    """Per level, the normalised ``[N · 128, 147]`` descriptors; ``centres[level]`` is ``[N, 128, 2]``."""
    per_level: list[list[np.ndarray]] = [[] for _ in centres]
    for i, image in enumerate(images):
        for level, (band, where) in enumerate(zip(oracle_pyramid(image), centres)):
            for y, x in where[i]:
                per_level[level].append(band[:, y - 3:y + 4, x - 3:x + 4].reshape(-1))
    out = []
    for descriptors in per_level:
        d = np.array(descriptors).reshape(-1, 3, 49)
        d = (d - d.mean(axis=(0, 2))[:, None]) / d.std(axis=(0, 2))[:, None]
        out.append(d.reshape(-1, 147))
    return out


def oracle_sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: list[np.ndarray]) -> float:
    values = []
    for theta in directions:
        projected_a = np.sort(a @ theta.astype(np.float64), axis=0)
        projected_b = np.sort(b @ theta.astype(np.float64), axis=0)
        values.append(np.abs(projected_a - projected_b).mean())
    return float(np.mean(values))


def oracle_swd(images_a: np.ndarray, images_b: np.ndarray, *, seed: int = 0, stream_a: str = "fake",
               stream_b: str = "real") -> dict:
    """The spec's SWD ×10³ of two uint8 ``[N, 3, H, W]`` sets, with ganmetrics' random draws."""
    resolutions = pyramid_resolutions(images_a.shape[-1])
    descriptors = [oracle_descriptors(images, [patch_centres(seed, stream, r, 0, len(images)) for r in resolutions])
                   for images, stream in ((images_a, stream_a), (images_b, stream_b))]
    levels = {}
    for index, resolution in enumerate(resolutions):
        directions = [projection_directions(seed, resolution, r) for r in range(NUM_REPEATS)]
        levels[resolution] = 1e3 * oracle_sliced_wasserstein(descriptors[0][index], descriptors[1][index], directions)
    return {"levels": levels, "avg": float(np.mean(list(levels.values())))}


def nchw(style: str, n: int, seed: int, size: int = 32) -> torch.Tensor:
    return torch.from_numpy(render_images(style, n, seed=seed, size=size)).permute(0, 3, 1, 2).contiguous()


def run(gen, real, **kwargs) -> dict:
    if "num_images" not in kwargs:
        kwargs["num_images"] = len(gen)
    return swd(gen, real, progress=False, device="cpu", **kwargs)


def assert_same(result: dict, expected: dict, rel: float) -> None:
    assert list(result["levels"]) == list(expected["levels"])
    for resolution, value in expected["levels"].items():
        assert result["levels"][resolution] == pytest.approx(value, rel=rel), resolution
    assert result["avg"] == pytest.approx(expected["avg"], rel=rel)


# ---------------------------------------------------------------------------------------------
# against the oracle


@pytest.mark.parametrize("size", [32, 64])
def test_matches_oracle(size):
    a, b = nchw("shapes", 8, seed=1, size=size), nchw("blobs", 8, seed=2, size=size)
    result = run(a, b, batch_size=3)
    assert list(result["levels"]) == pyramid_resolutions(size)
    assert_same(result, oracle_swd(a.numpy(), b.numpy()), rel=1e-5)


def test_direction_chunks_match_oracle(monkeypatch):
    """Many descriptors project 16 directions at a time; the value does not change."""
    monkeypatch.setattr(swd_module, "PROJECTION_ELEMENTS", 16 * 1024)
    assert swd_module.directions_per_chunk(1024) == 16
    a, b = nchw("shapes", 8, seed=1), nchw("shapes", 8, seed=5)
    assert_same(run(a, b), oracle_swd(a.numpy(), b.numpy()), rel=1e-5)


def test_pyramid_matches_oracle():
    images = nchw("blobs", 3, seed=4, size=64)
    levels = laplacian_pyramid(images.float())
    for i, image in enumerate(images.numpy()):
        for ours, expected in zip(levels, oracle_pyramid(image)):
            np.testing.assert_allclose(ours[i].numpy(), expected, rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# the pyramid


def test_filter_reflect_101_borders():
    x = np.arange(24, dtype=np.float32).reshape(1, 1, 4, 6) ** 1.5
    for axis in (-1, -2):
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        padded = np.pad(x, pad, mode="reflect")  # d c b | a b c d | c b a
        size = x.shape[axis]
        expected = sum(w * np.take(padded, range(k, k + size), axis=axis) for k, w in enumerate(KERNEL))
        np.testing.assert_allclose(binomial_filter(torch.from_numpy(x), axis).numpy(), expected, rtol=1e-6)
    row = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])  # by hand: pad 3 2 | 1 2 3 4 | 3 2
    expected = [(3 + 8 + 6 + 8 + 3) / 16, (2 + 4 + 12 + 12 + 4) / 16, (1 + 8 + 18 + 16 + 3) / 16,
                (2 + 12 + 24 + 12 + 2) / 16]
    assert binomial_filter(row, -1)[0, 0, 0].tolist() == pytest.approx(expected)


def test_down_up_shapes_and_strided_filter():
    x = torch.rand(2, 3, 32, 32) * 255
    assert downsample(x).shape == (2, 3, 16, 16)
    assert upsample(downsample(x)).shape == x.shape
    full = binomial_filter(binomial_filter(x, -1), -2)
    assert torch.equal(downsample(x), full[..., ::2, ::2])  # only the kept outputs, the same bits


def test_levels_reconstruct_gaussians():
    """``G_i = level_i + up(G_{i+1})`` and the last level is ``G_{L−1}``, so collapsing gives the image."""
    image = nchw("shapes", 2, seed=3, size=64).float()
    levels = laplacian_pyramid(image)
    gaussians = [image, downsample(image), downsample(downsample(image))]
    assert torch.equal(levels[-1], gaussians[-1])
    for level, fine, coarse in zip(levels, gaussians, gaussians[1:]):
        torch.testing.assert_close(level + upsample(coarse), fine, rtol=0, atol=1e-4)
    collapsed = levels[-1]
    for level in reversed(levels[:-1]):
        collapsed = level + upsample(collapsed)
    torch.testing.assert_close(collapsed, image, rtol=0, atol=1e-3)


def test_resolutions():
    assert pyramid_resolutions(16) == [16]
    assert pyramid_resolutions(128) == [128, 64, 32, 16]


# ---------------------------------------------------------------------------------------------
# random draws


def test_patch_centres_are_counter_based():
    centres = patch_centres(7, "real", 32, 0, 50)
    assert centres.shape == (50, PATCHES_PER_IMAGE, 2)
    assert centres.min() == 3 and centres.max() == 32 - 4  # both ends reachable, nothing outside
    np.testing.assert_array_equal(patch_centres(7, "real", 32, 20, 10), centres[20:30])
    assert not np.array_equal(patch_centres(7, "fake", 32, 0, 50), centres)
    assert not np.array_equal(patch_centres(8, "real", 32, 0, 50), centres)
    counts = np.bincount(patch_centres(0, "real", 16, 0, 400).ravel() - 3)
    assert len(counts) == 10 and counts.min() > 0.85 * counts.mean()  # roughly uniform on 3..12


def test_directions_unit_columns():
    theta = projection_directions(0, 32, 1)
    assert theta.shape == (147, 128) and theta.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(theta, axis=0), 1, rtol=1e-6)
    assert not np.array_equal(theta, projection_directions(0, 32, 2))
    np.testing.assert_array_equal(theta, projection_directions(0, 32, 1))


# ---------------------------------------------------------------------------------------------
# properties of the metric


def descriptors_of(images: torch.Tensor, *, batch_size: int, stream: str = "real", **kwargs) -> SWDDescriptors:
    d = SWDDescriptors(stream=stream, device="cpu", **kwargs)
    for start in range(0, len(images), batch_size):
        d.update(images[start:start + batch_size])
    return d.finish()


def test_identical_sets_with_shared_draws_score_zero():
    images = nchw("shapes", 6, seed=1)
    a, b = descriptors_of(images, batch_size=4), descriptors_of(images, batch_size=6)
    result = swd_from_descriptors(a, b)
    assert result["avg"] == 0 and all(v == 0 for v in result["levels"].values())
    assert run(images, images)["avg"] > 0  # swd() draws "fake" and "real" patches independently


def test_independent_of_batch_size():
    a, b = nchw("shapes", 32, seed=1), nchw("blobs", 32, seed=2)
    assert run(a, b, batch_size=5) == run(a, b, batch_size=32)


def test_disjoint_samples_score_below_different_distributions():
    shapes, other_shapes, blobs = nchw("shapes", 64, seed=1), nchw("shapes", 64, seed=9), nchw("blobs", 64, seed=2)
    same, different = run(shapes, other_shapes), run(shapes, blobs)
    assert same["avg"] < 0.5 * different["avg"]
    assert all(same["levels"][r] < different["levels"][r] for r in (32, 16))


def test_spilled_descriptors_equal_in_memory(tmp_path):
    images = nchw("blobs", 10, seed=3)
    per_image = 2 * PATCHES_PER_IMAGE * 147 * 4  # two levels at 32 px
    memory = descriptors_of(images, batch_size=2)
    spilled = descriptors_of(images, batch_size=2, max_memory_bytes=5 * per_image, temp_dir=tmp_path)
    assert not memory.spilled and spilled.spilled  # spilled at the third batch
    for level in range(2):
        np.testing.assert_array_equal(np.asarray(spilled.level(level)), memory.level(level))
    folder = spilled._folder
    assert folder is not None and len(os.listdir(folder)) == 2
    spilled.close()
    assert not folder.exists()
    a, b = nchw("shapes", 10, seed=1), nchw("blobs", 10, seed=2)
    assert run(a, b, max_memory_bytes=1) == run(a, b)


@pytest.mark.parametrize("capacity", [None, 3, 10, 40])
@pytest.mark.parametrize("budget_images", [1000, 5, 0])
def test_storage_layouts_agree(capacity, budget_images, tmp_path):
    """Preallocated (capacity), chunked, over-capacity and spilled storage hold the same descriptors."""
    images = nchw("blobs", 10, seed=3)
    per_image = 2 * PATCHES_PER_IMAGE * 147 * 4
    expected = descriptors_of(images, batch_size=10)
    stored = descriptors_of(images, batch_size=3, capacity=capacity, max_memory_bytes=budget_images * per_image,
                            temp_dir=tmp_path)
    assert stored.spilled == (budget_images < max(capacity or 0, 10))
    for level in range(2):
        np.testing.assert_array_equal(np.asarray(stored.level(level)), expected.level(level))
    stored.close()


def test_generator_source():
    class Generator(torch.nn.Module):
        z_dim = 8

        def forward(self, z):
            return torch.tanh(z[:, :3, None, None] + torch.linspace(-1, 1, 16).view(1, 1, 1, 16)).expand(-1, 3, 16, 16)

    result = run(Generator(), nchw("shapes", 12, seed=1, size=16), num_images=12, batch_size=5)
    assert list(result["levels"]) == [16] and result["avg"] > 0


def test_folder_source_equals_tensor(image_folders):
    """PNG folders (20 images each) read through open_source, the first 16 used: the tensors' value."""
    shapes, blobs = image_folders
    expected = run(nchw("shapes", 16, seed=1), nchw("blobs", 16, seed=2))
    assert run(shapes, blobs, num_images=16, num_workers=0, batch_size=6) == expected


# ---------------------------------------------------------------------------------------------
# bad input


def test_fewer_images_than_num_images():
    with pytest.raises(InputError, match=r"num_images=20.*gen has 20 images, real has 10 images.*at most 10"):
        run(nchw("shapes", 20, seed=1), nchw("shapes", 10, seed=2), num_images=20)
    with pytest.raises(InputError, match=r"gen has 10 images, real has 10 images.*lower num_images"):
        run(nchw("shapes", 10, seed=1), nchw("shapes", 10, seed=2), num_images=12)
    batches = [nchw("shapes", 4, seed=1), nchw("shapes", 4, seed=2)]  # an iterable of unknown length
    with pytest.raises(InputError, match=r"has only 8 images.*num_images=9"):
        run(batches, nchw("shapes", 9, seed=2), num_images=9)


def test_mismatched_descriptor_sets():
    a, b = descriptors_of(nchw("shapes", 4, seed=1), batch_size=4), descriptors_of(nchw("shapes", 3, seed=1), batch_size=4)
    with pytest.raises(InputError, match=r"same number of images.*4.*3"):
        swd_from_descriptors(a, b)


@pytest.mark.parametrize("shape, message", [
    ((4, 3, 24, 24), "power-of-two"),
    ((4, 3, 32, 64), "square"),
    ((4, 3, 8, 8), "at least 16"),
])
def test_bad_image_sizes(shape, message):
    bad = torch.zeros(shape, dtype=torch.uint8)
    with pytest.raises(InputError, match=message):
        run(bad, bad)


def test_resolution_mismatch():
    with pytest.raises(InputError, match=r"32×32 px but real images are 64×64"):
        run(nchw("shapes", 4, seed=1), nchw("shapes", 4, seed=1, size=64))


def test_mixed_sizes():
    mixed = [nchw("shapes", 2, seed=1), nchw("shapes", 2, seed=1, size=64)]
    with pytest.raises(InputError, match="mix image sizes"):
        run(mixed, nchw("shapes", 4, seed=2), num_images=4)
    one_batch = [[torch.zeros(3, 32, 32, dtype=torch.uint8), torch.zeros(3, 16, 16, dtype=torch.uint8)]]
    with pytest.raises(InputError, match="mix image sizes"):
        run(one_batch, nchw("shapes", 2, seed=2), num_images=2)


def test_bad_num_images():
    with pytest.raises(InputError, match="num_images"):
        run(nchw("shapes", 2, seed=1), nchw("shapes", 2, seed=1), num_images=0)


@pytest.mark.parametrize("max_memory_bytes", [1 << 30, 1])
def test_truncated_equals_fewer_images(max_memory_bytes, tmp_path):
    """evaluate() truncates the larger set; the first n images' descriptors are those of an n-image set."""
    images = nchw("shapes", 9, seed=4)
    with pytest.raises(RuntimeError):
        descriptors_of(images, batch_size=4).truncated(5)  # finished: normalised in place
    full = SWDDescriptors(stream="real", device="cpu", max_memory_bytes=max_memory_bytes, temp_dir=tmp_path)
    for start in range(0, 9, 4):
        full.update(images[start:start + 4])
    short = full.truncated(5).finish()
    expected = descriptors_of(images[:5], batch_size=5)
    assert short.num_images == 5
    for level in range(2):
        np.testing.assert_array_equal(np.asarray(short.level(level)), expected.level(level))
