"""The zoo's models, one module each; importing a module registers its :class:`~ganmetrics.zoo.registry.ModelSpec`."""

from __future__ import annotations

import importlib

#: Registration order: the order of the leaderboard and of ``ganmetrics.zoo.model_names()``.
MODULES = ("dcgan", "wgan_gp", "sngan", "sagan", "biggan", "stylegan", "stylegan2")

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
