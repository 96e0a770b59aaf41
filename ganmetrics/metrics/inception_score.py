"""Inception Score (Salimans et al. 2016), as torch-fidelity 0.4 computes it.

``IS = exp(E_x KL(p(y|x) ‖ p(y)))`` per split: with ``p = softmax(logits)`` in float64 over the
1008 classes, split ``k = p[k·N//s : (k+1)·N//s]``, ``p̄`` its mean,
``IS_k = exp(mean_n Σ_c p_nc (log p_nc − log p̄_c))``; the result is the mean and the
population standard deviation (ddof 0) of ``IS_k`` over the ``s`` splits.

Logits are ``pool3 @ fc.weightᵀ`` *without* the bias (torch-fidelity's "logits_unbiased").
By default the samples are shuffled first with ``numpy.random.RandomState(2020).permutation(N)``
like torch-fidelity; ``shuffle=False`` keeps the input order like the original TF code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError, WeightsError
from ..inception import NO_CLASSIFIER
from .base import HIGHER, LOGITS, Context, Metric, SetData, option, register

TORCH_FIDELITY_SHUFFLE_SEED = 2020


def inception_score_from_logits(logits, *, splits: int = 10, shuffle: bool = True,
                                shuffle_seed: int = TORCH_FIDELITY_SHUFFLE_SEED) -> tuple[float, float]:
    """``(mean, std)`` of the Inception Score over ``splits`` splits of ``logits [N, classes]``."""
    logits = torch.as_tensor(logits).detach().to("cpu", torch.float64)
    if logits.ndim != 2:
        raise InputError(f"logits must be [N, classes], got shape {tuple(logits.shape)}")
    n = logits.shape[0]
    if not isinstance(splits, int) or splits < 1:
        raise InputError(f"splits must be a positive integer, got {splits!r}")
    if n < splits:
        raise InputError(f"Inception Score with {splits} splits needs at least {splits} images, got {n}; "
                         "use more images or fewer splits")
    if shuffle:
        logits = logits[torch.from_numpy(np.random.RandomState(shuffle_seed).permutation(n))]
    log_p = logits.log_softmax(dim=1)
    p = log_p.exp()
    scores = []
    for k in range(splits):
        lo, hi = k * n // splits, (k + 1) * n // splits
        p_k, log_p_k = p[lo:hi], log_p[lo:hi]
        log_mean = p_k.mean(dim=0, keepdim=True).log()
        scores.append(float((p_k * (log_p_k - log_mean)).sum(dim=1).mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))


@dataclass(frozen=True)
class ISOptions:
    splits: int = option(10, help="splits of the samples; IS is their mean ± std")
    shuffle: bool = option(True, kind=bool, minimum=None, cli=False)
    shuffle_seed: int = option(TORCH_FIDELITY_SHUFFLE_SEED, minimum=0, cli=False)


@register
class ISMetric(Metric):
    name, title, label, order, direction = "is", "Inception Score", "IS", 30, HIGHER
    aliases = ("isc", "inception_score")
    sides = 1
    needs = frozenset({LOGITS})
    Options = ISOptions
    meaning = "Inception Score of A, exp E[KL(p(y|x) ‖ p(y))], mean ± std over splits; higher is better."
    tolerance = 1e-3
    tolerance_basis = ("IS is a float64 function of float32 logits whose cross-CPU noise is that of the pool3 "
                       "features (FID moved by at most 1e-5 on the zoo's images); 1e-3 is the FID margin's scale.")

    def unavailable(self, gen, real, options: ISOptions, ctx: Context) -> str | Exception | None:
        if ctx.has_classifier is False:
            return WeightsError(NO_CLASSIFIER)
        return super().unavailable(gen, real, options, ctx)

    def compute(self, gen: SetData, real: SetData | None, options: ISOptions, ctx: Context) -> dict:
        mean, std = inception_score_from_logits(gen.logits, splits=options.splits, shuffle=options.shuffle,
                                                shuffle_seed=options.shuffle_seed)
        return {"mean": mean, "std": std}

    def detail(self, options: ISOptions, protocol: str, num_images: list[int]) -> str:
        return f"{options.splits} splits"
