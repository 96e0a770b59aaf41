"""ganmetrics.frechet: the Fréchet distance against a float64 ``scipy.linalg.sqrtm`` reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

import ganmetrics.frechet as frechet_module
from ganmetrics.errors import StatsError
from ganmetrics.frechet import frechet_distance, trace_sqrt_product


def gaussian_stats(seed: int, n: int, d: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``n`` correlated ``d``-dim samples (rank min(n − 1, d))."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(d) + rng.standard_normal((d, d)) / (2 * np.sqrt(d))
    x = rng.standard_normal((n, d)) @ mixing * rng.uniform(0.5, 2.0, d) + shift
    return x.mean(axis=0), np.cov(x, rowvar=False)


def sqrtm_reference(mu1, sigma1, mu2, sigma2) -> float:
    """The textbook FD with ``tr sqrtm(Σ1Σ2)``, real part taken as pytorch-fid does."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sqrtm_reference(seed):
    a, b = gaussian_stats(seed, 500, 64), gaussian_stats(seed + 100, 700, 64, shift=0.3)
    assert frechet_distance(*a, *b) == pytest.approx(sqrtm_reference(*a, *b), rel=1e-6)


@pytest.mark.slow
def test_matches_sqrtm_reference_d2048():
    a, b = gaussian_stats(0, 4096, 2048), gaussian_stats(1, 4096, 2048, shift=0.1)
    assert frechet_distance(*a, *b) == pytest.approx(sqrtm_reference(*a, *b), rel=1e-6)


@pytest.mark.filterwarnings("error")  # rank deficiency alone must not trigger the clamping warning
@pytest.mark.parametrize("singular", ["first", "second", "both"])
def test_singular_covariance_matches_sqrtm_reference(singular):
    """Covariances from fewer samples than dimensions (rank < d), as with N < 2048 images."""
    low_rank, full_rank = gaussian_stats(3, 100, 256), gaussian_stats(4, 1000, 256, shift=0.2)
    if singular == "both":
        a, b = low_rank, gaussian_stats(5, 150, 256, shift=0.2)
        # sqrtm of a product of two singular matrices is unreliable (Jordan blocks at 0): check
        # the two argument orders, which take different paths (eigh form on either side), agree.
        assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-10)
        return
    a, b = (low_rank, full_rank) if singular == "first" else (full_rank, low_rank)
    assert np.linalg.matrix_rank(low_rank[1]) < 256
    assert frechet_distance(*a, *b) == pytest.approx(sqrtm_reference(*a, *b), rel=1e-6)


def test_cholesky_form_equals_explicit_product():
    """LAPACK dsygv(itype=2) gives the eigenvalues of ``Lᵀ Σ2 L`` formed explicitly (``Σ1 = L Lᵀ``)."""
    (_, s1), (_, s2) = gaussian_stats(16, 600, 64), gaussian_stats(17, 600, 64)
    chol = np.linalg.cholesky(s1)
    explicit = np.linalg.eigvalsh(chol.T @ s2 @ chol)
    np.testing.assert_allclose(frechet_module._cholesky_form_eigenvalues(s1, s2), explicit, rtol=1e-10,
                               atol=1e-12 * explicit.max())


@pytest.mark.parametrize("forced", ["pivoted", "eigh"])
def test_fallback_forms_agree_with_cholesky_form(monkeypatch, forced):
    """Force each fallback on a well-conditioned pair: every form gives the same trace."""
    (_, s1), (_, s2) = gaussian_stats(6, 400, 48), gaussian_stats(7, 400, 48)
    expected = trace_sqrt_product(s1, s2)
    monkeypatch.setattr(frechet_module, "_cholesky_form_eigenvalues", lambda *_: None)
    if forced == "eigh":
        monkeypatch.setattr(frechet_module, "_pivoted_cholesky_form_eigenvalues", lambda *_: None)
    assert trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("n", [20, 40])  # rank 19 and rank 39 of d = 64 (rank d − 1 may pass plain Cholesky by rounding)
def test_singular_first_covariance_takes_the_pivoted_cholesky_form(n):
    """dsygv refuses a singular Σ1; the pivoted Cholesky form finds its rank and the eigh form's nonzero eigenvalues."""
    (_, low_rank), (_, full_rank) = gaussian_stats(18, n, 64), gaussian_stats(19, 500, 64)
    assert frechet_module._cholesky_form_eigenvalues(low_rank, full_rank) is None
    pivoted = frechet_module._pivoted_cholesky_form_eigenvalues(low_rank, full_rank)
    assert pivoted is not None and pivoted.shape == (n - 1,)
    eigh = np.sort(frechet_module._eigh_form_eigenvalues(low_rank, full_rank))[-(n - 1):]
    np.testing.assert_allclose(np.sort(pivoted), eigh, rtol=1e-8, atol=1e-12 * eigh.max())


def test_indefinite_first_covariance_is_refused_by_pivoted_cholesky_and_warned_about():
    """No pivoted Cholesky factor reproduces an indefinite Σ1: the eigh form takes over and warns."""
    sigma1 = np.diag([1.0, 2.0, -0.5])
    sigma1[0, 1] = sigma1[1, 0] = 0.1
    assert frechet_module._pivoted_cholesky_form_eigenvalues(sigma1, np.eye(3)) is None
    with pytest.warns(RuntimeWarning, match="negative eigenvalues of sigma1"):
        frechet_distance(np.zeros(3), sigma1, np.zeros(3), np.eye(3))


def test_zero_covariance_has_rank_zero():
    assert frechet_module._pivoted_cholesky_form_eigenvalues(np.zeros((4, 4)), np.eye(4)).shape == (0,)
    assert frechet_distance(np.ones(4), np.zeros((4, 4)), np.zeros(4), np.eye(4)) == pytest.approx(8.0)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("n", [1000, 50])  # full rank, and rank 49 < d
def test_distance_to_itself_is_zero(n):
    mu, sigma = gaussian_stats(8, n, 128)
    # eigenvalues below the rounding level are zeroed, so the null space adds no sqrt(ε) noise
    assert abs(frechet_distance(mu, sigma, mu, sigma)) <= 1e-10 * np.trace(sigma)


@pytest.mark.parametrize("n", [1000, 50])
def test_symmetric(n):
    a, b = gaussian_stats(9, n, 96), gaussian_stats(10, 300, 96, shift=-0.5)
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-10)


def test_one_dimensional_closed_form():
    """d = 1: FD = (m1 − m2)² + (s1 − s2)² with standard deviations s."""
    assert frechet_distance([1.0], [[4.0]], [4.0], [[9.0]]) == 10.0
    rng = np.random.default_rng(11)
    for m1, m2, s1, s2 in rng.uniform(0.1, 5.0, (20, 4)):
        expected = (m1 - m2) ** 2 + (s1 - s2) ** 2
        assert frechet_distance([m1], [[s1 * s1]], [m2], [[s2 * s2]]) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_accepts_torch_tensors():
    a, b = gaussian_stats(12, 200, 16), gaussian_stats(13, 200, 16)
    as_torch = [torch.from_numpy(x).float() if i % 2 else torch.from_numpy(x) for i, x in enumerate((*a, *b))]
    assert frechet_distance(*as_torch) == pytest.approx(frechet_distance(*a, *b), rel=1e-5)


def test_warns_when_not_positive_semidefinite():
    with pytest.warns(RuntimeWarning, match="negative eigenvalues"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0]))


def test_no_warning_on_ordinary_input():
    a, b = gaussian_stats(14, 300, 32), gaussian_stats(15, 300, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(*a, *b)


def _bad_inputs():
    mu, sigma = np.zeros(3), np.eye(3)
    nan_mu, inf_sigma, asymmetric = mu.copy(), sigma.copy(), sigma.copy()
    nan_mu[1] = np.nan
    inf_sigma[0, 2] = inf_sigma[2, 0] = np.inf
    asymmetric[0, 1] = 0.5
    return {
        "mu not a vector": ((np.zeros((3, 1)), sigma, mu, sigma), "mu must be"),
        "sigma not square": ((mu, np.zeros((3, 2)), mu, sigma), r"sigma must be a \[3, 3\]"),
        "sigma too small": ((mu, sigma, mu, np.eye(2)), r"sigma must be a \[3, 3\]"),
        "dimensions differ": ((mu, sigma, np.zeros(2), np.eye(2)), "different dimensions: 3 and 2"),
        "empty": ((np.zeros(0), np.zeros((0, 0)), mu, sigma), "non-empty"),
        "nan mu": ((nan_mu, sigma, mu, sigma), "mu contains NaN"),
        "inf sigma": ((mu, sigma, mu, inf_sigma), "sigma contains NaN or infinite"),
        "asymmetric sigma": ((mu, asymmetric, mu, sigma), "not symmetric"),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_input_raises_stats_error(case):
    args, message = _bad_inputs()[case]
    with pytest.raises(StatsError, match=message):
        frechet_distance(*args)
