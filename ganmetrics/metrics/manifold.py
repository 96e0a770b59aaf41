"""k-NN manifold metrics of two feature sets: precision and recall (Kynkäänniemi et al. 2019), density and
coverage (Naeem et al. 2020).

For real features ``x_1..x_N`` and generated ``y_1..y_M``, ``r(x_i)`` is the distance from ``x_i`` to its k-th
nearest neighbour among the real features (itself not counted), ``r(y_j)`` likewise among the generated ones:

* precision ``= 1/M Σ_j [∃i: ‖y_j − x_i‖ ≼ r(x_i)]``, recall ``= 1/N Σ_i [∃j: ‖x_i − y_j‖ ≼ r(y_j)]``;
* density ``= 1/(kM) Σ_j Σ_i [‖y_j − x_i‖ ≼ r(x_i)]``, coverage ``= 1/N Σ_i [min_j ‖x_i − y_j‖ ≼ r(x_i)]``.

``≼`` is ``≤`` in torch-fidelity's precision/recall and ``<`` in ``prdc`` (``strict``).

**Exact in float64, at float32 speed.** Squared distances are first computed in float32 as
``‖a‖² + ‖b‖² − 2a·b`` (one matrix product per block); their error is at most ``(D + 8)·u·(‖a‖² + ‖b‖²)``: the
dot product's ``γ_D·‖a‖‖b‖`` doubled (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1; ``u = 2⁻²⁴``,
``D`` the feature size) plus the rounding of the norms and of the additions.  Every ball test whose margin exceeds
that bound is decided by the float32 value (against thresholds rounded the safe way), the few within it are
recomputed as ``Σ (a_i − b_i)²`` in float64.  k-NN radii likewise: the float32 ranking proposes the candidates that
can be the k-th neighbour and their float64 distances decide.  The result is that of float64 distances throughout
(against float32's ~1e-7 relative in the peers), at the cost of float32 matrix products.  Several ``(k, strict)``
share one pass (the radii for the largest k serve the smaller).

Memory: ``block = max(1, 2²⁴ // max(N, M))`` rows at a time, so a few ``block × max(N, M)`` float32 matrices
(64 MiB each) live at once whatever N and M — under 1 GiB at 50,000 × 50,000 — beside the float32 features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..stats import check_compatible
from .base import HIGHER, KEPT_FEATURES, Context, Metric, SetData

BLOCK_ELEMENTS = 1 << 24  # distances per block: 64 MiB of float32
DEFAULT_BLOCK = 1024
_UNIT_ROUNDOFF = 2.0 ** -24
_PAIR_CHUNK = 4096  # pairs per exact float64 recomputation (D·8·4096 bytes: 64 MiB at D = 2048)


@dataclass(frozen=True)
class ManifoldScores:
    precision: float
    recall: float
    density: float
    coverage: float


class _Points:
    """One feature set: float32 rows (the features are float32) and squared norms (float64, and rounded to float32
    for the distance matrices)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x32 = x.float().contiguous()
        self.sq64 = torch.cat([(part * part).sum(dim=1) for part in self.x32.double().split(_PAIR_CHUNK)])
        self.sq = self.sq64.float()
        self.largest = float(self.sq64.max())
        # |computed − exact| squared distance ≤ bound·(‖a‖² + ‖b‖²): the dot product's γ_D‖a‖‖b‖ doubled, plus the
        # rounding of the norms and of the two additions (module docstring)
        self.bound = 1.01 * (x.shape[1] + 8) * _UNIT_ROUNDOFF

    def __len__(self) -> int:
        return self.x32.shape[0]

    def error(self, rows: slice | None = None, *, other_largest: float) -> torch.Tensor:
        """float64: a bound on the error of every computed squared distance of these rows (all by default) to any
        row of a set whose largest squared norm is ``other_largest``."""
        sq = self.sq64 if rows is None else self.sq64[rows]
        return self.bound * (sq + other_largest)


def _approx(a: _Points, rows: slice, b: _Points) -> torch.Tensor:
    """float32 ``[B, M]``: squared distances ``‖a‖² + ‖b‖² − 2a·b`` of ``a[rows]`` to every row of ``b`` (the −2a·b
    and ‖b‖² in one matrix product)."""
    return torch.addmm(b.sq[None, :], a.x32[rows], b.x32.T, alpha=-2.0).add_(a.sq[rows, None])


def _below(t: torch.Tensor) -> torch.Tensor:
    """float32 values ≤ the float64 ``t`` (rounded down), so a float32 comparison with them is never too generous."""
    t32 = t.float()
    return torch.where(t32.double() > t, torch.nextafter(t32, torch.full_like(t32, -math.inf)), t32)


def _above(t: torch.Tensor) -> torch.Tensor:
    """float32 values ≥ the float64 ``t`` (rounded up)."""
    t32 = t.float()
    return torch.where(t32.double() < t, torch.nextafter(t32, torch.full_like(t32, math.inf)), t32)


def _exact(a: _Points, ia: torch.Tensor, b: _Points, ib: torch.Tensor) -> torch.Tensor:
    """float64 ``Σ (a_i − b_j)²`` of the pairs ``(ia[p], ib[p])``, in chunks (float32 rows widen exactly)."""
    out = torch.empty(len(ia), dtype=torch.float64, device=a.x32.device)
    for start in range(0, len(ia), _PAIR_CHUNK):
        part = slice(start, start + _PAIR_CHUNK)
        out[part] = (a.x32[ia[part]].double() - b.x32[ib[part]].double()).square_().sum(dim=1)
    return out


def _inside(d2: torch.Tensor, r2: torch.Tensor, err: torch.Tensor, exact_d2, strict: bool) -> torch.Tensor:
    """``d ≼ r`` for a block of computed squared distances ``d2`` whose errors are at most ``err`` (``r2`` and ``err``:
    float64, broadcasting as a column or a row): decided in float32 where the error cannot change the answer, by
    ``exact_d2(i, j)`` elsewhere (a few pairs within rounding of the ball's edge)."""
    inside = d2 < _below(r2 - err)
    unsure = (d2 <= _above(r2 + err)) & ~inside
    if bool(unsure.any()):
        pairs = unsure.nonzero()
        exact = exact_d2(pairs[:, 0], pairs[:, 1])
        radius = r2.expand_as(d2)[pairs[:, 0], pairs[:, 1]]
        inside[pairs[:, 0], pairs[:, 1]] = exact < radius if strict else exact <= radius
    return inside


def _knn_sq_radii(x: _Points, ks: list[int], block: int) -> dict[int, torch.Tensor]:
    """float64 ``[N]`` per k: each row's squared distance to its k-th nearest other row (itself is the nearest).

    Per row, the ``k + 1`` smallest computed values ``v`` bound the exact ``(k+1)``-th smallest by ``v_{k+1} + e``
    (``e``: the row's error bound), so only rows computed within ``v_{k+1} + 2e`` can rank up to it: those candidates
    (usually ``k + 1`` and a few) get exact float64 distances, sorted."""
    n, top = len(x), max(ks) + 1
    radii = {k: torch.empty(n, dtype=torch.float64, device=x.x32.device) for k in ks}
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        d2 = _approx(x, rows, x)
        reach = _above(d2.topk(top, dim=1, largest=False).values.max(dim=1).values.double()
                       + 2 * x.error(rows, other_largest=x.largest))
        m = int((d2 <= reach[:, None]).sum(dim=1).max())
        candidates = d2.topk(m, dim=1, largest=False, sorted=False).indices
        index = torch.arange(rows.start, rows.stop, device=d2.device).repeat_interleave(m)
        exact = _exact(x, index, x, candidates.flatten()).view(-1, m).sort(dim=1).values
        for k in ks:
            radii[k][rows] = exact[:, k]  # column 0: the row itself
    return radii


def manifold_scores_many(real: torch.Tensor, fake: torch.Tensor, wanted: list[tuple[int, bool]], *,
                         block: int | None = None) -> dict[tuple[int, bool], ManifoldScores]:
    """:func:`manifold_scores` for several ``(k, strict)`` in one pass (module docstring)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected two [N, D] feature matrices of the same D, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    ks = sorted({k for k, _ in wanted})
    if not 1 <= ks[0] or ks[-1] >= min(real.shape[0], fake.shape[0]):
        raise ValueError(f"k must be between 1 and the number of feature vectors − 1 "
                         f"({min(real.shape[0], fake.shape[0]) - 1}), got {ks}")
    block = block or max(1, BLOCK_ELEMENTS // max(real.shape[0], fake.shape[0]))
    x, y = _Points(real), _Points(fake)
    r_real, r_fake = _knn_sq_radii(x, ks, block), _knn_sq_radii(y, ks, block)
    device = x.x32.device
    state = {key: dict(fake_covered=torch.zeros(len(y), dtype=torch.bool, device=device),  # y_j in a real ball
                       fake_balls_in=torch.zeros(len(y), dtype=torch.float64, device=device),  # in how many
                       real_recalled=torch.zeros(len(x), dtype=torch.bool, device=device),  # x_i in a fake ball
                       real_covered=torch.zeros(len(x), dtype=torch.bool, device=device))  # a y_j in x_i's ball
             for key in dict.fromkeys(wanted)}
    fake_err = y.error(other_largest=x.largest)[None, :]  # per generated row, against any real row
    for start in range(0, len(x), block):
        rows = slice(start, min(start + block, len(x)))
        d2 = _approx(x, rows, y)  # d2[i, j] ≈ ‖x_i − y_j‖² for this block of real rows
        real_err = x.error(rows, other_largest=y.largest)[:, None]

        def exact(i: torch.Tensor, j: torch.Tensor, first: int = rows.start) -> torch.Tensor:
            return _exact(x, i + first, y, j)

        for (k, strict), s in state.items():
            in_real_balls = _inside(d2, r_real[k][rows, None], real_err, exact, strict)
            s["fake_covered"] |= in_real_balls.any(dim=0)
            s["fake_balls_in"] += in_real_balls.sum(dim=0, dtype=torch.float64)
            s["real_covered"][rows] = in_real_balls.any(dim=1)
            s["real_recalled"][rows] = _inside(d2, r_fake[k][None, :], fake_err, exact, strict).any(dim=1)
    return {(k, strict): ManifoldScores(precision=s["fake_covered"].double().mean().item(),
                                        recall=s["real_recalled"].double().mean().item(),
                                        density=s["fake_balls_in"].mean().item() / k,
                                        coverage=s["real_covered"].double().mean().item())
            for (k, strict), s in state.items()}


def knn_radii(features: torch.Tensor, k: int, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """float64 ``[N]``: each row's distance to its k-th nearest other row (the (k+1)-th smallest, itself first)."""
    if not 1 <= k < features.shape[0]:
        raise ValueError(f"k must be between 1 and the number of feature vectors − 1 ({features.shape[0] - 1}), "
                         f"got {k}")
    return _knn_sq_radii(_Points(features), [k], block)[k].sqrt()


def manifold_scores(real: torch.Tensor, fake: torch.Tensor, k: int, *, strict: bool,
                    block: int | None = None) -> ManifoldScores:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (feature matrices ``[N, D]``,
    ``[M, D]``) with k nearest neighbours; ``strict``: ``<`` instead of ``≤`` (see the module docstring)."""
    return manifold_scores_many(real, fake, [(k, strict)], block=block)[(k, strict)]


def _too_few(what: str, k: int, *counts: int | None) -> str:
    shown = " and ".join("an unknown number" if count is None else str(count) for count in counts)
    return (f"{what} with k={k} nearest neighbours needs more than {k} images in each set, got {shown}; give more "
            "images or a smaller k")


def want(k: int, strict: bool, ctx: Context) -> None:
    """Announce, before any metric computes, that ``(k, strict)`` will be asked for: all are computed in one pass."""
    ctx.cache.setdefault("manifold_wanted", set()).add((k, strict))


def scores_of_sets(gen: SetData, real: SetData, k: int, *, strict: bool, ctx: Context, what: str) -> ManifoldScores:
    """:func:`manifold_scores` of two sets' kept features on ``ctx.device``; the first call computes every
    announced ``(k, strict)`` (:func:`want`) in one pass, the others read the result (``what`` names the metric in
    errors)."""
    key = ("manifold", k, strict)
    if key not in ctx.cache:
        check_compatible(gen.stats, real.stats, strict=ctx.strict)
        fake, reals = (torch.as_tensor(np.asarray(s.stats.features)).to(ctx.device) for s in (gen, real))
        wanted = sorted(ctx.cache.get("manifold_wanted", set()) | {(k, strict)})
        fewest, largest = min(len(fake), len(reals)), max(kk for kk, _ in wanted)
        if fewest <= largest:
            raise InputError(_too_few(what, largest, len(fake), len(reals)))
        for (kk, ss), scores in manifold_scores_many(reals, fake, wanted).items():
            ctx.cache[("manifold", kk, ss)] = scores
    return ctx.cache[key]


class ManifoldMetric(Metric):
    """One field of :class:`ManifoldScores` as a metric (``Options`` has ``k``); subclasses say which k-NN family
    (``family``: its name in errors) and the edge rule (``strict``)."""

    direction, needs = HIGHER, frozenset({KEPT_FEATURES})
    family: str
    strict: bool
    counted: str  #: whose samples the value counts ("gen" or "real"): one ball test moves it by 1 / that count
    over_k: bool = False  #: density: the count is divided by k too
    tolerance_basis = ("one ball test flipping: 1.5 counts (1 / the counted set's size, density also / k), so one flip "
                       "passes and two do not. On the zoo's stored CI-tier images no ball test flipped with oneDNN held "
                       "to SSE4.1 instead of AVX-512: the smallest margin of a test was 8.6e-5 relative, the largest "
                       "shift of a squared distance 3.5e-7.")

    def tolerance_for(self, options, num_images: tuple[int, int]) -> float:
        count = num_images[0 if self.counted == "gen" else 1]
        return 1.5 / (count * (options.k if self.over_k else 1))

    def unavailable(self, gen, real, options, ctx: Context) -> str | Exception | None:
        reason = super().unavailable(gen, real, options, ctx)
        if reason:
            return reason
        counts = [getattr(side, "total_images", None) or getattr(side, "num_samples", None) for side in (gen, real)]
        if any(count is not None and count <= options.k for count in counts):  # known before any image is read
            return _too_few(self.family, options.k, *counts)
        return None

    def prepare(self, options, ctx: Context) -> None:
        want(options.k, self.strict, ctx)

    def compute(self, gen: SetData, real: SetData, options, ctx: Context) -> float:
        return getattr(scores_of_sets(gen, real, options.k, strict=self.strict, ctx=ctx, what=self.family), self.name)

    def detail(self, options, protocol: str, num_images: list[int]) -> str:
        return f"k = {options.k}, pool3 features, the ball's edge {'outside' if self.strict else 'inside'}"
