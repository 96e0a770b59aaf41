"""MS-SSIM: ganmetrics against a NumPy/SciPy oracle of the METRICS.md spec, and pytorch-msssim on grayscale."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from ganmetrics.api import ms_ssim_diversity
from ganmetrics.errors import InputError
from ganmetrics.metrics.ms_ssim import (
    MSSSIMDiversity,
    gaussian_window,
    ms_ssim,
    window_schedule,
)

ORACLE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
ORACLE_C1, ORACLE_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def oracle_window(size: int) -> np.ndarray:
    """The 2-D window of the spec, MATLAB ``fspecial('gaussian', size, 1.5·size/11)`` coordinates."""
    sigma = 1.5 * size / 11
    coords = np.arange(size) - (size - 1) / 2
    rows, cols = np.meshgrid(coords, coords, indexing="ij")
    window = np.exp(-(rows ** 2 + cols ** 2) / (2 * sigma ** 2))
    return window / window.sum()


def oracle_ms_ssim(x: np.ndarray, y: np.ndarray, *, image_dtype: type = np.float64) -> np.ndarray:
    """MS-SSIM per pair of uint8 ``[N, 3, H, W]`` arrays, one pair, scale and channel at a time (float64).

    ``image_dtype``: the images, 2×2 box-averages and products ``x·x, y·y, x·y`` (the reference uses
    float32; the filtering is float64 in either case).
    """
    results = []
    for a, b in zip(x.astype(image_dtype), y.astype(image_dtype)):
        factors = []
        for level in range(5):
            if level:
                a, b = (im.reshape(im.shape[0], im.shape[1] // 2, 2, im.shape[2] // 2, 2).mean(axis=(2, 4))
                        for im in (a, b))
            window = oracle_window(min(11, a.shape[1], a.shape[2]))
            ssim_maps, cs_maps = [], []
            for ca, cb in zip(a, b):
                mu_a, mu_b, e_aa, e_bb, e_ab = (correlate2d(q.astype(np.float64), window, mode="valid")
                                                for q in (ca, cb, ca * ca, cb * cb, ca * cb))
                var_a, var_b, cov = e_aa - mu_a ** 2, e_bb - mu_b ** 2, e_ab - mu_a * mu_b
                cs = (2 * cov + ORACLE_C2) / (var_a + var_b + ORACLE_C2)
                cs_maps.append(cs)
                ssim_maps.append(cs * (2 * mu_a * mu_b + ORACLE_C1) / (mu_a ** 2 + mu_b ** 2 + ORACLE_C1))
            value = np.mean(ssim_maps) if level == 4 else np.mean(cs_maps)  # all pixels and channels
            factors.append(max(value, 0.0) ** ORACLE_WEIGHTS[level])
        results.append(np.prod(factors))
    return np.array(results)


def smooth_images(n: int, size: int, seed: int, channels: int = 3) -> np.ndarray:
    """uint8 ``[n, channels, size, size]``: upsampled 8×8 noise plus fine noise (image-like statistics)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (n, channels, 8, 8)))
    base = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).numpy()
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).round().astype(np.uint8)


def pair_set(kind: str, n: int, size: int, seed: int = 0, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``random``: independent uniform noise; ``related``: image-like x and y = x + N(0, 20²) noise."""
    rng = np.random.default_rng(seed + 1000)
    if kind == "random":
        return (rng.integers(0, 256, (2, n, channels, size, size), dtype=np.uint8)[0],
                rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8))
    x = smooth_images(n, size, seed, channels)
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).round().astype(np.uint8)
    return x, y


def ours(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ms_ssim(torch.from_numpy(x), torch.from_numpy(y)).numpy()


# ---------------------------------------------------------------------------------------------
# the math


@pytest.mark.parametrize("kind", ["random", "related"])
@pytest.mark.parametrize("size,n", [(32, 6), (64, 4), (128, 2), (256, 2)])
def test_matches_float64_oracle(kind, size, n):
    x, y = pair_set(kind, n, size, seed=size)
    got = ours(x, y)
    assert got.dtype == np.float64 and got.shape == (n,)
    np.testing.assert_allclose(got, oracle_ms_ssim(x, y), rtol=0, atol=1e-5)


@pytest.mark.parametrize("size,n", [(32, 3), (64, 3), (256, 1)])
def test_matches_float32_image_oracle_tightly(size, n):
    """With float32 images, box-averages and products in the oracle too (the precision of the spec), only
    float64 filter rounding is left: ~1e-15 measured (vs ~5e-7 against the all-float64 oracle)."""
    x, y = pair_set("related", n, size, seed=7)
    np.testing.assert_allclose(ours(x, y), oracle_ms_ssim(x, y, image_dtype=np.float32), rtol=0, atol=1e-12)


def test_scores_are_sensible():
    x, y = pair_set("related", 3, 64)
    related = ours(x, y)
    noise = ours(*pair_set("random", 3, 64))
    assert ((related > 0.5) & (related < 1)).all()
    assert ((noise >= 0) & (noise < 0.2)).all()  # small but not 0: block means of noise are smoother


@pytest.mark.parametrize("size", [16, 32, 64])
def test_identical_images_give_exactly_one(size):
    x = torch.from_numpy(smooth_images(4, size, seed=3))
    assert (ms_ssim(x, x.clone()) == 1.0).all()
    assert (ms_ssim(x.float(), x.float()) == 1.0).all()


def test_float_input_on_0_255_scale_equals_uint8():
    x, y = (torch.from_numpy(a) for a in pair_set("related", 2, 32))
    assert torch.equal(ms_ssim(x.float(), y.double()), ms_ssim(x, y))


def test_data_range_scales_constants():
    x, y = (torch.from_numpy(a) for a in pair_set("related", 2, 32))
    torch.testing.assert_close(ms_ssim(x / 255.0, y / 255.0, data_range=1.0), ms_ssim(x, y), rtol=0, atol=1e-6)


def test_window_schedule():
    assert window_schedule(32, 32) == (11, 11, 8, 4, 2)
    assert window_schedule(16, 16) == (11, 8, 4, 2, 1)
    assert window_schedule(160, 160) == (11, 11, 11, 11, 10)
    assert window_schedule(176, 176) == (11,) * 5
    assert window_schedule(256, 512) == (11,) * 5
    assert window_schedule(32, 64) == (11, 11, 8, 4, 2)


def test_gaussian_window_fspecial_coordinates():
    even = gaussian_window(8)
    coords = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])  # fspecial: -(size/2 - 0.5) .. size/2 - 0.5
    expected = np.exp(-coords ** 2 / (2 * (1.5 * 8 / 11) ** 2))
    np.testing.assert_allclose(even.numpy(), expected / expected.sum(), rtol=1e-15, atol=0)
    odd = gaussian_window(11).numpy()
    expected = np.exp(-np.arange(-5, 6) ** 2 / (2 * 1.5 ** 2))
    np.testing.assert_allclose(odd, expected / expected.sum(), rtol=1e-15, atol=0)
    assert gaussian_window(1).tolist() == [1.0]
    for size in (2, 4, 8, 11):  # separable: g gᵀ is the normalised 2-D window
        g = gaussian_window(size).numpy()
        np.testing.assert_allclose(np.outer(g, g), oracle_window(size), rtol=1e-14, atol=0)
        assert gaussian_window(size).dtype == torch.float64


@pytest.mark.parametrize("size", [176, 256])
@pytest.mark.parametrize("kind", ["random", "related"])
def test_matches_pytorch_msssim_on_grayscale(size, kind):
    """pytorch-msssim 1.0 multiplies the scales per channel and averages the channels afterwards, and
    asserts sides > 160 px; on grayscale (1 channel; ours gets it tiled to 3) at ≥ 176 px (11-tap windows
    at every scale) both definitions coincide.  It filters with the same σ = 1.5 11-tap Gaussian
    (separable, 'valid') and downsamples with 2×2 average pooling; we feed it float64 images.

    * With our float64 window passed as ``win`` it equals the float64 oracle to ~1e-15, and us to ~6e-8
      (our float32 products at the coarse scales, as the spec asks): tolerance 1e-6.
    * With its default window, built and normalised in float32 (taps off by ~6e-8 relative, sum 1 ± ~1e-7),
      σ² = E[x²] − μ² shifts by ~1e-7·μ²; on unrelated pairs cs_0 is ~0.01 and ``cs^0.0448`` turns that into
      ~3e-6 on MS-SSIM (~1e-6 on related pairs): tolerance 1e-5.
    """
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    x, y = pair_set(kind, 2 if size < 256 else 1, size, seed=size + 1, channels=1)
    x64, y64 = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    got = ms_ssim(torch.from_numpy(x).expand(-1, 3, -1, -1), torch.from_numpy(y).expand(-1, 3, -1, -1))
    same_window = pytorch_msssim.ms_ssim(x64, y64, data_range=255, size_average=False,
                                         win=gaussian_window(11).view(1, 1, 1, 11))
    torch.testing.assert_close(got, same_window, rtol=0, atol=1e-6)
    default = pytorch_msssim.ms_ssim(x64, y64, data_range=255, size_average=False)
    torch.testing.assert_close(got, default, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# input checks


@pytest.mark.parametrize("shape", [(1, 3, 40, 48), (1, 3, 32, 24), (1, 3, 8, 8)])
def test_side_not_divisible_by_16(shape):
    x = torch.zeros(shape, dtype=torch.uint8)
    with pytest.raises(InputError, match=rf"divisible by 16.*{shape[2]}×{shape[3]}"):
        ms_ssim(x, x)


def test_mismatched_shapes():
    with pytest.raises(InputError, match="same shape"):
        ms_ssim(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2, 3, 32, 64, dtype=torch.uint8))
    with pytest.raises(InputError, match="same shape"):
        ms_ssim(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(3, 3, 32, 32, dtype=torch.uint8))


def test_bad_inputs():
    with pytest.raises(InputError, match="torch.Tensor"):
        ms_ssim(np.zeros((1, 3, 32, 32)), np.zeros((1, 3, 32, 32)))
    with pytest.raises(InputError, match="N×C×H×W"):
        ms_ssim(torch.zeros(32, 32), torch.zeros(32, 32))
    nan = torch.full((1, 3, 32, 32), float("nan"))
    with pytest.raises(InputError, match="NaN"):
        ms_ssim(nan, nan)
    with pytest.raises(InputError, match="data_range"):
        ms_ssim(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), data_range=0)


def test_single_pair():
    x, y = (torch.from_numpy(a) for a in pair_set("related", 3, 32))
    single = ms_ssim(x[1], y[1])
    assert single.shape == (1,) and single.dtype == torch.float64
    assert single.item() == ms_ssim(x, y)[1].item()


def test_a_pair_does_not_depend_on_its_batch():
    x, y = (torch.from_numpy(a) for a in pair_set("related", 4, 96, seed=5))  # 96 px: two filter tiles
    batched = ms_ssim(x, y)
    for i in range(len(x)):
        assert torch.equal(ms_ssim(x[i:i + 1], y[i:i + 1]), batched[i:i + 1])


def test_chunked_batches_give_the_same_values(monkeypatch):
    from ganmetrics.metrics import ms_ssim as module

    x, y = (torch.from_numpy(a) for a in pair_set("related", 5, 32, seed=6))
    whole = ms_ssim(x, y)
    monkeypatch.setattr(module, "_CHUNK_ELEMENTS", 2 * 3 * 32 * 32)  # two pairs per chunk
    assert torch.equal(ms_ssim(x, y), whole)


def test_empty_batch():
    empty = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    assert ms_ssim(empty, empty).shape == (0,)


# ---------------------------------------------------------------------------------------------
# the diversity metric


def interleave(x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """``[x0, y0, x1, y1, ...]``: a set whose consecutive pairs are (x_k, y_k)."""
    return torch.from_numpy(np.stack([x, y], axis=1).reshape(-1, *x.shape[1:]))


def test_diversity_identical_pairs_is_one():
    x = smooth_images(5, 32, seed=4)
    assert ms_ssim_diversity(interleave(x, x), num_pairs=5, progress=False) == 1.0


def test_diversity_of_noise_is_near_zero():
    images = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8))
    assert 0 <= ms_ssim_diversity(images, num_pairs=8, progress=False) < 0.15  # PGGAN LSUN Bedroom: ~0.06


def test_diversity_equals_mean_of_pairs_whatever_the_batching():
    x, y = pair_set("related", 11, 32, seed=9)
    images = interleave(x, y)
    expected = float(np.mean(oracle_ms_ssim(x, y)))
    values = {bs: ms_ssim_diversity(images, num_pairs=11, batch_size=bs, progress=False) for bs in (3, 16, 22)}
    assert values[3] == values[16] == values[22]
    assert values[3] == pytest.approx(expected, abs=1e-5)
    assert ms_ssim_diversity(images, num_pairs=4, batch_size=3, progress=False) == pytest.approx(
        float(np.mean(oracle_ms_ssim(x[:4], y[:4]))), abs=1e-5)


def test_diversity_with_fewer_images_warns_and_uses_them():
    x, y = pair_set("related", 3, 32, seed=2)
    images = torch.cat([interleave(x, y), torch.from_numpy(x[:1])])  # 7 images: 3 pairs + 1
    with pytest.warns(UserWarning, match=r"only 7 images, so 3 pairs .* num_pairs=10.*1 image left unpaired"):
        value = ms_ssim_diversity(images, num_pairs=10, batch_size=2, progress=False)
    assert value == pytest.approx(float(np.mean(oracle_ms_ssim(x, y))), abs=1e-5)


def test_diversity_of_one_image_is_an_error():
    with pytest.raises(InputError, match="at least 2 images"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms_ssim_diversity(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), num_pairs=1, progress=False)
    with pytest.raises(InputError, match="num_pairs"):
        ms_ssim_diversity(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), num_pairs=0, progress=False)


def test_diversity_of_a_generator_draws_two_images_per_pair():
    calls = []

    def generator(z: torch.Tensor) -> torch.Tensor:
        calls.append(len(z))
        return torch.tanh(z[:, :3 * 16 * 16].view(-1, 3, 16, 16)).repeat_interleave(2, -1).repeat_interleave(2, -2)

    value = ms_ssim_diversity(generator, num_pairs=5, z_dim=3 * 16 * 16, batch_size=4, device="cpu", progress=False)
    assert sum(calls) == 10 and 0 <= value < 1


def test_diversity_of_a_folder(image_folders):
    shapes, _ = image_folders  # 20 PNGs at 32 px
    first = ms_ssim_diversity(shapes, num_pairs=4, batch_size=3, num_workers=2, progress=False)  # stops early
    assert first == ms_ssim_diversity(shapes, num_pairs=4, batch_size=8, num_workers=0, progress=False)
    with pytest.warns(UserWarning, match="only 20 images, so 10 pairs"):
        ms_ssim_diversity(shapes, num_pairs=50, batch_size=8, num_workers=0, progress=False)


def test_accumulator_pairs_across_batches_and_caps():
    x, y = pair_set("related", 6, 32, seed=11)
    images = interleave(x, y)
    per_pair = ms_ssim(torch.from_numpy(x), torch.from_numpy(y))
    capped = MSSSIMDiversity(max_pairs=4)
    for start, stop in [(0, 1), (1, 4), (4, 5), (5, 12)]:
        capped.update(images[start:stop])
    assert capped.num_pairs == 4 and capped.full and capped.num_images == 12
    assert capped.compute() == pytest.approx(per_pair[:4].mean().item(), abs=1e-15)
    odd = MSSSIMDiversity()
    odd.update(images[:5])
    assert odd.num_pairs == 2 and not odd.full
    odd.update(list(images[5:]))  # a list of same-size images is fine
    assert odd.num_pairs == 6 and odd.compute() == pytest.approx(per_pair.mean().item(), abs=1e-15)


def test_accumulator_needs_one_image_size():
    acc = MSSSIMDiversity()
    with pytest.raises(InputError, match="same size"):
        acc.update([torch.zeros(3, 32, 32, dtype=torch.uint8), torch.zeros(3, 64, 64, dtype=torch.uint8)])
    acc.update(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(InputError, match="32×32 and then 64×64"):
        acc.update(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(InputError, match="divisible by 16"):
        MSSSIMDiversity().update(torch.zeros(2, 3, 40, 40, dtype=torch.uint8))
    with pytest.raises(InputError, match="max_pairs"):
        MSSSIMDiversity(max_pairs=0)
