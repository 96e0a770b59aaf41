"""Opening an untrusted file never runs code from it: weight files, statistics, image arrays, checkpoints.

Each hostile file carries a pickle payload that creates a marker file when unpickled (the first test shows
that it does); every test then checks the reader refuses the file with the documented error and that the
marker does not exist.  TorchScript weights are read by :mod:`ganmetrics.torchscript`, which must give what
``torch.jit.load(...).state_dict()`` gives without compiling or running the archive.

Covered elsewhere, not repeated here:

* ``tests/test_train_parts.py::test_a_pickle_that_runs_code_is_refused``: a training checkpoint whose pickle
  would run code (``load_training_checkpoint``);
* ``tests/test_sources.py::test_zip_unsafe_members_refused``: zips of images with members such as
  ``../evil.png``, ``a/../../evil.png``, ``/abs/evil.png``, ``C:/evil.png``;
* ``tests/test_stats.py::test_bad_files_raise_stats_error_naming_the_file`` and
  ``tests/test_sources.py::test_npz_npy_errors``: object arrays (without a payload) in statistics / image files.
"""

from __future__ import annotations

import io
import os
import pickle
import shlex
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from ganmetrics import load_stats
from ganmetrics.errors import CheckpointError, InputError, StatsError, WeightsError
from ganmetrics.inception import load_inception, read_weight_file
from ganmetrics.sources import open_source
from ganmetrics.torchscript import read_torchscript_tensors
from ganmetrics.train.checkpoint import read_checkpoint
from ganmetrics.zoo.checkpoints import MODEL_FORMAT, generator_from_checkpoint

PAYLOADS = ["Path.touch", "os.system", "builtins.exec"]


class _Payload:
    """Unpickling this creates ``marker``, by one of three routes."""

    def __init__(self, marker: Path, how: str = "Path.touch") -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "Path.touch":
            return (Path.touch, (self.marker,))
        if self.how == "os.system":
            return (os.system, (f"touch {shlex.quote(str(self.marker))}",))
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _disguised_payload(marker: Path) -> bytes:
    """A pickle calling ``os.system`` under a ``__torch__.`` name (a TorchScript class name is never imported)."""
    command = f"touch {shlex.quote(str(marker))}".encode()
    return b"\x80\x02c__torch__.os\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."


# -- TorchScript modules to compare against torch.jit.load ----------------------------------------------------


class _Leaf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.arange(6.0).reshape(2, 3).t())  # not contiguous
        self.register_parameter("absent", None)  # None: not in state_dict
        self.register_buffer("count", torch.tensor([3, 4]))
        self.register_buffer("mask", torch.tensor([True, False]))
        self.register_buffer("absent_buffer", None)
        self.plain = torch.full((2,), 7.0)  # a tensor attribute, neither parameter nor buffer
        self.sizes: list[int] = [1, 2]  # pickled through torch.jit._pickle.build_intlist

    def forward(self, x: Tensor) -> Tensor:
        return x + self.weight.sum() + self.plain.sum() + self.sizes[0]


class _Root(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.halves = nn.Parameter(torch.tensor([1.5, -2.0], dtype=torch.float16))
        self.scalar = nn.Parameter(torch.tensor(2.5))
        self.register_buffer("tail", torch.arange(10, dtype=torch.float64)[4:])  # a view at an offset
        self.leaf = _Leaf()
        self.seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
        self.blocks = nn.ModuleList([_Leaf(), _Leaf()])
        self.tied = self.seq[0].weight  # the same parameter under two names

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.leaf(x) + self.tail.sum()


class _WithSetstate(nn.Module):
    """Its archive's ``__setstate__`` doubles the weight: torch.jit.load runs that code."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[Tensor, bool]:
        return (self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[Tensor, bool]) -> None:
        self.weight = state[0] * 2
        self.training = state[1]


@pytest.fixture(scope="module")
def script_archive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("script") / "root.pt"
    torch.jit.script(_Root()).save(str(path))
    return path


def _bits(t: Tensor) -> Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def _assert_same_state_dict(ours: dict[str, Tensor], reference: dict[str, Tensor]) -> None:
    assert list(ours) == list(reference)  # same names, same order
    for key, expected in reference.items():
        got = ours[key]
        assert type(got) is torch.Tensor and not got.requires_grad, key
        assert (got.dtype, got.shape, got.stride(), got.storage_offset()) == (
            expected.dtype, expected.shape, expected.stride(), expected.storage_offset()), key
        assert torch.equal(_bits(got), _bits(expected)), key


def _rewrite(source: Path, dest: Path, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """Copy a TorchScript archive, replacing or dropping records (named without the archive's folder; a name
    ending in ``/`` drops a whole folder)."""
    replace = replace or {}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            record = info.filename.split("/", 1)[1]
            if not any(record == d or (d.endswith("/") and record.startswith(d)) for d in drop):
                zout.writestr(info.filename, replace.get(record, zin.read(info)))
    return dest


# -- the payloads work -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", PAYLOADS)
def test_payloads_run_code_when_unpickled(tmp_path, how):
    """The control: unpickled without restriction, each payload creates its marker."""
    if how == "os.system" and os.name != "posix":
        pytest.skip("the os.system payload calls touch")
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(marker, how), protocol=2))
    assert marker.exists()


# -- TorchScript weights -----------------------------------------------------------------------------------------


def test_offline_weights_read_as_torch_jit_load_does(offline_weights):
    reference = dict(torch.jit.load(str(offline_weights), map_location="cpu").state_dict())
    ours = read_torchscript_tensors(offline_weights)
    assert len(ours) == 376
    _assert_same_state_dict(ours, reference)
    _assert_same_state_dict(read_weight_file(offline_weights), reference)


def test_parameters_and_buffers_are_named_as_state_dict_names_them(script_archive):
    """Parameters, buffers, submodules, containers, dtypes, views: as torch.jit.load; plain tensor attributes
    and None parameters / buffers left out."""
    reference = dict(torch.jit.load(str(script_archive), map_location="cpu").state_dict())
    ours = read_torchscript_tensors(script_archive)
    _assert_same_state_dict(ours, reference)
    assert "leaf.plain" not in ours and "leaf.absent" not in ours and "tied" in ours
    assert ours["tail"].storage_offset() == 4 and not ours["leaf.weight"].is_contiguous()


@pytest.mark.parametrize("how", PAYLOADS + ["__torch__ disguise", "nested"])
def test_torchscript_with_a_forbidden_global_is_refused(script_archive, tmp_path, how):
    marker = tmp_path / "marker"
    if how == "__torch__ disguise":
        payload = _disguised_payload(marker)
    elif how == "nested":  # deep inside the module's attributes
        payload = pickle.dumps({"training": True, "more": [{"x": (_Payload(marker),)}]}, protocol=2)
    else:
        payload = pickle.dumps(_Payload(marker, how), protocol=2)
    path = _rewrite(script_archive, tmp_path / "evil.pt", {"data.pkl": payload})
    for read in (read_torchscript_tensors, read_weight_file, load_inception):
        with pytest.raises(WeightsError, match=r"refusing TorchScript archive .*evil\.pt"):
            read(path)
    assert not marker.exists()


def test_torchscript_module_with_setstate_is_refused(tmp_path):
    """torch.jit.load would run the archive's __setstate__ (here: doubling the weight); the reader refuses."""
    path = tmp_path / "setstate.pt"
    torch.jit.script(_WithSetstate()).save(str(path))
    assert torch.equal(torch.jit.load(str(path)).state_dict()["weight"], torch.full((2,), 2.0))
    with pytest.raises(WeightsError, match=r"setstate\.pt.*defines __setstate__"):
        read_torchscript_tensors(path)


@pytest.mark.parametrize("case, message", [
    ("truncated", "cannot read"),
    ("not a zip", "cannot read"),
    ("no data.pkl", "data.pkl"),
    ("short storage", "holds 3 bytes"),
    ("missing storage", "is missing"),
    ("missing code", "is missing"),
    ("state dict file", "does not hold a TorchScript module"),
])
def test_malformed_torchscript_is_a_weights_error_naming_the_file(script_archive, tmp_path, case, message):
    path = tmp_path / "bad.pt"
    if case == "truncated":
        path.write_bytes(script_archive.read_bytes()[:3000])
    elif case == "not a zip":
        path.write_bytes(b"not a zip at all")
    elif case == "no data.pkl":
        _rewrite(script_archive, path, drop=("data.pkl",))
    elif case == "short storage":
        _rewrite(script_archive, path, {"data/0": b"\0" * 3})
    elif case == "missing storage":
        _rewrite(script_archive, path, drop=("data/0",))
    elif case == "missing code":
        _rewrite(script_archive, path, drop=("code/",))
    else:
        torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(WeightsError, match=message) as info:
        read_torchscript_tensors(path)
    assert str(path) in str(info.value)


# -- other weight files, statistics, image arrays, checkpoints ----------------------------------------------------


def test_pth_weight_file_with_a_payload_is_refused(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "evil": _Payload(marker)}, path)
    for read in (read_weight_file, load_inception):
        with pytest.raises(WeightsError, match=r"evil\.pth"):
            read(path)
    assert not marker.exists()


def test_stats_file_with_a_payload_is_refused(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.npz"
    np.savez(path, mu=np.zeros(3), sigma=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(StatsError, match=r"evil\.npz"):
        load_stats(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_image_array_with_a_payload_is_refused(tmp_path, suffix):
    marker, path = tmp_path / "marker", tmp_path / f"evil{suffix}"
    array = np.array([_Payload(marker), None], dtype=object)
    if suffix == ".npy":
        np.save(path, array, allow_pickle=True)
    else:
        np.savez(path, images=array)
    with pytest.raises(InputError, match=r"evil\.np[yz].*allow_pickle=False"):
        list(open_source(path, num_workers=0))
    assert not marker.exists()


def test_zoo_checkpoint_with_a_payload_is_refused(tmp_path):
    """A shipped-format model file (the training-checkpoint case is test_train_parts'
    test_a_pickle_that_runs_code_is_refused)."""
    marker, path = tmp_path / "marker", tmp_path / "model.pt"
    torch.save({"format": MODEL_FORMAT, "model": "dcgan", "config": {}, "G_ema": {"evil": _Payload(marker)}}, path)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*model\.pt"):
        read_checkpoint(path, MODEL_FORMAT)
    with pytest.raises(CheckpointError, match=r"model\.pt"):
        generator_from_checkpoint(path)
    assert not marker.exists()


def test_payload_pickles_are_what_the_files_hold(tmp_path):
    """The hostile files above really carry the payload (torch.save and np.save pickle it, not a copy)."""
    marker = tmp_path / "marker"
    buffer = io.BytesIO()
    torch.save({"evil": _Payload(marker)}, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=False)  # the unsafe load, on purpose
    assert marker.exists()
