"""The FID Inception network: our module against the peers' networks on the same weights.

Features must equal pytorch-fid's and torch-fidelity's networks (and NVIDIA's TorchScript)
within 1e-4 max abs (issue 2).  Four images per comparison keep this file to ~20 s on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganmetrics.data.synthetic import render_images
from ganmetrics.errors import WeightsError
from ganmetrics.inception import build_from_state, load_inception, read_weight_file
from ganmetrics.preprocess import preprocess
from peers import import_peer

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def uint8_batch() -> torch.Tensor:
    images = np.concatenate([render_images("shapes", 2, seed=5), render_images("blobs", 2, seed=6)])
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def network_input(uint8_batch) -> torch.Tensor:
    return preprocess(uint8_batch, "tf")


@pytest.fixture(scope="module")
def our_features(inception, network_input) -> torch.Tensor:
    with torch.inference_mode():
        return inception(network_input)


def test_equals_nvidia_torchscript(offline_weights, network_input, our_features):
    script = torch.jit.load(str(offline_weights)).eval()
    with torch.inference_mode():
        theirs = script.net(network_input)
    assert our_features.shape == (4, 2048)
    assert (our_features - theirs).abs().max().item() <= TOLERANCE


def test_equals_pytorch_fid_network(monkeypatch, peer_state_dict, network_input, our_features):
    pytorch_fid_inception = import_peer("pytorch_fid.inception")
    # pytorch-fid downloads its weights with load_state_dict_from_url: hand it the local state dict.
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: peer_state_dict)
    net = pytorch_fid_inception.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    with torch.inference_mode():
        theirs = net(network_input)[0].flatten(1)
    assert (our_features - theirs).abs().max().item() <= TOLERANCE


def test_equals_torch_fidelity_extractor_end_to_end(peer_weights_file, uint8_batch, our_features):
    """torch-fidelity resizes and normalises inside its extractor: this also checks our 'tf' protocol."""
    extractor_module = import_peer("torch_fidelity.feature_extractor_inceptionv3")
    net = extractor_module.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(peer_weights_file)
    ).eval()
    with torch.inference_mode():
        theirs, their_logits = net(uint8_batch)
    assert (our_features - theirs).abs().max().item() <= TOLERANCE

    # The classifier path (Inception Score): our .pth-loaded model gives torch-fidelity's unbiased logits.
    full = load_inception(peer_weights_file)
    with torch.inference_mode():
        ours_logits = full.logits_unbiased(full(preprocess(uint8_batch, "tf")))
    assert (ours_logits - their_logits).abs().max().item() <= TOLERANCE


def test_feature_extractor_fast_path_equals_plain_network(inception, uint8_batch, our_features):
    """FeatureExtractor runs channels-last in inference mode: same features as the plain NCHW forward."""
    from ganmetrics.features import FeatureExtractor
    from ganmetrics.sources import same_size_runs

    extractor = FeatureExtractor(model=load_inception(inception.weights_path), device="cpu")
    fast = extractor(uint8_batch)
    assert extractor.model.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert (fast - our_features).abs().max().item() <= TOLERANCE
    # images of mixed sizes reach the network as runs of one size: smaller batches, the same features
    runs = torch.cat([extractor(run) for run in same_size_runs([image for image in uint8_batch])])
    assert (runs - our_features).abs().max().item() <= TOLERANCE
    assert [len(run) for run in same_size_runs([uint8_batch[0], uint8_batch[1, :, :8]])] == [1, 1]


def test_both_layouts_give_the_same_network(offline_weights, peer_weights_file, network_input, our_features):
    from_state_dict = load_inception(peer_weights_file)
    assert from_state_dict.has_classifier
    with torch.inference_mode():
        assert (from_state_dict(network_input) - our_features).abs().max().item() <= TOLERANCE


def test_each_load_is_an_independent_copy(inception, offline_weights):
    """The parsed file is cached, but each load_inception gets its own tensors, all allocated (not meta)."""
    first, second = load_inception(offline_weights), load_inception(offline_weights)
    assert not any(p.is_meta for p in first.parameters())
    with torch.no_grad():
        first.Conv2d_1a_3x3.conv.weight.zero_()
    assert torch.equal(second.Conv2d_1a_3x3.conv.weight, inception.Conv2d_1a_3x3.conv.weight)
    assert second.Conv2d_1a_3x3.conv.weight.abs().sum() > 0
    assert first.weights_sha256 == second.weights_sha256 == inception.weights_sha256


def test_nvidia_layout_with_classifier(offline_weights, peer_state_dict):
    """The full NVIDIA TorchScript names its classifier ``output``: it becomes our ``fc``."""
    raw = read_weight_file(offline_weights)
    raw["net.output.weight"] = peer_state_dict["fc.weight"]
    raw["net.output.bias"] = peer_state_dict["fc.bias"]
    model = build_from_state(raw)
    assert model.has_classifier
    assert torch.equal(model.fc.weight, peer_state_dict["fc.weight"])


def test_batch_norm_is_folded(inception):
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in inception.modules())
    assert inception.Conv2d_1a_3x3.conv.bias is not None


def test_feature_only_weights_refuse_inception_score(inception):
    assert not inception.has_classifier
    with pytest.raises(WeightsError, match="classifier"):
        inception.logits_unbiased(torch.zeros(1, 2048))


def test_truncated_weight_file_is_a_clear_error(peer_weights_file, tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(peer_weights_file.read_bytes()[: 1 << 20])
    with pytest.raises(WeightsError, match="truncated.pth"):
        load_inception(truncated)


def test_foreign_state_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"layer1.0.conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="known layout"):
        load_inception(path)


def test_weights_hash_is_recorded(inception, offline_weights):
    from ganmetrics.weights import sha256_file

    assert inception.weights_sha256 == sha256_file(offline_weights)
