"""Pluggable feature extractors: DINOv2 ViT-L/14 equal to torch-fidelity 0.4.0's ``dinov2-vit-l-14`` on the same
weights, its two weight layouts, a user's network or function as the extractor of every feature metric (its
identity in the statistics, statistics of another extractor refused before any image is read, the module left
untouched), and the command line.

DINOv2's pretrained weights cannot be downloaded in tests: the network is compared on random weights of its
architecture, built by DINOv2's own hub code (``tests/dinov2_hub``, as ``torch.hub`` would fetch it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ganmetrics as gm
from conftest import assert_float32_close
from ganmetrics.cli import main
from ganmetrics.errors import InputError, StatsError, WeightsError
from ganmetrics.extractors.custom import CustomExtractor, state_dict_sha256
from ganmetrics.extractors.dinov2 import DINOv2Extractor, DINOv2ViT
from ganmetrics.frechet import frechet_distance
from ganmetrics.preprocess import tf1_bilinear_resize
from peers import hub_vitl14, import_peer, import_torchvision


@pytest.fixture(scope="module")
def dinov2_weights(tmp_path_factory) -> tuple[Path, dict]:
    """Random ViT-L/14 weights in DINOv2's layout (``mask_token`` included), as its ``*_pretrain.pth``."""
    state = {k: v.clone() for k, v in hub_vitl14().state_dict().items()}
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vitl14_pretrain.pth"
    torch.save(state, path)
    return path, state


def images(seed: int, n: int, h: int, w: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


@pytest.mark.peer
def test_dinov2_equals_torch_fidelity_on_the_same_weights(dinov2_weights, monkeypatch):
    path, state = dinov2_weights
    import_torchvision()
    fidelity = import_peer("torch_fidelity.feature_extractor_dinov2")

    def hub_load(repo, model):  # torch-fidelity's call, answered from the local copy with the same weights
        assert (repo, model) == ("facebookresearch/dinov2", "dinov2_vitl14")
        network = hub_vitl14()
        network.load_state_dict(state)
        return network

    monkeypatch.setattr(torch.hub, "load", hub_load)
    theirs = fidelity.FeatureExtractorDinoV2("dinov2-vit-l-14", ["dinov2"])
    ours = DINOv2Extractor(weights=path, device="cpu")
    for batch in (images(1, 3, 32, 32), images(2, 2, 61, 45)):  # upsampled and non-square, as datasets come
        (expected,) = theirs(batch)
        actual = ours(batch)
        assert actual.shape == (len(batch), 1024) and actual.dtype == torch.float32
        assert_float32_close(actual, expected)
    assert ours.weights_sha256 and ours.name == "dinov2-vit-l-14" and ours.feature_dim == 1024


def test_dinov2_reads_timm_layout_from_safetensors(dinov2_weights, tmp_path):
    """timm's ``vit_large_patch14_dinov2`` names its tensors as DINOv2 does, without ``mask_token``; its
    ``model.safetensors`` gives the same features as DINOv2's file with the same tensors."""
    path, state = dinov2_weights
    import_torchvision()
    timm = import_peer("timm")
    safetensors_torch = import_peer("safetensors.torch")
    layout = timm.create_model("vit_large_patch14_dinov2", pretrained=False).state_dict()
    assert set(layout) == set(state) - {"mask_token"}
    assert all(layout[k].shape == state[k].shape for k in layout)
    timm_file = tmp_path / "model.safetensors"
    safetensors_torch.save_file({k: state[k].contiguous() for k in layout}, str(timm_file))
    batch = images(3, 2, 32, 32)
    official = DINOv2Extractor(weights=path, device="cpu")(batch)
    assert torch.equal(DINOv2Extractor(weights=timm_file, device="cpu")(batch), official)


def test_dinov2_refuses_what_it_cannot_use(tmp_path, monkeypatch):
    monkeypatch.delenv("GANMETRICS_DINOV2_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match=r"dinov2-vit-l-14 needs its weights, which ganmetrics does not download: "
                                           r"get https://dl\.fbaipublicfiles\.com/dinov2/dinov2_vitl14/"
                                           r"dinov2_vitl14_pretrain\.pth .* weights=PATH"):
        DINOv2Extractor(device="cpu")
    with pytest.raises(InputError, match="protocol 'clean' belongs to the Inception extractor"):
        DINOv2Extractor(protocol="clean")
    small = {k: v for k, v in DINOv2ViT(dim=64, depth=2, heads=4).state_dict().items()}
    torch.save(small, tmp_path / "vits.pth")
    with pytest.raises(WeightsError, match=r"vits\.pth is not DINOv2 ViT-L/14 \(official or timm layout\): missing "
                                           r"blocks\.10\..*shape of cls_token"):
        DINOv2Extractor(weights=tmp_path / "vits.pth", device="cpu")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"cannot read the DINOv2 weights .*junk\.pth"):
        DINOv2Extractor(weights=tmp_path / "junk.pth", device="cpu")


# --- a user's extractor ---------------------------------------------------------------------------------------


class TinyNet(nn.Module):
    """A network that declares its input: 16×16, ImageNet-normalised; BatchNorm so that its mode matters."""

    input_size = 16
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 6, 3, stride=2)
        self.bn = nn.BatchNorm2d(6)
        self.bn.running_mean.uniform_(-0.1, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


def oracle_features(net: TinyNet, batch: torch.Tensor) -> np.ndarray:
    """What the docs say the extractor computes: TF1 resize, /255, normalise, the network in eval mode."""
    x = tf1_bilinear_resize(batch.float(), 16) / 255
    x = (x - torch.tensor(net.mean).view(1, 3, 1, 1)) / torch.tensor(net.std).view(1, 3, 1, 1)
    net.eval()
    with torch.no_grad():
        out = net(x).double().numpy()
    net.train()
    return out


def test_a_users_network_is_the_extractor_of_every_feature_metric(tmp_path):
    net = TinyNet().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gen, real = images(5, 40, 24, 24), images(6, 50, 32, 32)
    value = gm.fid(gen, real, feature_extractor=net, progress=False)
    a, b = oracle_features(net, gen), oracle_features(net, real)
    expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # untouched: still in training mode, BatchNorm's running statistics as they were
    assert net.training and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    result = gm.evaluate(gen, real, ("fid", "kid", "precision", "density"), feature_extractor=net, progress=False,
                         kid_subset_size=20, pr_k=3)
    assert result["fid"] == value and result["feature"] == "test_extractors.TinyNet"
    assert 0 <= result["precision"] <= 1 and result["kid"]["mean"] is not None
    # the metric objects take it too
    fid_object = gm.FID(real=real, feature_extractor=net)
    fid_object.update(gen)
    assert fid_object.compute() == pytest.approx(value, rel=1e-9)


def test_the_statistics_name_the_extractor_and_other_extractors_are_refused_before_any_image(tmp_path, monkeypatch):
    net = TinyNet()
    stats = gm.compute_stats(images(7, 20, 32, 32), feature_extractor=net, progress=False)
    assert stats.dim == 6
    assert stats.meta["feature"] == "test_extractors.TinyNet"
    assert stats.meta["weights_sha256"] == state_dict_sha256(net)
    saved = stats.save(tmp_path / "tiny.npz")
    assert gm.load_stats(saved).meta["feature"] == "test_extractors.TinyNet"

    retrained = TinyNet()
    with torch.no_grad():
        retrained.conv.weight.add_(0.01)
    read = []
    monkeypatch.setattr(sys.modules["ganmetrics.evaluate"], "stream_set", lambda *a, **k: read.append(a) or pytest.fail("read images"))
    with pytest.raises(StatsError, match="different weights_sha256"):
        gm.fid(images(8, 10, 32, 32), saved, feature_extractor=retrained, progress=False)
    named = CustomExtractor(net, name="my-encoder")
    with pytest.raises(StatsError, match=r"different feature: 'test_extractors\.TinyNet' .* and 'my-encoder' .*"
                                         r"not comparable: compute both sides with the same feature_extractor="):
        gm.fid(images(8, 10, 32, 32), saved, feature_extractor=named, progress=False)
    assert not read


def test_a_function_on_uint8_images_and_bad_extractors(tmp_path):
    def color_means(batch: torch.Tensor) -> torch.Tensor:
        return batch.float().mean(dim=(2, 3))

    gen, real = images(9, 30, 20, 20), images(10, 30, 20, 20)
    value = gm.fid(gen, real, feature_extractor=color_means, progress=False)
    a, b = (x.double().mean(dim=(2, 3)).numpy() for x in (gen, real))
    assert value == pytest.approx(frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0),
                                                   np.cov(b, rowvar=False)), rel=1e-6)
    def flat(batch):
        return batch.float().mean(dim=(1, 2, 3))

    with pytest.raises(InputError, match=r"the feature extractor test_extractors\..*flat returned \(2,\) "
                                         r"torch.float32 for 2 images; it must return \[N, d\]"):
        gm.fid(gen, real, feature_extractor=flat, progress=False)
    with pytest.raises(InputError, match="feature_extractor 'nope': not a built-in extractor"):
        gm.fid(gen, real, feature_extractor="nope", progress=False)
    with pytest.raises(InputError, match="feature_extractor no_such_module:x: cannot import 'no_such_module'"):
        gm.fid(gen, real, feature_extractor="no_such_module:x", progress=False)


def test_the_command_line_takes_module_attribute_from_the_current_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "myfeatures.py").write_text(
        "import torch\n\nclass ColorMeans:\n    name = 'color-means'\n\n"
        "    def __call__(self, batch):\n        return batch.float().mean(dim=(2, 3))\n\nextractor = ColorMeans()\n")
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, images(11, 12, 16, 16).permute(0, 2, 3, 1).numpy())
    np.save(b, images(12, 12, 16, 16).permute(0, 2, 3, 1).numpy())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["eval", str(a), str(b), "--metrics", "fid", "--feature-extractor", "myfeatures:extractor",
                 "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["feature"] == "color-means"
    assert result["fid"] == gm.fid(str(a), str(b), feature_extractor="myfeatures:extractor", progress=False)
    assert main(["fid", str(a), str(b), "--feature-extractor", "myfeatures:missing"]) == 2
    assert "--feature-extractor myfeatures:missing: module myfeatures" in capsys.readouterr().err
    assert main(["stats", str(a), "-o", str(tmp_path / "s"), "--feature-extractor", "myfeatures:extractor"]) == 0
    capsys.readouterr()
    assert main(["fid", str(a), str(tmp_path / "s.npz")]) == 2  # Inception images vs color-means statistics
    assert "statistics computed with different feature: 'color-means'" in capsys.readouterr().err
