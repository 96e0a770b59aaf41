"""ganmetrics' metrics as ``torchmetrics.Metric`` subclasses, so Lightning's ``self.log`` and torchmetrics' state
sync work with them::

    from ganmetrics.integrations.torchmetrics import FID
    fid = FID(real="shapes32")            # reference statistics loaded once (or update(imgs, real=True))
    fid.update(fake_images)               # uint8 N×3×H×W, or float in value_range
    self.log("fid", fid)                  # Lightning: compute() at epoch end, states synced across processes

The states are what torchmetrics can reduce across processes: FID keeps the float64 sums ``Σx``, ``Σxxᵀ`` and the
count (``dist_reduce_fx="sum"``; the covariance ``(Σxxᵀ − n μμᵀ)/(n − 1)`` in float64, as torchmetrics' own FID);
KID and precision/recall keep the pool3 features and IS the logits (``"cat"``).  The values are those of the
plain metric functions on the same images (``tests/test_integrations.py``): the same extractor, protocol and
math (:func:`~ganmetrics.frechet.frechet_distance`, :func:`~ganmetrics.metrics.kid.kid_from_features`,
:func:`~ganmetrics.metrics.inception_score.inception_score_from_logits`,
:func:`~ganmetrics.metrics.manifold.manifold_scores`).  The Inception network is built on the first update, on the
device of the metric's states (``metric.to(device)`` moves it there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import InputError

try:
    import torchmetrics
    from torchmetrics.utilities import dim_zero_cat
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise InputError(f"ganmetrics.integrations.torchmetrics needs torchmetrics (pip install torchmetrics): {exc}") \
        from None

from ..features import INCEPTION, Extractor, resolve_extractor
from ..frechet import frechet_distance
from ..inception import FEATURE_DIM
from ..metric_objects import batch_features
from ..metrics.inception_score import TORCH_FIDELITY_SHUFFLE_SEED, inception_score_from_logits
from ..metrics.kid import kid_from_features
from ..metrics.manifold import manifold_scores
from ..preprocess import DEFAULT_PROTOCOL, check_protocol
from ..stats import check_meta_compatible


class _Inception(torchmetrics.Metric):
    """The network (built lazily, not a state), batch conversion and the reference given up front."""

    is_differentiable, higher_is_better, full_state_update = False, None, False

    def __init__(self, *, protocol: str = DEFAULT_PROTOCOL, weights: str | None = None,
                 value_range: Sequence[float] = (-1.0, 1.0), feature_extractor: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.protocol, self.weights, self.value_range = check_protocol(protocol), weights, tuple(value_range)
        self.feature_extractor = feature_extractor
        self._extractor: Extractor | None = None

    def extractor(self) -> Extractor:
        """The feature extractor (``feature_extractor=``, as :func:`ganmetrics.evaluate` takes it) on the metric's
        device; a built-in one is loaded again when the metric moves."""
        if self._extractor is None or (self._extractor.device != self.device and self._movable()):
            self._extractor = resolve_extractor(self.feature_extractor, protocol=self.protocol, device=self.device,
                                                weights=self.weights, progress=False)
        return self._extractor

    def _movable(self) -> bool:
        return self.feature_extractor is None or isinstance(self.feature_extractor, str)

    def feature_dim(self) -> int:
        """The features' dimension (2048 for Inception without loading it)."""
        return FEATURE_DIM if self.feature_extractor in (None, INCEPTION) else self.extractor().feature_dim

    def features(self, images) -> torch.Tensor:
        """Features ``[N, d]`` (float32) of a batch of images (Inception pool3 by default)."""
        return batch_features(self.extractor(), images, self.value_range, what=f"{type(self).__name__}.update() "
                              "batch", warn=False)

    def reference_stats(self, real, keep_features: bool = False):
        """Statistics of ``real`` given up front (images through the extractor, or statistics of the same one)."""
        from ..api import as_stats

        stats = as_stats(real, keep_features=keep_features, feature_extractor=self.extractor())
        check_meta_compatible(stats.meta, self.extractor().stats_meta(f"{type(self).__name__} updates"))
        return stats

    def reference_features(self, real) -> torch.Tensor | None:
        """The features of ``real`` given up front (None: fed with ``update(..., real=True)``)."""
        if real is None:
            return None
        stats = self.reference_stats(real, keep_features=True)
        if stats.features is None:
            raise InputError(f"{type(self).__name__}: real= statistics without features; give images, or "
                             "statistics saved with keep_features=True")
        return torch.as_tensor(stats.features)


class FID(_Inception):
    """Fréchet Inception Distance; ``real``: a bundled name, statistics file or images (else ``update(...,
    real=True)``)."""

    higher_is_better = False

    def __init__(self, real=None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        dim = self.feature_dim()
        for side in ("fake", "real"):
            self.add_state(f"{side}_sum", torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self._reference = None
        if real is not None:
            stats = self.reference_stats(real)
            self._reference = (stats.mu, stats.sigma)

    def update(self, images, real: bool = False) -> None:
        x = self.features(images).to(torch.float64)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + x.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + x.T @ x)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + len(x))

    def _moments(self, side: str):
        n = float(getattr(self, f"{side}_n"))
        if n < 2:
            raise InputError(f"FID.compute(): at least 2 {side} images are needed, got {int(n)}")
        mu = getattr(self, f"{side}_sum") / n
        sigma = (getattr(self, f"{side}_outer") - n * torch.outer(mu, mu)) / (n - 1)
        return mu.cpu().numpy(), sigma.cpu().numpy()

    def compute(self) -> torch.Tensor:
        mu_f, sigma_f = self._moments("fake")
        mu_r, sigma_r = self._reference if self._reference is not None else self._moments("real")
        return torch.tensor(frechet_distance(mu_f, sigma_f, mu_r, sigma_r), dtype=torch.float64)


class _Features(_Inception):
    """The pool3 features of both sides as ``"cat"`` states."""

    def __init__(self, real=None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self._reference = self.reference_features(real)

    def update(self, images, real: bool = False) -> None:
        (self.real_features if real else self.fake_features).append(self.features(images))

    def sides(self) -> tuple[torch.Tensor, torch.Tensor]:
        fake = dim_zero_cat(self.fake_features) if len(self.fake_features) else None
        real = self._reference if self._reference is not None else (
            dim_zero_cat(self.real_features) if len(self.real_features) else None)
        if fake is None or real is None:
            raise InputError(f"{type(self).__name__}.compute(): feed both sides first (update(images) and "
                             "update(images, real=True), or real= at construction)")
        return fake, real


class KID(_Features):
    """Kernel Inception Distance ``(mean, std)``, torch-fidelity's estimator."""

    higher_is_better = False

    def __init__(self, real=None, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                 gamma: float | None = None, coef0: float = 1.0, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(real, **kwargs)
        self.kid_options = dict(subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma, coef0=coef0,
                                seed=seed)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        fake, real = self.sides()
        mean, std = kid_from_features(fake, real, **self.kid_options)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std if std is not None else float("nan"))


class PrecisionRecall(_Features):
    """Improved precision and recall ``(precision, recall)`` (Kynkäänniemi et al. 2019; k = 3)."""

    higher_is_better = True

    def __init__(self, real=None, *, k: int = 3, **kwargs: Any) -> None:
        super().__init__(real, **kwargs)
        self.k = k

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        fake, real = self.sides()
        scores = manifold_scores(real.float(), fake.float(), self.k, strict=False)
        return torch.tensor(scores.precision, dtype=torch.float64), torch.tensor(scores.recall, dtype=torch.float64)


class InceptionScore(_Inception):
    """Inception Score ``(mean, std)`` over ``splits`` splits (torch-fidelity's; needs weights with the classifier)."""

    higher_is_better = True

    def __init__(self, *, splits: int = 10, shuffle: bool = True, shuffle_seed: int = TORCH_FIDELITY_SHUFFLE_SEED,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.splits, self.shuffle, self.shuffle_seed = splits, shuffle, shuffle_seed
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, images) -> None:
        features = self.features(images)
        self.logits.append(self.extractor().logits_unbiased(features).clone())

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not len(self.logits):
            raise InputError("InceptionScore.compute() before any update(); feed generated images first")
        mean, std = inception_score_from_logits(dim_zero_cat(self.logits), splits=self.splits, shuffle=self.shuffle,
                                                shuffle_seed=self.shuffle_seed)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


__all__ = ["FID", "KID", "InceptionScore", "PrecisionRecall"]
