"""Typed per-model settings: one dataclass per model, overriding the shared defaults of :class:`ModelConfig`.

A config holds everything needed to rebuild a model and train it the way its paper did: the
architecture's sizes, the loss and regularisers (names looked up in :mod:`ganmetrics.train.losses`),
the optimiser settings and the EMA.  Configs are plain data, saved in checkpoints as dicts
(:meth:`ModelConfig.to_dict`) and rebuilt with :func:`config_from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Shared defaults; each model's config subclasses this and overrides what its paper sets."""

    #: the registry name of the model ("dcgan", "stylegan2", ...); set by each subclass
    model: str = ""
    resolution: int = 32
    #: 0 for an unconditional model, else the number of classes of the conditional variant
    num_classes: int = 0
    z_dim: int = 64
    #: base channel width of G and D
    width: int = 64
    # -- loss and regularisers (names in ganmetrics.train.losses) --------------------------------
    #: "nonsaturating" (logistic), "hinge" or "wasserstein"
    loss: str = "nonsaturating"
    #: gradient penalty weight λ on real/fake interpolates (WGAN-GP: 10); 0 = off
    gp_weight: float = 0.0
    #: R1 weight γ (penalty γ/2 · E‖∇D(x_real)‖²); 0 = off
    r1_gamma: float = 0.0
    #: apply R1 every this many D steps, scaled by the interval (lazy regularisation; StyleGAN2: 16)
    r1_interval: int = 1
    #: drift penalty ε · E[D(x_real)²] (ProGAN: 0.001); 0 = off
    drift_weight: float = 0.0
    #: orthogonal regularisation weight of G (BigGAN option); 0 = off
    ortho_weight: float = 0.0
    #: discriminator steps per generator step
    d_steps: int = 1
    # -- optimisers ---------------------------------------------------------------------------------
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    # -- EMA of G ----------------------------------------------------------------------------------
    #: EMA half-life in thousands of images (StyleGAN2's 10 kimg): fits the zoo's runs of a few hundred kimg,
    #: where a paper's per-step decay for 100k+ steps (BigGAN's 0.9999) would leave the EMA near initialisation
    ema_half_life_kimg: float | None = 10.0
    #: per-step EMA decay, used only when ema_half_life_kimg is None
    ema_beta: float = 0.999
    # -- training defaults -------------------------------------------------------------------------
    batch_size: int = 64
    #: style mixing probability (StyleGAN family); 0 = off
    mixing_prob: float = 0.0
    #: model-specific extras that need no typed field
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-compatible) that :func:`config_from_dict` turns back into this config."""
        return dataclasses.asdict(self)


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild the config saved by :meth:`ModelConfig.to_dict` (its ``model`` names the config class)."""
    from .registry import get_spec

    cls = get_spec(data["model"]).config_class
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    return cls(**values)
