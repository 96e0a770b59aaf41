"""The reference zoo: compact, faithful DCGAN through StyleGAN2 at 32×32 (see docs and ../shared/ZOO.md)."""

from __future__ import annotations

from .base import Generator
from .checkpoints import generator_from_checkpoint, load
from .config import ModelConfig, config_from_dict
from .registry import ModelSpec, build, default_config, get_spec, model_names, register

__all__ = ["Generator", "ModelConfig", "ModelSpec", "build", "config_from_dict", "default_config",
           "generator_from_checkpoint", "get_spec", "load", "model_names", "register"]
