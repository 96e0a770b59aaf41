"""DINOv2 ViT-L/14 as a feature extractor: the FD_DINOv2 of Stein et al. 2023 ("Exposing flaws of generative model
evaluation metrics", dgm-eval's default), with the preprocessing of torch-fidelity 0.4.0's ``dinov2-vit-l-14``.

* **Input**: uint8 images as float32, resized to 224×224 by TF1's bilinear resize (protocol ``tf``), normalised with
  ImageNet's mean and std ×255: ``(x − 255·m) / (255·s)``.
* **Network** (Oquab et al. 2023, "DINOv2: Learning Robust Visual Features without Supervision"): 14×14 patches
  embedded by a stride-14 convolution, a class token, learned position embeddings for 37×37 patches (518²) resampled
  bicubically to the 16×16 patches of 224² (scale ``(16 + 0.1) / 37``, no antialiasing, as DINOv2's hub code), 24
  pre-norm blocks (16-head attention, 4× MLP with exact GELU, LayerScale), a final LayerNorm (ε 1e-6).
* **Output**: the normalised class token, 1024-d float32.

Equal to torch-fidelity's extractor on the same weights (``tests/test_extractors.py``, random weights of this
architecture: the official ones cannot be downloaded in tests).  Weights are read from a local file — DINOv2's own
``dinov2_vitl14_pretrain.pth`` or timm's ``vit_large_patch14_dinov2.lvd142m`` (``model.safetensors`` or
``pytorch_model.bin``): one layout but for DINOv2's unused ``mask_token`` — given by ``weights=`` /
``--weights``, ``$GANMETRICS_DINOV2_WEIGHTS``, or found where ``torch.hub`` keeps DINOv2's download.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import resolve_device
from ..errors import InputError, WeightsError, spelled
from ..features import Extractor
from ..preprocess import resize
from ..weights import sha256_file

NAME = "dinov2-vit-l-14"
INPUT_SIZE = 224
PATCH = 14
EMBED_DIM, DEPTH, HEADS = 1024, 24, 16
TRAINED_PATCHES = 37  # position embeddings for 518 × 518 (37² patches)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENV_WEIGHTS = "GANMETRICS_DINOV2_WEIGHTS"
OFFICIAL_FILE = "dinov2_vitl14_pretrain.pth"
OFFICIAL_URL = f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/{OFFICIAL_FILE}"


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).unbind(2)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """``x + γ₁·attn(norm₁ x)``, then ``x + γ₂·mlp(norm₂ x)``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim, eps=1e-6), MLP(dim, 4 * dim), LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DINOv2ViT(nn.Module):
    """The DINOv2 backbone, parameters named as DINOv2's state dict; ``forward``: the normalised class token."""

    def __init__(self, dim: int = EMBED_DIM, depth: int = DEPTH, heads: int = HEADS) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + TRAINED_PATCHES**2, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def position_embedding(self, patches: int) -> torch.Tensor:
        """The class token's embedding and the patch grid's, resampled bicubically to ``patches`` × ``patches``
        with DINOv2's scale factor ``(patches + 0.1) / 37`` (its hub code's, kept for the trained weights)."""
        pos = self.pos_embed.float()
        if patches == TRAINED_PATCHES:
            return pos
        grid = pos[:, 1:].reshape(1, TRAINED_PATCHES, TRAINED_PATCHES, -1).permute(0, 3, 1, 2)
        scale = (patches + 0.1) / TRAINED_PATCHES
        grid = F.interpolate(grid, scale_factor=(scale, scale), mode="bicubic", antialias=False)
        return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, patches * patches, -1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        x = tokens + self.position_embedding(x.shape[-1] // PATCH).to(tokens.dtype)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file (8-byte little-endian header length, JSON header, raw data); no code
    runs, as with ``torch.load(weights_only=True)``."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = memoryview(data)[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in dtypes and entry["dtype"] != "BF16":
            raise WeightsError(f"{path}: tensor {name} has dtype {entry['dtype']}; expected floating point")
        start, end = entry["data_offsets"]
        raw = body[start:end]
        if entry["dtype"] == "BF16":  # bfloat16: the high half of a float32
            halves = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = halves.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=dtypes[entry["dtype"]])
        tensors[name] = torch.from_numpy(array.astype(np.float32).reshape(entry["shape"]))
    return tensors


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """DINOv2's or timm's state dict from ``path`` (``.safetensors``, else a ``torch.save`` file read with
    ``weights_only=True``), checked against the ViT-L/14 architecture; WeightsError naming what does not fit."""
    try:
        state = read_safetensors(path) if path.suffix == ".safetensors" else torch.load(
            path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise WeightsError(f"cannot read the DINOv2 weights {path}: {exc}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict of DINOv2 ViT-L/14")
    state = {k: v for k, v in state.items() if k != "mask_token"}  # DINOv2's masked-token embedding: not used
    with torch.device("meta"):  # the shapes only: no 1.2 GB of parameters allocated and initialised
        expected = {k: v.shape for k, v in DINOv2ViT().state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or unexpected or wrong:
        details = "; ".join(part for part in (
            f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}" if missing else "",
            f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}" if unexpected else "",
            f"shape of {', '.join(wrong[:4])}" if wrong else "") if part)
        raise WeightsError(f"{path} is not DINOv2 ViT-L/14 (official or timm layout): {details}")
    return {k: v.float() for k, v in state.items()}


def find_weights(weights: str | os.PathLike | None) -> Path:
    """The weights file: ``weights``, else ``$GANMETRICS_DINOV2_WEIGHTS``, else torch.hub's copy of the official
    file; never a download."""
    for given, what in ((weights, spelled("weights=", "--weights")), (os.environ.get(ENV_WEIGHTS), f"${ENV_WEIGHTS}")):
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise WeightsError(f"{what} {given}: no such file (DINOv2 ViT-L/14 weights)")
            return path
    hub = Path(torch.hub.get_dir()) / "checkpoints" / OFFICIAL_FILE
    if hub.is_file():
        return hub
    raise WeightsError(f"{NAME} needs its weights, which ganmetrics does not download: get {OFFICIAL_URL} (or timm's "
                       f"vit_large_patch14_dinov2.lvd142m model.safetensors) and pass it with "
                       f"{spelled('weights=PATH', '--weights PATH')} or ${ENV_WEIGHTS}; looked also in {hub}")


class DINOv2Extractor(Extractor):
    """DINOv2 ViT-L/14 class-token features (module docstring) in float32 on ``device``."""

    name, feature_dim = NAME, EMBED_DIM

    def __init__(self, *, protocol: str = "tf", device: torch.device | str | None = None,
                 weights: str | os.PathLike | None = None) -> None:
        if protocol != "tf":
            raise InputError(f"{NAME} is defined with torch-fidelity's preprocessing (TF1 bilinear resize, protocol "
                             f"'tf'); protocol {protocol!r} belongs to the Inception extractor")
        self.protocol = protocol
        self.device = resolve_device(device)
        path = find_weights(weights)
        self.weights_sha256 = sha256_file(path)
        with torch.device("meta"):
            network = DINOv2ViT()
        network.load_state_dict(read_weights(path), assign=True)
        self.network = network.to(self.device).eval().requires_grad_(False)
        # 255·m in double, then float32: torch-fidelity's torchvision.transforms.functional.normalize arguments
        self.mean = torch.tensor([255 * m for m in IMAGENET_MEAN], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor([255 * s for s in IMAGENET_STD], device=self.device).view(1, 3, 1, 1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = (resize(images, self.protocol, INPUT_SIZE) - self.mean) / self.std
        return self.network(x).float()
