"""Every metric on small inputs, run by tests/test_distributed.py both in one process and under torchrun.

    python -m torch.distributed.run --nproc-per-node 2 --standalone tests/distributed_worker.py DATA WEIGHTS OUT

writes ``OUT/rank<R>.json`` on each rank; :func:`run_all` called in the test process (no process group)
gives the single-process reference.  DATA holds ``a/`` and ``b/`` (PNG folders) and ``a.zip``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

import ganmetrics as gm
from ganmetrics.distributed import current_shard
from ganmetrics.sources import open_source


class TinyGenerator(torch.nn.Module):
    """A deterministic conditional 'generator': 32×32 images from z and labels (no training needed)."""

    z_dim, num_classes = 8, 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(self.z_dim + self.num_classes, 3 * 32 * 32)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(labels, self.num_classes).float()
        return torch.tanh(self.net(torch.cat([z, one_hot], 1))).view(-1, 3, 32, 32)


def _images(folder: Path) -> torch.Tensor:
    return torch.cat(list(open_source(str(folder), num_workers=0)))


def run_all(data: Path, weights: str, *, distributed: bool | None) -> dict:
    """The metrics, as JSON-compatible values (features summarised by their sums)."""
    warnings.simplefilter("ignore")
    common = dict(weights=weights, progress=False, num_workers=0, distributed=distributed)
    a, b, zipped = data / "a", data / "b", data / "a.zip"
    tensor = _images(a)
    batches = [tensor[i:i + 3] for i in range(0, len(tensor), 3)]  # an iterable of uneven batches
    out: dict = {}
    stats = gm.compute_stats(str(zipped), keep_features=True, batch_size=4, **common)
    out["stats_zip"] = {"n": stats.num_samples, "mu": stats.mu.tolist()[:8], "sigma_trace": float(np.trace(stats.sigma)),
                        "features": stats.features.astype(np.float64).sum(axis=1).tolist()}
    out["stats_iterable_mu"] = gm.compute_stats(batches, batch_size=2, **common).mu.tolist()[:8]
    out["stats_tensor_mu"] = gm.compute_stats(tensor, batch_size=5, **common).mu.tolist()[:8]
    out["fid_folders"] = gm.fid(str(a), str(b), batch_size=4, **common)
    generator = TinyGenerator()
    out["evaluate_generator"] = gm.evaluate(
        generator, str(b), metrics=("fid", "kid", "is", "swd", "ms_ssim", "precision", "recall", "density",
                                    "coverage"), num_samples=9, batch_size=4, seed=3, kid_subsets=4,
        kid_subset_size=5, is_splits=3, swd_num_images=7, ms_ssim_num_pairs=3, pr_k=2, dc_k=2, **common)
    out["kid"] = gm.kid(str(a), str(b), subsets=3, subset_size=6, batch_size=4, **common)
    out["inception_score"] = gm.inception_score(str(a), splits=2, batch_size=4, **common)
    out["swd"] = gm.swd(str(a), str(b), num_images=9, batch_size=4, **{k: v for k, v in common.items()
                                                                        if k != "weights"})
    out["ms_ssim_diversity"] = gm.ms_ssim_diversity(batches, num_pairs=4, progress=False, distributed=distributed)

    # metric objects: each rank feeds its own batches (here: its rank-strided share of a's images)
    shard = current_shard(distributed)
    own = tensor[shard.rank::shard.world_size]
    fid = gm.FID(real=str(b), weights=weights, distributed=distributed, num_workers=0)
    fid.update(own[:2])
    fid.update(own[2:])
    out["FID"] = fid.compute()
    fid.reset()
    fid.update(own)
    out["FID_after_reset"] = fid.compute()
    kid = gm.KID(real=str(b), subsets=3, subset_size=5, weights=weights, distributed=distributed, num_workers=0)
    kid.update(own)
    out["objects_rank_order"] = {"KID": kid.compute()}  # features gathered rank after rank: another order
    score = gm.InceptionScore(splits=2, weights=weights, distributed=distributed)
    score.update(own)
    out["objects_rank_order"]["IS"] = score.compute()
    return out


if __name__ == "__main__":
    data_dir, weights_path, out_dir = sys.argv[1:4]
    torch.set_num_threads(1)
    result = run_all(Path(data_dir), weights_path, distributed=None)
    rank = int(os.environ["RANK"])
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
