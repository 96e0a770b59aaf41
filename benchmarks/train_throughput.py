"""Training throughput of the zoo's models: seconds per iteration and kimg/s, with the variants side by side.

    python -m benchmarks.train_throughput [MODEL ...] [--iterations K] [--baseline REV] -o benchmarks/results-train.json
    python -m benchmarks.report benchmarks/results-cpu.json benchmarks/results-train.json -o benchmarks/README.md

Each row runs the trainer (:class:`ganmetrics.train.loop.Trainer`, shapes32, the model's own settings) in a
fresh process (``benchmarks/_runner.py train``): one warm-up iteration, then K timed ones (an iteration is
``d_steps`` D steps and one G step).  Per model (group ``train-MODEL``):

* ``ganmetrics`` — this tree, 1 process × 1 thread, channels-last (the default);
* ``contiguous`` — the same in the standard NCHW layout (``--no-channels-last``);
* ``2 threads`` — 1 process × 2 torch threads;
* ``2 processes`` — ``torchrun --nproc-per-node 2`` (gloo), 1 thread each, half the batch per process
  (the same images per step);
* ``before (REV)`` — the trainer of git revision REV (a temporary worktree), 1 process × 1 thread.

The "median"/"min" columns are seconds per iteration, **ratio** the row's median over ``ganmetrics``'s
(> 1: the default is faster), kimg/s the mean rate, "start s" the time from interpreter start to a ready
trainer (imports, rendering the 50,000 training images, building the networks).  The two-core variants need
an otherwise idle machine.  The JSON has pytest-benchmark's layout, so :mod:`benchmarks.report` renders it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

from benchmarks._runner import REPO, run_child

MODELS = ("dcgan", "stylegan2", "sagan", "stylegan", "biggan", "sngan", "wgan_gp")
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")


@contextmanager
def worktree(revision: str):
    """A temporary checkout of ``revision`` (``git worktree``), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="ganmetrics-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), revision], check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False,
                       capture_output=True)


def variants(model: str, batch_size: int, baseline: tuple[str, Path] | None) -> list[tuple[str, dict]]:
    """(row name, run_child keyword arguments plus ``args``) for each variant of one model."""
    base = ["train", model]
    rows = [("ganmetrics", {"args": base}),
            ("contiguous", {"args": base + ["--no-channels-last"]}),
            ("2 threads", {"args": base + ["--threads", "2"]}),
            ("2 processes", {"args": base + ["--batch-size", str(batch_size // 2)], "launcher": TORCHRUN,
                             "env": {"OMP_NUM_THREADS": "1"}})]
    if baseline is not None:
        rows.append((f"before ({baseline[0]})", {"args": base, "source": baseline[1]}))
    return rows


def row(model: str, name: str, result: dict) -> dict:
    """One pytest-benchmark-shaped entry from a child's result."""
    seconds = result["iteration_seconds"]
    mean = statistics.fmean(seconds)
    return {"group": f"train-{model}", "name": f"train[{name}]", "params": {"name": name},
            "stats": {"median": statistics.median(seconds), "min": min(seconds), "mean": mean, "rounds": len(seconds)},
            "extra_info": {"kimg_per_second": result["images_per_iteration"] / mean / 1000,
                           "start_seconds": result["start_seconds"], "peak_rss_mb": result["peak_rss_mb"],
                           "d_steps": result["d_steps"], "world_size": result["world_size"],
                           "torch_threads": result["torch_threads"]}}


def machine_info() -> dict:
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    return pytest_benchmark_generate_machine_info()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(MODELS), metavar="MODEL", help="default: all seven")
    parser.add_argument("--iterations", type=int, default=4, help="timed iterations per row (default: %(default)s)")
    parser.add_argument("--baseline", default=None, metavar="REV", help="also time the trainer of this git revision")
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW", help="run only these rows (names as above)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--update", action="store_true",
                        help="keep the rows of an existing OUTPUT that this run does not measure again")
    args = parser.parse_args(argv)

    import torch

    from ganmetrics.atomic import atomic_write
    from ganmetrics.zoo.registry import default_config

    revision = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip() or "unknown"
    benchmarks = []
    with worktree(args.baseline) if args.baseline else nullcontext() as tree:
        baseline = (args.baseline, tree) if args.baseline else None
        for model in args.models:
            for name, options in variants(model, default_config(model).batch_size, baseline):
                if args.only and not any(name.startswith(wanted) for wanted in args.only):
                    continue
                child_args = [*options.pop("args"), "--iterations", str(args.iterations)]
                result = run_child(*child_args, timeout=3600, **options)
                benchmarks.append(row(model, name, result))
                benchmarks[-1]["extra_info"]["revision"] = args.baseline if name.startswith("before") else revision
                print(f"{model:10s} {name:22s} {benchmarks[-1]['stats']['median']:8.3f} s/iteration  "
                      f"{benchmarks[-1]['extra_info']['kimg_per_second']:.4f} kimg/s", file=sys.stderr, flush=True)
    if args.update and args.output.is_file():
        measured = {(b["group"], b["name"]) for b in benchmarks}
        kept = [b for b in json.loads(args.output.read_text())["benchmarks"] if (b["group"], b["name"]) not in measured]
        benchmarks = sorted(kept + benchmarks, key=lambda b: (MODELS.index(b["group"][len("train-"):])
                                                              if b["group"][len("train-"):] in MODELS else 99))
    data = {"machine_info": machine_info(), "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "ganmetrics_environment": f"torch {torch.__version__}; CPU ({platform.machine()}); training throughput, "
                                      f"rounds = timed iterations; ganmetrics {revision} (each row's revision in "
                                      "its extra_info)",
            "benchmarks": benchmarks}
    with atomic_write(args.output, "w") as handle:
        json.dump(data, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
