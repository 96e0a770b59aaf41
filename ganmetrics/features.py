"""Feature extractors: uint8 images → ``[N, d]`` float32 features, and which one a run uses.

:class:`Extractor` is what the one pass (:mod:`ganmetrics.stream`) and every feature metric see: a name (the
statistics' ``feature``), a dimension, the protocol its images were resized under, its weights' SHA-256, and a call
on uint8 ``[N, 3, H, W]`` batches.  Built in (:data:`BUILTIN`): the FID Inception network (the default; pool3,
2048-d) and DINOv2 ViT-L/14 (:mod:`ganmetrics.extractors.dinov2`); any other ``nn.Module`` or callable is wrapped by
:class:`ganmetrics.extractors.custom.CustomExtractor`.  Statistics record the extractor's name and weights, and
statistics of different extractors are refused (:func:`ganmetrics.stats.check_compatible`): a Fréchet distance
in one feature space says nothing about another's.

On GPUs TF32 is switched off while features are extracted (float32 throughout), so numbers do not depend on the
GPU generation; the previous setting is restored afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .devices import resolve_device, tf32_disabled
from .errors import InputError, StatsError, WeightsError, spelled
from .imports import import_attribute
from .inception import FEATURE_DIM, FIDInceptionV3, load_inception
from .preprocess import DEFAULT_PROTOCOL, check_protocol, preprocess
from .sources import ImageBatch, ImageSource
from .stats import FEATURE_NAME, STATS_FORMAT

#: the built-in extractors' names (``feature_extractor=``, ``--feature-extractor``)
INCEPTION = "inception"
BUILTIN = (INCEPTION, "dinov2-vit-l-14")


class Extractor:
    """uint8 ``[N, 3, H, W]`` batches → float32 ``[N, feature_dim]`` features on one device.

    Subclasses set ``name``, ``feature_dim``, ``protocol``, ``device`` and ``weights_sha256`` and implement
    :meth:`features`; only Inception has a classifier (:meth:`logits_unbiased`, for the Inception Score).
    """

    name: str
    feature_dim: int
    protocol: str | None
    device: torch.device
    weights_sha256: str | None = None

    @property
    def has_classifier(self) -> bool:
        return False

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features of a uint8 batch already on :attr:`device` (called in inference mode, TF32 off)."""
        raise NotImplementedError

    def __call__(self, images: ImageBatch) -> torch.Tensor:
        """float32 ``[N, feature_dim]`` features of a uint8 ``[N, 3, H, W]`` batch."""
        with torch.inference_mode(), tf32_disabled():
            return self.features(images.to(self.device))

    def logits_unbiased(self, features: torch.Tensor) -> torch.Tensor:
        raise WeightsError(f"the Inception Score needs Inception's classifier; the feature extractor {self.name} "
                           "has none")

    def stats_meta(self, description: str) -> dict:
        """The metadata of statistics computed by this extractor from the images ``description`` names."""
        return {"format": STATS_FORMAT, "protocol": self.protocol, "feature": self.name,
                "weights_sha256": self.weights_sha256, "source": description, "ganmetrics_version": __version__}


class FeatureExtractor(Extractor):
    """Inception pool3 features of uint8 image batches under one protocol, on one device.

    The network runs in float32, in inference mode, with channels-last (NHWC) tensors: 1.55×
    the images/s of the NCHW layout on a 2-core CPU (13.6 vs 8.8 img/s, batch 32), features
    equal to the NCHW path within 1.1e-5 (``tests/test_inception.py``).
    """

    name, feature_dim = FEATURE_NAME, FEATURE_DIM

    def __init__(self, *, protocol: str = DEFAULT_PROTOCOL, device: torch.device | str | None = None,
                 weights: str | None = None, progress: bool = True, model: FIDInceptionV3 | None = None) -> None:
        self.protocol = check_protocol(protocol)
        self.device = resolve_device(device)
        self.model = model if model is not None else load_inception(weights, device=self.device, progress=progress)
        self.model.to(self.device, memory_format=torch.channels_last)

    @property
    def weights_sha256(self) -> str | None:  # type: ignore[override]
        return self.model.weights_sha256

    @property
    def has_classifier(self) -> bool:
        return self.model.has_classifier

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(preprocess(images, self.protocol).contiguous(memory_format=torch.channels_last))

    def logits_unbiased(self, features: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.logits_unbiased(features)


def resolve_extractor(feature_extractor: Any = None, *, protocol: str = DEFAULT_PROTOCOL,
                      device: torch.device | str | None = None, weights: str | None = None,
                      progress: bool = True, folder: Path | None = None) -> Extractor:
    """The extractor a run uses: ``None`` or ``"inception"`` (the default), ``"dinov2-vit-l-14"`` (``weights``: its
    local file), ``"module:attribute"`` (imported), an :class:`Extractor` (as it is), or any ``nn.Module`` / callable
    from uint8 images to ``[N, d]`` features (a class is instantiated without arguments), wrapped by
    :class:`~ganmetrics.extractors.custom.CustomExtractor`.  ``folder`` (default: the current directory): first on
    ``sys.path`` while importing."""
    if isinstance(feature_extractor, Extractor):
        return feature_extractor
    if feature_extractor is None or feature_extractor == INCEPTION:
        return FeatureExtractor(protocol=protocol, device=device, weights=weights, progress=progress)
    if isinstance(feature_extractor, str):
        if feature_extractor in BUILTIN:
            from .extractors.dinov2 import DINOv2Extractor

            return DINOv2Extractor(protocol=protocol, device=device, weights=weights)
        if ":" not in feature_extractor:
            raise InputError(f"{spelled('feature_extractor', '--feature-extractor')} {feature_extractor!r}: not a "
                             f"built-in extractor ({', '.join(BUILTIN)}) nor module:attribute")
        try:
            feature_extractor = import_attribute(feature_extractor, folder or Path.cwd())
        except InputError as exc:
            raise InputError(f"{spelled('feature_extractor', '--feature-extractor')} {feature_extractor}: {exc}") \
                from None
        if isinstance(feature_extractor, type):
            feature_extractor = feature_extractor()
        if isinstance(feature_extractor, Extractor):
            return feature_extractor
    from .extractors.custom import CustomExtractor

    if weights is not None:
        raise InputError(f"{spelled('weights=', '--weights')} is for a built-in extractor's weights file; a custom "
                         "extractor brings its own")
    return CustomExtractor(feature_extractor, protocol=protocol, device=device)


def check_finite_features(features: torch.Tensor, images: ImageSource | str, first: int = 0) -> torch.Tensor:
    """``features`` of the batch that starts at this rank's image ``first`` of ``images`` (a source, or what to call
    a lone batch); StatsError naming the images whose features are NaN or infinite (broken weights, a faulty
    device or driver: the inputs are uint8)."""
    bad = ~torch.isfinite(features).all(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten().cpu().numpy() + first
        if isinstance(images, str):
            names = [f"image {row} of {images}" for row in rows[:5]]
        else:
            names = [images.image_name(int(i)) for i in images.shard.global_index(rows[:5])]
        names = ", ".join(names) + (" ..." if len(rows) > 5 else "")
        raise StatsError(f"the features of {len(rows)} image(s) are NaN or infinite: {names}. The images "
                         "are valid 8-bit data, so the network produced them: check the weights (--weights) and "
                         "try --device cpu")
    return features
