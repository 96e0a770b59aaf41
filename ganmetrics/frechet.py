"""Fréchet distance between two Gaussians, the core of FID.

``FD = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2}``  (Dowson & Landau 1982; used as FID by
Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium").

``tr (Σ1 Σ2)^{1/2} = Σ_i sqrt(λ_i(A))`` for any symmetric PSD ``A`` similar to ``Σ1 Σ2``:

* Cholesky form (fast): ``Σ1 = L Lᵀ``, ``A = Lᵀ Σ2 L``.  The eigenvalues of ``A`` are those of
  the generalized symmetric-definite problem ``Σ2 Σ1 x = λ x`` (LAPACK ``dsygv``, ``itype=2``),
  which forms ``Lᵀ Σ2 L`` with ``dsygst`` in ``n³`` flops instead of two ``2n³`` products:
  0.53 s instead of 0.78 s at d = 2048 on 2 CPU cores, the same value to 1e-14 relative;
* pivoted Cholesky form, when ``Σ1`` is singular (fewer samples than dimensions, N ≤ d): LAPACK
  ``dpstrf`` gives ``Σ1 = P L Lᵀ Pᵀ`` with ``L`` ``[d, r]`` of rank ``r``, and ``A = (PL)ᵀ Σ2 (PL)``
  is ``r × r`` with the nonzero eigenvalues of ``Σ1 Σ2``: 0.36 s instead of 1.64 s for the eigh form
  at d = 2048, N = 1000, the same value to 1e-15 relative;
* eigh form (last resort, when ``Σ1`` is not even semi-definite, i.e. invalid input):
  ``A = Σ1^{1/2} Σ2 Σ1^{1/2}`` with ``Σ1^{1/2}`` from ``eigh`` and its negative eigenvalues clamped
  (with a warning).

Both avoid ``scipy.linalg.sqrtm`` (slow, complex round-off) and ``eig`` of the non-symmetric
product.  Everything is float64 numpy/LAPACK.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch

from .errors import StatsError

#: Clamped negative eigenvalue mass, as a fraction of the total |eigenvalue| mass, above which we warn.
CLAMP_WARN_RATIO = 1e-6
#: Largest ``‖Σ1 − P L Lᵀ Pᵀ‖_F / ‖Σ1‖_F`` of a pivoted Cholesky factor: rounding is ~d·ε ≈ 5e-13, while an
#: indefinite Σ1 (no such factor exists) leaves at least its negative eigenvalues' magnitude.
PIVOTED_CHOLESKY_RTOL = 1e-9
#: Largest tolerated asymmetry ``‖(Σ − Σᵀ)v‖∞ / ‖Σv‖∞`` of a covariance, for a fixed random probe ``v``.
SYMMETRY_RTOL = 1e-5


def _to_float64(x) -> np.ndarray:
    """A numpy float64 copy-or-view of a numpy array, torch tensor or nested sequence."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def as_moments(mu, sigma, *, name: str = "statistics") -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` as float64 arrays after checking ``mu`` is ``[d]``, ``sigma`` a symmetric ``[d, d]``, all finite.

    Raises :class:`StatsError` (prefixed with ``name``) otherwise.
    """
    try:
        mu, sigma = _to_float64(mu), _to_float64(sigma)
    except (TypeError, ValueError):
        kinds = ", ".join(f"{key} {getattr(v, 'dtype', type(v).__name__)}" for key, v in (("mu", mu), ("sigma", sigma)))
        raise StatsError(f"{name}: mu and sigma must be numeric arrays, got {kinds}") from None
    if mu.ndim != 1 or mu.shape[0] == 0:
        raise StatsError(f"{name}: mu must be a non-empty vector [d], got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise StatsError(f"{name}: sigma must be a [{d}, {d}] matrix to match mu [{d}], got shape {sigma.shape}")
    for key, value in (("mu", mu), ("sigma", sigma)):
        if not np.isfinite(value).all():
            raise StatsError(f"{name}: {key} contains NaN or infinite values")
    if not _is_symmetric(sigma):
        raise StatsError(f"{name}: sigma is not symmetric, so it is not a covariance matrix")
    return mu, sigma


def check_positive_semidefinite(sigma: np.ndarray, eps: float, *, name: str = "statistics") -> None:
    """StatsError unless the symmetric ``sigma`` is positive semi-definite up to the rounding of its storage.

    Rounding each entry of a PSD matrix with relative error ``eps`` moves its eigenvalues by at most
    ``‖E‖₂ ≤ ‖E‖_F ≤ d·eps·max|Σ_ij| ≤ d·eps·max diag Σ`` (for PSD ``Σ``, ``|Σ_ij| ≤ max diag``), so a matrix
    whose smallest eigenvalue lies below ``−τ``, ``τ = 10·d·eps·max diag Σ``, was never a covariance.  Tested
    by a Cholesky factorisation (LAPACK ``dpotrf``) of ``Σ + τI``, which exists iff ``λ_min(Σ) > −τ``.
    """
    d = sigma.shape[0]
    diagonal = np.diag(sigma)
    scale = max(float(diagonal.max()), 0.0)
    tolerance = 10 * d * eps * scale
    negative = np.flatnonzero(diagonal < -tolerance)
    if negative.size:
        k = int(negative[0])
        raise StatsError(f"{name}: sigma has {negative.size} negative variance(s) on its diagonal (e.g. sigma[{k}, {k}] "
                         f"= {diagonal[k]:.4g}), so it is not a covariance matrix; recompute the statistics")
    if scale == 0.0:
        if np.any(sigma):
            raise StatsError(f"{name}: sigma has a zero diagonal but nonzero entries, so it is not a covariance "
                             "matrix; recompute the statistics")
        return
    _, info = scipy.linalg.lapack.dpotrf(sigma + tolerance * np.eye(d), lower=1, clean=0)
    if info > 0:
        raise StatsError(f"{name}: sigma is not positive semi-definite (an eigenvalue below -{tolerance:.3g}, beyond "
                         "the rounding of its storage), so it is not a covariance matrix; recompute the statistics")


def _is_symmetric(sigma: np.ndarray) -> bool:
    """``Σ v ≈ Σᵀ v`` for a fixed random ``v``: two O(d²) products instead of forming ``Σ − Σᵀ``."""
    probe = np.random.default_rng(0).standard_normal(sigma.shape[0])
    column, row = sigma @ probe, probe @ sigma
    return bool(np.abs(column - row).max() <= SYMMETRY_RTOL * np.abs(column).max())


def _clamp_eigenvalues(w: np.ndarray, what: str) -> np.ndarray:
    """Eigenvalues ``w`` of a matrix PSD in exact arithmetic, with those below its rounding level set to 0.

    The rounding level is ``d·ε·max|w|`` (numpy's ``matrix_rank`` tolerance): smaller eigenvalues are
    noise, which ``sqrt`` would amplify to ``~sqrt(ε)`` each for the null space of a singular
    covariance.  Warns when the negative mass exceeds ``CLAMP_WARN_RATIO`` of the total.
    """
    negative = -w[w < 0].sum()
    total = np.abs(w).sum()
    if negative > CLAMP_WARN_RATIO * total:
        warnings.warn(f"Fréchet distance: clamped negative eigenvalues of {what} to 0 (mass {negative:.3g}, "
                      f"{negative / total:.2g} of the total); are the covariances positive semi-definite?",
                      RuntimeWarning, stacklevel=4)
    tolerance = w.shape[0] * np.finfo(w.dtype).eps * np.abs(w).max(initial=0.0)
    return np.where(w > tolerance, w, 0.0)


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """``Σ^{1/2} = V diag(sqrt(max(λ, 0))) Vᵀ`` of a symmetric PSD matrix (``Σ = V diag(λ) Vᵀ`` by eigh)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(_clamp_eigenvalues(w, "sigma1"))) @ v.T


def _cholesky_form_eigenvalues(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray | None:
    """Eigenvalues of ``A = Lᵀ Σ2 L`` (``Σ1 = L Lᵀ``) by LAPACK ``dsygv(itype=2)``; None when ``Σ1`` is not positive definite.

    Both matrices are read from their lower triangles (they are symmetric up to rounding).
    """
    try:
        return scipy.linalg.eigh(sigma2, sigma1, type=2, eigvals_only=True, driver="gvx", check_finite=False)
    except np.linalg.LinAlgError:  # Cholesky of Σ1 failed
        return None


def _pivoted_cholesky_form_eigenvalues(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray | None:
    """Nonzero eigenvalues of ``Σ1 Σ2`` for a semi-definite ``Σ1`` of rank ``r``: those of ``(PL)ᵀ Σ2 (PL)``, ``r × r``.

    ``Σ1 = P L Lᵀ Pᵀ`` by LAPACK ``dpstrf`` (pivoted Cholesky, stopping at pivots below
    ``d·ε·max diag Σ1``).  None when that factor does not reproduce ``Σ1`` to rounding
    (``PIVOTED_CHOLESKY_RTOL``): ``Σ1`` is then not positive semi-definite.
    """
    factor, pivots, rank, info = scipy.linalg.lapack.dpstrf(sigma1, lower=1, tol=-1.0)
    if info < 0:
        raise StatsError(f"LAPACK dpstrf rejected argument {-info} (a bug: please report it)")
    columns = np.zeros((sigma1.shape[0], rank))
    columns[pivots - 1] = np.tril(factor)[:, :rank]  # P L: row k of L belongs to variable pivots[k]
    residual = np.linalg.norm(sigma1 - columns @ columns.T) if rank else np.linalg.norm(sigma1)
    if residual > PIVOTED_CHOLESKY_RTOL * np.linalg.norm(sigma1):
        return None
    return np.linalg.eigvalsh(columns.T @ sigma2 @ columns)


def _eigh_form_eigenvalues(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Eigenvalues of ``A = S Σ2 S`` with ``S = Σ1^{1/2}`` (negative eigenvalues of ``Σ1`` clamped, with a warning)."""
    root = psd_sqrt(sigma1)
    return np.linalg.eigvalsh(root @ sigma2 @ root)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr (Σ1 Σ2)^{1/2} = Σ_i sqrt(λ_i(A))`` (λ below rounding level → 0), ``A`` by the first form that applies:
    Cholesky (``Σ1`` definite), pivoted Cholesky (semi-definite), eigh (anything symmetric)."""
    eigenvalues = _cholesky_form_eigenvalues(sigma1, sigma2)
    if eigenvalues is None:
        eigenvalues = _pivoted_cholesky_form_eigenvalues(sigma1, sigma2)
    if eigenvalues is None:
        eigenvalues = _eigh_form_eigenvalues(sigma1, sigma2)
    return float(np.sqrt(_clamp_eigenvalues(eigenvalues, "sigma1·sigma2")).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance ``‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2}`` between N(μ1, Σ1) and N(μ2, Σ2).

    Inputs are numpy arrays or torch tensors (``mu`` ``[d]``, ``sigma`` ``[d, d]``), computed in
    float64.  Raises :class:`StatsError` on mismatched shapes or non-finite values.
    References: Dowson & Landau 1982; Heusel et al. 2017 (FID).
    """
    mu1, sigma1 = as_moments(mu1, sigma1, name="first statistics")
    mu2, sigma2 = as_moments(mu2, sigma2, name="second statistics")
    if mu1.shape != mu2.shape:
        raise StatsError(f"the two statistics have different dimensions: {mu1.shape[0]} and {mu2.shape[0]}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
