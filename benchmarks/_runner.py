"""Fresh-process runs for the end-to-end and memory benchmarks, and the helpers they share.

As a script, ``python benchmarks/_runner.py TASK IMPL ...`` does one job in a new interpreter and
prints one line ``RESULT {json}`` on stdout:

* ``fid {ganmetrics,torch-fidelity,pytorch-fid,torch-fidelity-tf32} A B --weights W --peer-weights P
  [--device cuda]``: FID of two folders, as a user of that library would compute it (batch 50, 2
  decoding workers).  On CUDA all run float32 with TF32 off (ganmetrics' own setting), so that they do
  the same arithmetic and give the same FID; ``torch-fidelity-tf32`` is torch-fidelity with torch's
  default instead (TF32 cuDNN convolutions on Ampere and later), to show what that default costs in FID;
* ``stats {ganmetrics,numpy-cov} --n N``: mean and covariance of N seeded random feature vectors
  arriving in batches, streamed (``FeatureStats``) or kept and reduced with ``np.mean``/``np.cov``;
* ``manifold {ganmetrics,torch-fidelity,prdc} --n N``: k-NN precision/recall (k = 3, torch-fidelity's
  ``calculate_precision_recall_full``) and density/coverage (k = 5, prdc's ``compute_prdc``) of two seeded sets of
  N pool3-like feature vectors; ganmetrics computes all four (two k);
* ``train MODEL --iterations K [--threads T] [--batch-size B] [--no-channels-last]``: the zoo trainer's
  iterations (``d_steps`` D steps and one G step) on shapes32, one warm-up then K timed; under
  ``torchrun`` every rank trains and rank 0 reports.  ``iteration_seconds`` lists each timed
  iteration, ``start_seconds`` the time from the start of this script to the trainer being ready.

The JSON holds ``seconds`` (from the start of this script, so imports and model loading are in),
``peak_rss_mb`` (this process's ``VmHWM``) and ``workers_peak_rss_mb`` (largest DataLoader
worker, ``RUSAGE_CHILDREN``).  The parent's own ``RUSAGE_CHILDREN`` would not do: it is the maximum
over every child of the whole pytest session.

Imported by the benchmarks, it gives :func:`run_child`, :func:`feature_batches`,
:func:`peer_state_dict` and :func:`write_pngs` (the last two from ``tests/peers.py``).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402 - START first: the child's time includes its imports
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NoReturn  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tests/peers.py: torchvision import, peer weights, PNG folders

from peers import import_peer, peer_state_dict, write_pngs  # noqa: E402, F401 - re-exported for the benchmarks

RESULT_PREFIX = "RESULT "
BATCH_SIZE = 50  # the end-to-end runs: pytorch-fid's default batch size, used by all three
NUM_WORKERS = 2  # image decoding processes, the same for all three
FEATURE_DIM = 2048


# -- shared with the benchmarks (parent side) ------------------------------------------------------

def run_child(*args: str, timeout: float = 1800, launcher: tuple[str, ...] = (), source: Path = REPO,
              env: dict[str, str] | None = None) -> dict:
    """Run this file in a fresh interpreter with ``args``; return its JSON result (raise on failure).

    ``launcher``: arguments between the interpreter and this file (``-m torch.distributed.run ...``);
    ``source``: the tree whose ``ganmetrics`` the child imports (another revision's worktree);
    ``env``: extra environment variables.
    """
    pythonpath = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=pythonpath, **(env or {}))
    proc = subprocess.run([sys.executable, *launcher, str(Path(__file__).resolve()), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def feature_batches(n: int, batch: int, seed: int, dim: int = FEATURE_DIM):
    """``n`` float32 feature vectors in batches of ``batch``, batch ``i`` drawn from seed ``(seed, i)``.

    Like pool3 features: non-negative (``|N(0, 1)|`` times a fixed per-dimension scale in [0.1, 1]),
    so the mean is not small next to the spread.
    """
    import numpy as np

    scale = np.random.default_rng([seed, 1 << 30]).uniform(0.1, 1.0, dim).astype(np.float32)
    for i, start in enumerate(range(0, n, batch)):
        rng = np.random.default_rng([seed, i])
        x = rng.standard_normal((min(batch, n - start), dim), dtype=np.float32)
        np.abs(x, out=x)
        x *= scale
        yield x


# -- child side --------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec: ``VmHWM`` of /proc/self/status.

    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a child started from a large
    pytest process would report the parent's peak instead of its own.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; other systems: best effort


def workers_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fid_ganmetrics(a: str, b: str, args) -> float:
    import ganmetrics

    return ganmetrics.fid(a, b, protocol=args.protocol, weights=args.weights, device=args.device,
                          batch_size=BATCH_SIZE, num_workers=NUM_WORKERS, progress=False)


def fid_torch_fidelity(a: str, b: str, args) -> float:
    import multiprocessing

    torch_fidelity = import_peer("torch_fidelity")

    # torch-fidelity decodes with min(4, 2·cpu_count()) workers and has no option for it: report one
    # CPU so it uses 2, like the others (its only use of cpu_count in this code path).
    multiprocessing.cpu_count = lambda: NUM_WORKERS // 2
    metrics = torch_fidelity.calculate_metrics(input1=a, input2=b, fid=True, cuda=args.device == "cuda", cache=False,
                                               verbose=False, batch_size=BATCH_SIZE,
                                               feature_extractor_weights_path=args.peer_weights)
    return metrics["frechet_inception_distance"]


def fid_pytorch_fid(a: str, b: str, args) -> float:
    import torch

    calculate_fid_given_paths = import_peer("pytorch_fid.fid_score").calculate_fid_given_paths
    import pytorch_fid.inception

    # pytorch-fid downloads its weights with load_state_dict_from_url: load the local .pth instead.
    pytorch_fid.inception.load_state_dict_from_url = lambda *_, **__: torch.load(args.peer_weights)
    return calculate_fid_given_paths([a, b], batch_size=BATCH_SIZE, device=args.device, dims=2048,
                                     num_workers=NUM_WORKERS)


FID_IMPLS = {"ganmetrics": fid_ganmetrics, "torch-fidelity": fid_torch_fidelity, "pytorch-fid": fid_pytorch_fid,
             "torch-fidelity-tf32": fid_torch_fidelity}
TF32_IMPLS = {"torch-fidelity-tf32"}  # run with torch's default TF32 settings instead of float32


def stats_ganmetrics(batches):
    from ganmetrics.stats import FeatureStats

    stats = FeatureStats(FEATURE_DIM)
    for x in batches:
        stats.update(x)
    return stats.mu, stats.sigma


def stats_numpy_cov(batches):
    import numpy as np

    # The peers keep every feature, then reduce.  float32 as torch-fidelity keeps them (pytorch-fid keeps
    # float64, twice the memory); the mean in float64 like np.cov's, as torch-fidelity's float32
    # np.mean is ~3e-6 relative off.
    features = np.concatenate(list(batches))
    return np.mean(features, axis=0, dtype=np.float64), np.cov(features, rowvar=False)


STATS_IMPLS = {"ganmetrics": stats_ganmetrics, "numpy-cov": stats_numpy_cov}


def manifold_features(n: int, seed: int):
    """The k-NN benchmark's two sets of ``n`` pool3-like vectors: non-negative, of low intrinsic dimension (64
    latent factors mixed into 2048, plus noise) like Inception features — i.i.d. 2048-d draws would put every point
    outside every k-NN ball.  The generated set's latents are 1.1 times wider, so no score is 0 or 1."""
    import numpy as np
    import torch

    mixing = np.random.default_rng([seed, 1 << 30]).standard_normal((64, FEATURE_DIM)).astype(np.float32) / 8

    def draw(stream: int, spread: float):
        rng = np.random.default_rng([seed, stream])
        latents = rng.standard_normal((n, 64)).astype(np.float32) * np.float32(spread)
        noise = np.abs(rng.standard_normal((n, FEATURE_DIM)).astype(np.float32)) * np.float32(0.05)
        return torch.from_numpy(np.abs(latents @ mixing) + noise)

    return draw(1, 1.0), draw(2, 1.1)


def manifold_ganmetrics(real, fake) -> dict:
    from ganmetrics.metrics.manifold import manifold_scores_many

    scores = manifold_scores_many(real, fake, [(3, False), (5, True)])  # as evaluate() computes all four
    prc, dc = scores[(3, False)], scores[(5, True)]
    return {"precision": prc.precision, "recall": prc.recall, "density": dc.density, "coverage": dc.coverage}


def manifold_ganmetrics_prc(real, fake) -> dict:
    from ganmetrics.metrics.manifold import manifold_scores

    scores = manifold_scores(real, fake, 3, strict=False)  # precision and recall alone, as torch-fidelity's prc
    return {"precision": scores.precision, "recall": scores.recall}


def manifold_torch_fidelity(real, fake) -> dict:
    metric_prc = import_peer("torch_fidelity.metric_prc")
    precision, recall = metric_prc.calculate_precision_recall_full(fake, real, 3, 10000)  # (generated, real)
    return {"precision": precision, "recall": recall}


def manifold_prdc(real, fake) -> dict:
    prdc = import_peer("prdc")
    result = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    return {"density": float(result["density"]), "coverage": float(result["coverage"])}


MANIFOLD_IMPLS = {"ganmetrics": manifold_ganmetrics, "ganmetrics-prc": manifold_ganmetrics_prc,
                  "torch-fidelity": manifold_torch_fidelity,
                  "prdc": manifold_prdc}


def _feature_sets(real, fake, device: str):
    """The k-NN benchmark's vectors as two sets of statistics with their features kept (float64 accumulation on
    ``device``)."""
    from ganmetrics.metrics.base import SetData
    from ganmetrics.stats import FeatureStats

    sets = []
    for role, x in (("gen", fake), ("real", real)):
        stats = FeatureStats(FEATURE_DIM, keep_features=True)
        stats.update(x.to(device))
        sets.append(SetData(role=role, description=role, num_images=len(x), stats=stats))
    return sets


def uncertainty_fid(real, fake, replicates: int, device: str) -> dict:
    from ganmetrics.metrics.fid import fid_from_stats

    gen, ref = _feature_sets(real, fake, device)
    return {"value": fid_from_stats(gen.stats, ref.stats)}


def uncertainty_fid_inf(real, fake, replicates: int, device: str) -> dict:
    from ganmetrics.metrics.fid_infinity import fid_infinity

    gen, ref = _feature_sets(real, fake, device)
    return {"value": fid_infinity(gen.stats, ref.stats)["fid_inf"]}


def uncertainty_bootstrap(real, fake, replicates: int, device: str) -> dict:
    import torch

    from ganmetrics.bootstrap import bootstrap_metrics
    from ganmetrics.metrics.base import Context, split_options

    gen, ref = _feature_sets(real, fake, device)
    result = bootstrap_metrics(("fid",), gen, ref, split_options(("fid",), {}),
                               Context(seed=0, device=torch.device(device)), replicates=replicates)
    return {"value": result["fid"]["mean"], "std": result["fid"]["std"]}


UNCERTAINTY_IMPLS = {"fid": uncertainty_fid, "fid-inf": uncertainty_fid_inf, "bootstrap-fid": uncertainty_bootstrap}


def train_child(args) -> NoReturn:
    """Time the trainer's iterations (see the module docstring); rank 0 prints the result."""
    import inspect
    import tempfile

    import torch

    from ganmetrics.train import distributed
    from ganmetrics.train.loop import TrainConfig, Trainer

    torch.set_num_threads(args.threads)
    options = dict(model=args.model, out=tempfile.mkdtemp(prefix="train-bench-"), batch_size=args.batch_size,
                   progress=False)
    if "channels_last" in inspect.signature(TrainConfig).parameters:  # older revisions have no such option
        options["channels_last"] = not args.no_channels_last
    elif args.no_channels_last:
        raise SystemExit("this revision of ganmetrics trains in the standard layout only")
    world = distributed.setup("cpu")
    trainer = Trainer(TrainConfig(**options), world)
    start_seconds = time.perf_counter() - START
    trainer.iteration()  # warm-up: oneDNN primitive creation, allocator
    seconds = []
    for _ in range(args.iterations):
        distributed.barrier()
        started = time.perf_counter()
        trainer.iteration()
        distributed.barrier()
        seconds.append(time.perf_counter() - started)
    images = trainer.batch_size * world.world_size
    if world.is_main:
        result = {"iteration_seconds": seconds, "start_seconds": start_seconds, "images_per_iteration": images,
                  "d_steps": trainer.model_cfg.d_steps, "world_size": world.world_size,
                  "torch_threads": torch.get_num_threads(), "channels_last": options.get("channels_last", False),
                  "peak_rss_mb": peak_rss_mb()}
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    del trainer
    distributed.teardown(world)
    # End as ganmetrics.train.distributed.exit_process does (a --baseline revision may lack it): a gloo thread
    # that torch leaves running must not meet a finalising interpreter.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tasks = parser.add_subparsers(dest="task", required=True)
    fid = tasks.add_parser("fid")
    fid.add_argument("impl", choices=list(FID_IMPLS))
    fid.add_argument("a")
    fid.add_argument("b")
    fid.add_argument("--weights", required=True, help="ganmetrics' weight file (the offline default_1.pt)")
    fid.add_argument("--peer-weights", required=True, help="the converted .pth for the peers")
    fid.add_argument("--protocol", default="tf", help="ganmetrics' protocol")
    fid.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    stats = tasks.add_parser("stats")
    stats.add_argument("impl", choices=list(STATS_IMPLS))
    stats.add_argument("--n", type=int, default=50_000)
    stats.add_argument("--batch", type=int, default=500)
    stats.add_argument("--seed", type=int, default=0)
    manifold = tasks.add_parser("manifold")
    manifold.add_argument("impl", choices=list(MANIFOLD_IMPLS))
    manifold.add_argument("--n", type=int, default=10_000)
    manifold.add_argument("--seed", type=int, default=0)
    uncertainty = tasks.add_parser("uncertainty")
    uncertainty.add_argument("impl", choices=list(UNCERTAINTY_IMPLS))
    uncertainty.add_argument("--n", type=int, default=10_000)
    uncertainty.add_argument("--replicates", type=int, default=100)
    uncertainty.add_argument("--seed", type=int, default=0)
    uncertainty.add_argument("--device", default="cpu", help="where the float64 moments are accumulated")
    train = tasks.add_parser("train")
    train.add_argument("model")
    train.add_argument("--iterations", type=int, default=4)
    train.add_argument("--threads", type=int, default=1)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--no-channels-last", action="store_true")
    args = parser.parse_args(argv)
    if args.task == "train":
        return train_child(args)

    import torch  # both stats children import torch, as the peers (torch libraries) do

    result = {"torch_threads": torch.get_num_threads()}
    if args.task == "fid":
        if args.impl not in TF32_IMPLS:
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        result["tf32"] = [torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32]
        result["fid"] = float(FID_IMPLS[args.impl](args.a, args.b, args))
    elif args.task == "uncertainty":
        real, fake = manifold_features(args.n, args.seed)
        result["baseline_rss_mb"] = current_rss_mb()
        started = time.perf_counter()
        result.update(UNCERTAINTY_IMPLS[args.impl](real, fake, args.replicates, args.device))
        result["compute_seconds"] = time.perf_counter() - started
    elif args.task == "manifold":
        real, fake = manifold_features(args.n, args.seed)
        result["baseline_rss_mb"] = current_rss_mb()
        started = time.perf_counter()
        result.update(MANIFOLD_IMPLS[args.impl](real, fake))
        result["compute_seconds"] = time.perf_counter() - started
    else:
        import numpy as np

        result["baseline_rss_mb"] = current_rss_mb()
        started = time.perf_counter()
        mu, sigma = STATS_IMPLS[args.impl](feature_batches(args.n, args.batch, args.seed))
        result["accumulate_seconds"] = time.perf_counter() - started
        result["mu_sum"], result["sigma_trace"] = float(np.sum(mu)), float(np.trace(sigma))
        result["sigma_sum"] = float(np.sum(sigma))
    result["seconds"] = time.perf_counter() - START
    result["peak_rss_mb"] = peak_rss_mb()
    result["workers_peak_rss_mb"] = workers_peak_rss_mb()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
