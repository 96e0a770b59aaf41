"""Evaluation over several processes: sharding arithmetic, and 2 gloo processes under torchrun against one process.

The torchrun runs use tiny sets (9–11 images of 32×32) on one thread per process; what is checked is
that every rank returns the same values, bit for bit, and that they equal those of one process
launched the same way: to 1e-6 relative for what goes through Inception (oneDNN's float32
convolutions round differently for another batch composition, ~1e-8 relative, and the ranks'
moments are merged in another order) and exactly for SWD and MS-SSIM (per-image arithmetic,
descriptors keyed by each image's index in the whole set, an exactly rounded mean).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_pngs
from ganmetrics.data.synthetic import render_images
from ganmetrics.distributed import UNIT, Shard, current_shard
from ganmetrics.errors import InputError
from ganmetrics.sources import open_source

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "distributed_worker.py"


# -- the sharding arithmetic ------------------------------------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("total", [0, 1, 2, 5, 8, 11])
def test_shards_cover_every_image_once_and_keep_pairs_together(world_size, total):
    shards = [Shard(rank, world_size) for rank in range(world_size)]
    owned = np.concatenate([shard.indices(total) for shard in shards])
    assert sorted(owned.tolist()) == list(range(total))
    for shard in shards:
        local = shard.indices(total)
        # the j-th local image is global_index(j), a function of (rank, world, j) alone
        assert shard.global_index(np.arange(len(local))).tolist() == local.tolist()
        assert shard.count(total) == len(local)
        assert shard.owns(local).all()
        pairs = [i for i in local if i % UNIT == 0 and i + 1 < total]
        assert all(i + 1 in local for i in pairs), "MS-SSIM pairs (2k, 2k+1) must stay on one rank"


def test_a_single_process_is_not_sharded(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert current_shard() == Shard() and not current_shard().active
    with pytest.raises(InputError, match="no torch.distributed process group"):
        current_shard(True)


# -- 2 processes under torchrun -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    write_pngs(root / "a", render_images("shapes", 11, seed=3))
    write_pngs(root / "b", render_images("blobs", 10, seed=4))
    with zipfile.ZipFile(root / "a.zip", "w") as archive:
        for path in sorted((root / "a").iterdir()):
            archive.write(path, f"images/{path.name}")
    return root


def torchrun(script: Path, *args: str, nproc: int = 2, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), str(script.parent)]))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                           "--standalone", str(script), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_close(ours, reference, path: str = "") -> None:
    """Equal structures; floats equal to 1e-6 relative, everything else exactly."""
    if isinstance(reference, dict):
        assert ours.keys() == reference.keys(), path
        for key in reference:
            assert_close(ours[key], reference[key], f"{path}.{key}")
    elif isinstance(reference, (list, tuple)):
        assert len(ours) == len(reference), path
        for i, (x, y) in enumerate(zip(ours, reference, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(reference, float):
        assert ours == pytest.approx(reference, rel=1e-6, abs=1e-9), path
    else:
        assert ours == reference, path


def run_worker(data: Path, weights: Path, out: Path, nproc: int) -> list[dict]:
    result = torchrun(WORKER, str(data), str(weights), str(out), nproc=nproc)
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(nproc)]


@pytest.fixture(scope="module")
def two_process_results(data, peer_weights_file, tmp_path_factory) -> list[dict]:
    return run_worker(data, peer_weights_file, tmp_path_factory.mktemp("ranks"), nproc=2)


@pytest.fixture(scope="module")
def one_process_result(data, peer_weights_file, tmp_path_factory) -> dict:
    """The reference: the same worker in one process launched the same way (one thread, as the two ranks)."""
    return run_worker(data, peer_weights_file, tmp_path_factory.mktemp("rank"), nproc=1)[0]


def test_every_rank_returns_the_same_numbers(two_process_results):
    rank0, rank1 = two_process_results
    assert rank0 == rank1  # bit for bit: every rank runs the same arithmetic on the same gathered data


def test_two_processes_equal_one(two_process_results, one_process_result):
    single, distributed = dict(one_process_result), dict(two_process_results[0])
    # KID and IS objects see each rank's batches rank after rank, another order than one process's
    del single["objects_rank_order"], distributed["objects_rank_order"]
    assert_close(distributed, single)
    # no network: the same descriptors and pairs as one process, bit for bit
    for key in ("swd", "ms_ssim_diversity"):
        assert distributed[key] == single[key], key
    for key in ("swd", "ms_ssim", "num_samples"):
        assert distributed["evaluate_generator"][key] == single["evaluate_generator"][key], key
    # the metric objects: each rank fed half of the images, compute() saw all of them
    assert distributed["FID"] == pytest.approx(single["fid_folders"], rel=1e-6)


def test_a_bad_file_on_one_rank_fails_every_rank_without_hanging(tmp_path, peer_weights_file):
    folder = write_pngs(tmp_path / "a", render_images("shapes", 4, seed=1))
    (folder / "00002.png").write_bytes(b"not a png")  # image 2: rank 1's share (units of 2)
    script = tmp_path / "fid_script.py"
    script.write_text("import sys, ganmetrics as gm\n"
                      "try:\n"
                      f"    gm.fid({str(folder)!r}, {str(folder)!r}, weights={str(peer_weights_file)!r}, "
                      "num_workers=0, progress=False)\n"
                      "except gm.GanmetricsError as exc:\n"
                      "    print('ERROR', exc); sys.exit(3)\n")
    result = torchrun(script, timeout=300)
    assert result.returncode != 0
    assert result.stdout.count("ERROR") == 2, result.stdout + result.stderr[-3000:]
    assert "00002.png" in result.stdout  # the failing rank names the file, the other quotes it


def test_a_dataloader_with_a_distributed_sampler_is_refused():
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    dataset = TensorDataset(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    loader = DataLoader(dataset, batch_size=2, sampler=DistributedSampler(dataset, num_replicas=2, rank=0))
    with pytest.raises(InputError, match="DistributedSampler"):
        open_source(loader, shard=Shard(0, 2))
    assert len(list(open_source(loader))) == 1  # without sharding it is read as it is



def test_the_cli_under_torchrun_prints_once_what_one_process_prints(data, peer_weights_file, tmp_path, capsys):
    from ganmetrics.cli import main

    script = tmp_path / "cli.py"
    script.write_text("import sys\nfrom ganmetrics.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    args = ["fid", str(data / "a"), str(data / "b"), "--json", "--no-progress", "--num-workers", "0",
            "--weights", str(peer_weights_file)]
    result = torchrun(script, *args, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout  # rank 0 alone prints
    assert main(args) == 0
    two, one = json.loads(lines[0]), json.loads(capsys.readouterr().out)
    assert two["num_samples"] == one["num_samples"] == [11, 10]
    assert two["fid"] == pytest.approx(one["fid"], rel=1e-6)


def test_the_report_under_torchrun_has_the_numbers_of_one_process(data, peer_weights_file, tmp_path):
    """``ganmetrics report`` sharded over 2 ranks: rank 0 writes the page, and its numbers are those of one process."""
    from ganmetrics.html_report import report

    script = tmp_path / "cli.py"
    script.write_text("import sys\nfrom ganmetrics.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    page = tmp_path / "two.html"
    result = torchrun(script, "report", str(data / "b"), str(data / "a"), "-o", str(page), "--json", "--no-progress",
                      "--num-workers", "0", "--weights", str(peer_weights_file), "--metrics", "fid,kid,swd,ms_ssim",
                      "--kid-subset-size", "5", "--ms-ssim-pairs", "5", "--grid-images", "4", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout  # rank 0 alone prints
    two = json.loads(lines[0])
    one = report(str(data / "b"), str(data / "a"), tmp_path / "one.html", weights=str(peer_weights_file),
                 metrics="fid,kid,swd,ms_ssim", kid_subset_size=5, ms_ssim_num_pairs=5, grid_images=4, progress=False,
                 num_workers=0)
    assert page.is_file() and not list(tmp_path.glob("*.tmp*"))
    one_results = json.loads(json.dumps(one["results"]))  # JSON's string keys for the SWD levels, as printed
    assert_close(two["results"], one_results)
