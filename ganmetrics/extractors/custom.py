"""A user's network or function as the feature extractor of every feature metric (FID, KID, FD∞, precision/recall,
density/coverage).

The object is called on uint8 ``[N, 3, H, W]`` batches, unless it declares ``input_size`` (an int): then each batch
is resized to ``input_size``² as the run's protocol resizes (:func:`ganmetrics.preprocess.resize`), scaled to
[0, 1] and normalised per channel with its ``mean`` and ``std`` (defaults 0 and 1), and the object gets float32
``[N, 3, S, S]``.  It must return ``[N, d]`` features (any float dtype; kept as float32).  An ``nn.Module`` runs as a
scored generator does: in eval and inference mode, its mode, parameters and buffers and the caller's RNG left as
they were (:class:`ganmetrics.untouched.UntouchedCall`), on the device of its parameters.

Identity, written into statistics as ``feature`` and ``weights_sha256``: the object's ``name`` attribute (or
``name=``), else its class's (or function's) ``module.qualname``; and for a module the SHA-256 of its state dict
(every name and every tensor's bytes), so statistics of two trainings of one architecture are refused as different
extractors.  Each of these (``name``, ``input_size``, ``mean``, ``std``, ``feature_dim``) may be given as an
argument instead of an attribute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import InputError, spelled
from ..features import Extractor
from ..preprocess import DEFAULT_PROTOCOL, check_protocol, resize
from ..untouched import UntouchedCall

#: side of the probe images when the object declares no input size
PROBE_SIZE = 64


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state dict: each name, dtype, shape and the tensor's bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _identity(network: Any) -> str:
    target = network if callable(network) and not isinstance(network, nn.Module) and hasattr(
        network, "__qualname__") else type(network)
    return f"{target.__module__}.{target.__qualname__}"


class CustomExtractor(Extractor):
    """``network`` (an ``nn.Module`` or callable) as an :class:`~ganmetrics.features.Extractor` (module docstring)."""

    def __init__(self, network: Callable, *, name: str | None = None, input_size: int | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 feature_dim: int | None = None, protocol: str = DEFAULT_PROTOCOL,
                 device: torch.device | str | None = None) -> None:
        what = spelled("feature_extractor", "--feature-extractor")
        if not callable(network):
            raise InputError(f"{what}: a {type(network).__name__} is not callable; give an nn.Module, a function "
                             "from uint8 images to [N, d] features, a built-in name or module:attribute")
        self.network = network
        self.protocol = check_protocol(protocol)
        self.name = str(name or getattr(network, "name", None) or _identity(network))
        self.input_size = input_size if input_size is not None else getattr(network, "input_size", None)
        if self.input_size is not None and (not isinstance(self.input_size, int) or self.input_size < 1):
            raise InputError(f"{what} {self.name}: input_size must be a positive int, got {self.input_size!r}")
        self.device = self._device(network, device)
        self.weights_sha256 = state_dict_sha256(network) if isinstance(network, nn.Module) else None
        self.mean = self._per_channel(mean if mean is not None else getattr(network, "mean", None), 0.0)
        self.std = self._per_channel(std if std is not None else getattr(network, "std", None), 1.0)
        self._call = UntouchedCall(network, 0, self.device)
        self.feature_dim: int | None = (feature_dim if feature_dim is not None
                                        else getattr(network, "feature_dim", None))
        if self.feature_dim is None:  # one probe before any image is read: the dimension, and a clear error
            size = self.input_size or PROBE_SIZE
            self.feature_dim = self(torch.full((2, 3, size, size), 128, dtype=torch.uint8)).shape[1]
        self.feature_dim = int(self.feature_dim)

    def _per_channel(self, values: Sequence[float] | None, default: float) -> torch.Tensor:
        """``[C, 1, 1]`` float32 on the device (a single value broadcasts over the channels)."""
        return torch.tensor([default] if values is None else values, dtype=torch.float32,
                            device=self.device).reshape(-1, 1, 1)

    def _device(self, network: Any, device: torch.device | str | None) -> torch.device:
        params = [p.device for p in network.parameters()] if isinstance(network, nn.Module) else []
        if device is None:
            return params[0] if params else resolve_device(None)
        device = resolve_device(device)
        if params and params[0] != device:
            raise InputError(f"the feature extractor's parameters are on {params[0]} but the device is {device}: "
                             f"move it there first, or pass {spelled(f'device={str(params[0])!r}', '--device')} "
                             f"{params[0]}")
        return device

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images if self.input_size is None else (
            resize(images, self.protocol, self.input_size) / 255 - self.mean) / self.std
        out = self._call(x)
        out = torch.as_tensor(out, device=self.device) if not isinstance(out, torch.Tensor) else out
        if out.ndim != 2 or out.shape[0] != len(images) or not out.is_floating_point():
            raise InputError(f"the feature extractor {self.name} returned {tuple(out.shape)} {out.dtype} for "
                             f"{len(images)} images; it must return [N, d] floating-point features")
        if self.feature_dim is not None and self.feature_dim != out.shape[1]:
            raise InputError(f"the feature extractor {self.name} returned {out.shape[1]} features per image, "
                             f"earlier {self.feature_dim}")
        return out.float()
