"""The zoo's registry: each model module registers a :class:`ModelSpec` under its name.

``build_generator(config)`` / ``build_discriminator(config)`` make fresh networks;
:func:`ganmetrics.zoo.load` returns a trained EMA generator from the shipped checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import InputError
from .base import Generator
from .config import ModelConfig


@dataclass(frozen=True)
class ModelSpec:
    name: str
    #: one line: the paper and what defines the model
    description: str
    config_class: type[ModelConfig]
    build_generator: Callable[[ModelConfig], Generator]
    #: ``D(x, labels=None) -> logits [N]``
    build_discriminator: Callable[[ModelConfig], nn.Module]


_SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _SPECS:
        raise InputError(f"model {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def _load_models() -> None:
    from . import models  # noqa: F401 - importing the package registers every model


def model_names() -> list[str]:
    """Registered model names, in registration order (DCGAN first, StyleGAN2 last)."""
    _load_models()
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    _load_models()
    if name not in _SPECS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(_SPECS)}")
    return _SPECS[name]


def default_config(name: str, **overrides) -> ModelConfig:
    """The model's paper defaults, with ``overrides`` applied (e.g. ``num_classes=10``)."""
    return get_spec(name).config_class(**overrides)


def build(name: str, config: ModelConfig | None = None, **overrides) -> tuple[Generator, nn.Module, ModelConfig]:
    """Fresh ``(G, D, config)`` of model ``name``."""
    spec = get_spec(name)
    config = config if config is not None else default_config(name, **overrides)
    return spec.build_generator(config), spec.build_discriminator(config), config
