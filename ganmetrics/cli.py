"""The ``ganmetrics`` command.

Results go to stdout (one JSON object with ``--json``), progress bars and messages to stderr.
Exit codes: 0 ok, 1 a check failed, 2 bad usage or bad input (a one-line message, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ._version import __version__
from .atomic import check_writable
from .errors import GanmetricsError, cli_words
from .preprocess import DEFAULT_PROTOCOL, PROTOCOLS
from .stats import FEATURE_NAME

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default=DEFAULT_PROTOCOL,
                        help="how images are resized and normalised for Inception (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=64, help="images per batch (default: 64)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--feature-extractor", default=None, metavar="NAME|MODULE:ATTR",
                        help="the features of FID, KID, FD∞, precision/recall, density/coverage: inception (default), "
                             "dinov2-vit-l-14 (--weights: its file), or module:attribute of a network or callable "
                             "from uint8 images to [N, d] features, imported from the current directory "
                             "(docs/feature-extractors.md)")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="the feature extractor's weights file (Inception's default: see README 'How weights are "
                             "found')")
    parser.add_argument("--num-workers", type=_non_negative_int, default=None,
                        help="image decoding processes (default: min(4, CPU count))")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _value_range(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _add_value_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--value-range", nargs=2, type=_value_range, default=(-1.0, 1.0), metavar=("LO", "HI"),
                        help="the range of float images in .npz/.npy arrays, quantised to 0..255 (default: -1 1; "
                             "e.g. 0 1 for [0, 1] data, 0 255 for float pixel values); uint8 images are read as they "
                             "are")


def _add_comparison(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-samples", type=_positive_int, default=None, help="use only the first N images of A")
    parser.add_argument("--no-strict", action="store_true",
                        help="compare statistics even if their protocol or weights differ")


def _add_metric_options(parser: argparse.ArgumentParser, *, metrics_default: str | None, metrics_help: str) -> None:
    """``--metrics``, ``--seed`` and every registered metric's options (``eval`` and ``report``)."""
    parser.add_argument("--metrics", default=metrics_default, help=metrics_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw of the metrics (default: 0)")
    _add_bootstrap(parser)
    _add_option_flags(parser)


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    """Every registered metric's options as flags (``--kid-subsets`` ...)."""
    from .metrics.base import option_flag

    for key, spec in _metric_option_specs().items():
        default = spec.default
        parser.add_argument(option_flag(key), dest=key, default=default,
                            type=_option_type(spec), help=(spec.metadata.get("help") or "")
                            + ("" if default is None or "default" in spec.metadata.get("help", "")
                               else f" (default: {default})"))


def _add_bootstrap(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--bootstrap", type=_non_negative_int, default=default, metavar="B",
                        help="resample each set's features B times (B >= 2) for the mean, std and interval of every "
                             f"pool3-feature metric (default: {default or 'off'})")
    parser.add_argument("--ci", type=float, default=0.95, metavar="C",
                        help="the bootstrap interval's confidence (default: 0.95)")


def _metric_option_specs() -> dict:
    """Every registered metric's options that have a CLI flag: ``{"kid_subsets": dataclass field, ...}``."""
    from .metrics.base import option_fields

    return {key: spec for key, spec in option_fields().items() if spec.metadata.get("cli", True)}


def _option_type(spec):
    if spec.metadata.get("kind", int) is float:
        return _value_range
    return {1: _positive_int, 0: _non_negative_int}.get(spec.metadata.get("minimum"), _integer)


def metric_options(args: argparse.Namespace) -> dict:
    """The metrics' options of parsed ``eval`` / ``report`` arguments, as :func:`ganmetrics.evaluate` keywords."""
    return {key: getattr(args, key) for key in _metric_option_specs() if hasattr(args, key)}


def _metric_list(*, sides: int | None = None, joiner: str = ", ") -> str:
    """The registered metrics' names (``sides``: only those comparing that many sets)."""
    from .metrics.base import registry

    return joiner.join(name for name, metric in registry().items() if sides is None or metric.sides == sides)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganmetrics", description="Peer-exact metrics for generative image models.")
    parser.add_argument("--version", action="version", version=f"ganmetrics {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fid = commands.add_parser("fid", help="FID between two image sets or statistics files",
                              description="FID between A and B: folders, zips, npz/npy arrays, statistics "
                                          "files or bundled reference names.")
    fid.add_argument("a", metavar="A")
    fid.add_argument("b", metavar="B")
    fid.add_argument("--curve", nargs="?", const="fid-curve.png", default=None, metavar="PNG",
                     help="also FD∞ (Chong & Forsyth 2020): FIDs of 15 random subsets of A, sizes evenly spaced in "
                          "1/N from min(5000, N/2) to N, and the intercept of their line in 1/N, plotted to PNG "
                          "(default: fid-curve.png)")
    fid.add_argument("--seed", type=int, default=0, help="seed of --curve's subsets (default: 0)")
    _add_comparison(fid)
    _add_common(fid)
    _add_value_range(fid)

    stats = commands.add_parser("stats", help="save the feature statistics of an image set",
                                description="Compute Inception statistics of A and save them as .npz "
                                            "(readable by pytorch-fid and TTUR).")
    stats.add_argument("a", metavar="A")
    stats.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    stats.add_argument("--keep-features", action="store_true", help="also store the features (for KID)")
    stats.add_argument("--num-samples", type=_positive_int, default=None, help="use only the first N images")
    _add_common(stats)
    _add_value_range(stats)

    evaluate = commands.add_parser("eval", help=f"several metrics in one pass ({_metric_list()})",
                                   description="Evaluate A (generated) against B (reference) with several metrics; "
                                               "each image is decoded once and goes through Inception once.")
    evaluate.add_argument("a", metavar="A")
    evaluate.add_argument("b", metavar="B", nargs="?", default=None,
                          help=f"reference set (not needed for {_metric_list(sides=1, joiner=' and ')} alone)")
    _add_metric_options(evaluate, metrics_default="fid,kid,is,swd,ms_ssim",
                        metrics_help=f"comma-separated list of {_metric_list()} (default: %(default)s)")
    _add_comparison(evaluate)
    _add_common(evaluate)
    _add_value_range(evaluate)

    report = commands.add_parser(
        "report", help="a self-contained HTML report: every metric, sample grids, SWD chart, provenance",
        description="Compare A (generated) with B (reference) and write one HTML page with every metric, grids of "
                    "the first images of both sets, SWD per pyramid level as a chart, the protocol and weights, and "
                    "the command that makes it again. Images are inlined: the file opens anywhere, offline.")
    report.add_argument("a", metavar="A")
    report.add_argument("b", metavar="B", help="reference set: images, a statistics file or a bundled name")
    report.add_argument("-o", "--output", default="report.html", metavar="REPORT.html",
                        help="where to write the page (default: %(default)s)")
    report.add_argument("--title", default=None, help="the page's heading (default: 'A vs B')")
    report.add_argument("--grid-images", type=_positive_int, default=64,
                        help="images of each set shown in its grid (default: 64)")
    _add_metric_options(report, metrics_default=None,
                        metrics_help=f"comma-separated list of {_metric_list()} (default: every metric that "
                                     "applies; the page says why one does not)")
    _add_comparison(report)
    _add_common(report)
    _add_value_range(report)

    dataset = commands.add_parser("dataset", help="write a built-in image set as PNG files",
                                  description="Render N images of a built-in set (e.g. shapes32, the zoo's training "
                                              "set) into DIR/<class>/NNNNNN.png.")
    dataset.add_argument("name", metavar="NAME", help="shapes32 or shapes64")
    dataset.add_argument("-n", "--num-images", type=_positive_int, required=True)
    dataset.add_argument("-o", "--output", required=True, metavar="DIR")
    dataset.add_argument("--seed", type=int, default=0, help="which set (image i is a function of seed and i)")
    dataset.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    grid = commands.add_parser("grid", help="a PNG grid of the first images of a set or samples of a zoo model",
                               description="Tile the first N images of A (a folder, zip, npz/npy, or a zoo model "
                                           "name: its samples) into one PNG, pixel for pixel.")
    grid.add_argument("a", metavar="A")
    grid.add_argument("-o", "--output", required=True, metavar="GRID.png")
    grid.add_argument("-n", "--num-images", type=_positive_int, default=64, help="images in the grid (default: 64)")
    grid.add_argument("--columns", type=_positive_int, default=None, help="tiles per row (default: a square grid)")
    grid.add_argument("--padding", type=_non_negative_int, default=2, help="white pixels between tiles (default: 2)")
    grid.add_argument("--seed", type=int, default=0, help="seed of a zoo model's samples (default: 0)")
    grid.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _add_value_range(grid)

    sample = commands.add_parser("sample", help="write samples of a zoo model (or a checkpoint) as PNG files",
                                 description="Generate N images with a trained zoo model and save them as PNGs, "
                                             "quantised exactly as the metrics quantise a generator's output.")
    sample.add_argument("model", metavar="MODEL", help="a zoo model name (dcgan ... stylegan2)")
    sample.add_argument("-n", "--num-images", type=_positive_int, required=True)
    sample.add_argument("-o", "--output", required=True, metavar="DIR")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--truncation", type=float, default=None,
                        help="BigGAN: truncated-normal threshold; StyleGANs: ψ in W (default: none)")
    sample.add_argument("--label", type=int, default=None, help="class of every sample (conditional models)")
    sample.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="a training checkpoint or exported model instead of the shipped one")
    sample.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    sample.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    from .train.options import add_train_arguments

    train = commands.add_parser("train", help="train a zoo model (multi-GPU: torchrun -m ganmetrics.train)",
                                description="Train a zoo model with the built-in DDP loop; resumes from "
                                            "OUT/checkpoint.pt. For several processes run "
                                            "`torchrun --nproc-per-node K -m ganmetrics.train MODEL ...`.")
    add_train_arguments(train)

    board = commands.add_parser(
        "leaderboard", help="a leaderboard's scores; --check rescores and fails on a regression",
        description="Print, check or update a leaderboard: a config of entries and settings "
                    "(ganmetrics-leaderboard.toml or [tool.ganmetrics.leaderboard] in pyproject.toml in the current "
                    "folder, else the zoo's, reference_stats/leaderboard.toml) and the results file beside it. "
                    "--check rescores a tier and exits 1 naming each entry and metric that regressed beyond its "
                    "tolerance and gate (a better score passes with a notice); --update rescores and rewrites the "
                    "results (deliberately, never in CI). Exit 2: a bad config, naming the file and key.")
    action = board.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="rescore and compare (exit 1 on a regression)")
    action.add_argument("--update", action="store_true", help="rescore and rewrite the results file")
    board.add_argument("--config", default=None, metavar="PATH",
                       help="the leaderboard config (default: ./ganmetrics-leaderboard.toml, ./pyproject.toml's "
                            "[tool.ganmetrics.leaderboard], else the zoo's)")
    board.add_argument("--tier", default=None, help="which tier of the config (default: its first)")
    board.add_argument("--entries", "--models", dest="entries", default=None, metavar="A,B",
                       help="comma-separated entries (default: all)")
    board.add_argument("--junit-xml", default=None, metavar="PATH",
                       help="with --check: write JUnit XML, one test case per entry and metric")
    board.add_argument("--markdown", default=None, metavar="PATH",
                       help="with --check: write a Markdown table of the verdicts (to post on a pull request)")
    board.add_argument("--docs", default=None, metavar="DIR",
                       help="where --update writes the results page and chart (default: the config's docs key)")
    board.add_argument("--chart", default=None, metavar="PNG", help="also draw the stored results' chart")
    board.add_argument("--device", default=None, help="cpu, cuda ... (default: the config's, else cuda if available)")
    board.add_argument("--weights", default=None, metavar="PATH", help="Inception weights file")
    board.add_argument("--no-progress", action="store_true", help="hide progress bars")
    board.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    compare = commands.add_parser(
        "compare", help="is A better than B against REAL? a paired bootstrap with an interval and a p-value",
        description="Score A and B against the same REAL (one Inception pass per set) and resample all three sets' "
                    "features B times, the reference's draw shared by A and B: the difference A − B, its interval "
                    "and a two-sided p-value; prints a one-line verdict.")
    compare.add_argument("a", metavar="A")
    compare.add_argument("b", metavar="B")
    compare.add_argument("real", metavar="REAL")
    compare.add_argument("--metric", default="fid",
                         help="fid, fid_inf, kid, precision, recall, density or coverage (default: fid)")
    compare.add_argument("--seed", type=int, default=0, help="seed of the resampling and the metrics (default: 0)")
    _add_bootstrap(compare, default=100)
    _add_comparison(compare)
    _add_common(compare)
    _add_value_range(compare)
    _add_option_flags(compare)

    demo = commands.add_parser("demo", help="FID between two built-in image sets (no data needed)",
                               description="Render two small built-in image sets (crisp shapes vs. blurred, "
                                           "noisy ones) and print their FID.")
    demo.add_argument("-n", "--num-images", type=_positive_int, default=64, help="images per set (default: 64)")
    demo.add_argument("--seed", type=int, default=0)
    _add_common(demo)
    return parser


def _emit(result: dict, as_json: bool, text: str) -> None:
    """Print the result on stdout (once: on rank 0 only under torchrun)."""
    from .distributed import is_main_process

    if is_main_process():
        print(json.dumps(result) if as_json else text, flush=True)


def _extraction_kwargs(args: argparse.Namespace) -> dict:
    kwargs = {"protocol": args.protocol, "batch_size": args.batch_size, "device": args.device,
              "weights": args.weights, "num_workers": args.num_workers, "progress": not args.no_progress,
              "feature_extractor": args.feature_extractor}
    if hasattr(args, "value_range"):  # the commands that read user images
        kwargs["value_range"] = tuple(args.value_range)
    return kwargs


def cmd_fid(args: argparse.Namespace) -> int:
    from .evaluate import run

    if args.curve is not None:
        check_writable(args.curve, what="--curve")
    start = time.perf_counter()
    scores, sets = run(args.a, args.b, ("fid",), num_samples=args.num_samples, strict=not args.no_strict,
                       keep_gen_features=args.curve is not None, **_extraction_kwargs(args))
    value, gen_stats, real_stats = scores["fid"], sets["gen"].stats, sets["real"].stats
    result = {"fid": value, "protocol": args.protocol, "num_samples": [gen_stats.num_samples, real_stats.num_samples],
              "seconds": round(time.perf_counter() - start, 3)}
    text = f"FID: {value:.6f}"
    if args.curve is not None:
        from .distributed import is_main_process
        from .metrics.fid_infinity import fid_infinity
        from .plots import save_fid_curve

        fit = fid_infinity(gen_stats, real_stats, seed=args.seed, strict=not args.no_strict)
        result.update(fid_inf=fit["fid_inf"], curve=[{"num_samples": int(n), "fid": f} for n, f in fit["fid_n"].items()])
        if is_main_process():
            save_fid_curve(fit, args.curve, title=f"FID ({args.protocol}) of {Path(args.a).name} subsets vs "
                                                  f"{Path(args.b).name}")
        result["curve_png"] = args.curve
        text += "\n" + "\n".join(f"  N = {p['num_samples']:>6}: FID {p['fid']:.4f}" for p in result["curve"])
        text += f"\nFD∞ (intercept at 1/N = 0): {fit['fid_inf']:.6f}\ncurve plotted to {args.curve}"
    _emit(result, args.json, text)
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from .api import compute_stats

    output = args.output if args.output.lower().endswith(".npz") else args.output + ".npz"  # as FeatureStats.save
    check_writable(output, what="-o")
    stats = compute_stats(args.a, num_samples=args.num_samples, keep_features=args.keep_features,
                          **_extraction_kwargs(args))
    from .distributed import is_main_process

    path = stats.save(args.output) if is_main_process() else Path(args.output)  # every rank holds the same stats
    result = {"stats": str(path), "protocol": args.protocol, "num_samples": stats.num_samples}
    _emit(result, args.json, f"saved statistics of {stats.num_samples} images to {path}")
    return EXIT_OK


def format_results(result: dict) -> str:
    """Human-readable lines for an :func:`ganmetrics.evaluate` result."""
    from .metrics.base import registry

    boot = result.get("bootstrap", {})
    lines = [metric.line(result[name]) + (f"   bootstrap {b['mean']:.6g} ± {b['std']:.3g}, {b['confidence']:.0%} "
                                          f"[{b['low']:.6g}, {b['high']:.6g}]" if (b := boot.get(name)) else "")
             for name, metric in registry().items() if name in result]
    feature = result.get("feature")
    lines.append(f"protocol {result['protocol']}, images {result['num_samples']}"
                 + (f", features {feature}" if feature not in (None, FEATURE_NAME) else "")
                 + (f", bootstrap of {'both sets' if len(boot['resampled']) == 2 else 'the generated set'}"
                    if boot else ""))
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    start = time.perf_counter()
    result = evaluate(args.a, args.b, metrics=args.metrics, num_samples=args.num_samples, seed=args.seed,
                      strict=not args.no_strict, bootstrap=args.bootstrap, ci=args.ci, **metric_options(args),
                      **_extraction_kwargs(args))
    result["seconds"] = round(time.perf_counter() - start, 3)
    _emit(result, args.json, format_results(result))
    return EXIT_OK


def report_settings(args: argparse.Namespace):
    """The :class:`~ganmetrics.html_report.ReportSettings` of parsed ``ganmetrics report`` arguments."""
    from .html_report import ReportSettings

    return ReportSettings.of(
        metrics=args.metrics, protocol=args.protocol, num_samples=args.num_samples, seed=args.seed,
        grid_images=args.grid_images, strict=not args.no_strict, weights=args.weights, bootstrap=args.bootstrap,
        ci=args.ci, feature_extractor=args.feature_extractor,
        value_range=tuple(args.value_range), **metric_options(args))


def cmd_report(args: argparse.Namespace) -> int:
    from .html_report import report

    check_writable(args.output, what="-o")
    data = report(args.a, args.b, args.output, settings=report_settings(args), batch_size=args.batch_size,
                  device=args.device,
                  num_workers=args.num_workers, progress=not args.no_progress, title=args.title)
    data["report"] = str(Path(args.output).resolve())
    text = format_results(data["results"]) + "".join(f"\n{name}: not computed ({why})"
                                                     for name, why in data["left_out"].items())
    _emit(data, args.json, text + f"\nreport written to {data['report']}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from .api import compare

    start = time.perf_counter()
    result = compare(args.a, args.b, args.real, metric=args.metric, bootstrap=args.bootstrap, ci=args.ci,
                     seed=args.seed, num_samples=args.num_samples, strict=not args.no_strict, **metric_options(args),
                     **_extraction_kwargs(args))
    result["seconds"] = round(time.perf_counter() - start, 3)
    _emit(result, args.json, f"A {result['a']:.6g}, B {result['b']:.6g}: {result['verdict']} "
                             f"({result['replicates']} paired replicates)")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.synthetic import render_images
    from .evaluate import run

    print(f"rendering {args.num_images} 'shapes' and {args.num_images} 'blobs' images (32x32)...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ganmetrics-demo-") as tmp:
        sets = {}
        for style in ("shapes", "blobs"):
            sets[style] = Path(tmp) / f"{style}.npy"
            np.save(sets[style], render_images(style, args.num_images, seed=args.seed))
        start = time.perf_counter()
        scores, data = run(str(sets["blobs"]), str(sets["shapes"]), ("fid",), **_extraction_kwargs(args))
    value, gen_stats, real_stats = scores["fid"], data["gen"].stats, data["real"].stats
    result = {"fid": value, "protocol": args.protocol, "num_samples": [gen_stats.num_samples, real_stats.num_samples],
              "seconds": round(time.perf_counter() - start, 3)}
    _emit(result, args.json, f"FID(blobs, shapes) = {value:.4f}  [protocol {args.protocol}, "
                             f"{args.num_images} images each, {result['seconds']:.1f} s]")
    return EXIT_OK


def cmd_dataset(args: argparse.Namespace) -> int:
    from .data.builtin import CLASS_NAMES, dataset_size, render_image
    from .imageio import save_png

    size, out = dataset_size(args.name), check_writable(args.output, what="-o", folder=True)
    for index in range(args.num_images):
        image, label = render_image(args.seed, index, size)
        save_png(out / f"{label}_{CLASS_NAMES[label]}" / f"{index:06d}.png", image)
    result = {"dataset": args.name, "num_images": args.num_images, "seed": args.seed, "output": str(out)}
    _emit(result, args.json, f"wrote {args.num_images} images of {args.name} (seed {args.seed}) to {out}")
    return EXIT_OK


def cmd_grid(args: argparse.Namespace) -> int:
    from .plots import first_images, save_grid
    from .zoo.registry import model_names

    check_writable(args.output, what="-o")
    if args.a in model_names() and not Path(args.a).exists():  # the same images as `ganmetrics sample`
        from .sources import quantize
        from .zoo.checkpoints import load

        images = quantize(load(args.a).sample(args.num_images, seed=args.seed)).permute(0, 2, 3, 1).numpy()
    else:
        images = first_images(args.a, args.num_images, seed=args.seed, value_range=tuple(args.value_range))
    path = save_grid(images, args.output, columns=args.columns, padding=args.padding)
    result = {"grid": str(path), "source": args.a, "num_images": len(images)}  # a smaller set gives what it has
    which = f"the first {len(images)}" if len(images) == args.num_images else f"all {len(images)}"
    _emit(result, args.json, f"wrote a grid of {which} images of {args.a} to {path}")
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    from .imageio import save_png
    from .sources import quantize
    from .zoo.checkpoints import generator_from_checkpoint, load

    check_writable(args.output, what="-o", folder=True)
    generator = generator_from_checkpoint(args.checkpoint) if args.checkpoint else load(args.model)
    from .devices import check_device

    generator = generator.to(check_device(args.device or "cpu"))
    out, index = Path(args.output), 0
    for images in generator.iter_samples(args.num_images, seed=args.seed, truncation=args.truncation,
                                         labels=args.label):
        for image in quantize(images).permute(0, 2, 3, 1).cpu().numpy():
            save_png(out / f"{index:06d}.png", image)
            index += 1
    result = {"model": args.model, "num_images": args.num_images, "seed": args.seed, "truncation": args.truncation,
              "output": str(out)}
    _emit(result, args.json, f"wrote {args.num_images} samples of {args.model} (seed {args.seed}) to {out}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from .train.loop import train
    from .train.options import config_from_args

    state = train(config_from_args(args))
    result = {"model": args.model, "steps": state.step, "seconds": round(state.elapsed_seconds, 1),
              "history": state.history}
    last = f", FID {state.history[-1]['fid']:.3f}" if state.history and state.history[-1]["fid"] is not None else ""
    _emit(result, getattr(args, "json", False), f"trained {args.model} to step {state.step}{last}")
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    from . import leaderboard as lb
    from .atomic import atomic_write
    from .errors import InputError
    from .leaderboard import report as out

    config = lb.read_config(args.config or lb.default_config())
    if args.device is not None:  # where to score is not a setting of the numbers
        config = dataclasses.replace(config, tiers={name: dataclasses.replace(tier, entries=tuple(
            dataclasses.replace(e, settings=dataclasses.replace(e.settings, device=args.device))
            for e in tier.entries)) for name, tier in config.tiers.items()})
    entries = [name.strip() for name in args.entries.split(",") if name.strip()] if args.entries else None
    for flag, path in (("--junit-xml", args.junit_xml), ("--markdown", args.markdown), ("--chart", args.chart)):
        if path:
            if flag != "--chart" and not args.check:
                raise InputError(f"{flag} reports a check: add --check")
            check_writable(path, what=flag)
    progress = not args.no_progress
    if args.check:
        report = lb.check(config, args.tier, entries=entries, weights=args.weights, progress=progress)
        for line in report.problems + [f.message for f in report.findings if f.failed]:
            print(f"ganmetrics leaderboard: FAILED {line}", file=sys.stderr)
        for line in [f.message for f in report.notices] + report.notes:
            print(f"ganmetrics leaderboard: notice: {line}", file=sys.stderr)
        if args.junit_xml:
            with atomic_write(args.junit_xml) as handle:
                handle.write(out.junit_xml(report))
        if args.markdown:
            with atomic_write(args.markdown, "w") as handle:
                handle.write(out.check_markdown(report))
        failed = sum(f.failed for f in report.findings)
        verdict = ("passed: every number within its tolerance" + (" or gate" if report.notices else "")
                   if report.passed else f"FAILED: {failed} regression(s), {len(report.problems)} other problem(s)")
        _emit(report.to_json(), args.json,
              f"{out.format_table(out.CHECK_HEADER, out.check_rows(report))}\n\n"
              f"check of {config.path} (tier {report.tier}): {verdict}")
        return EXIT_OK if report.passed else EXIT_CHECK_FAILED
    if args.update:
        if os.environ.get("CI"):
            raise InputError("--update rewrites the stored results; refusing under CI ($CI is set)")
        results, report = lb.update(config, args.tier, entries=entries, weights=args.weights, progress=progress)
        docs = Path(args.docs) if args.docs else config.docs
        written = out.write_docs(config, results, docs) if docs is not None else []
        for item in [config.results, *written]:
            print(f"wrote {item}", file=sys.stderr)
        for f in report.findings:
            if f.status != "passed":
                print(f"ganmetrics leaderboard: changed since the last update: {f.message}", file=sys.stderr)
        _emit(results, args.json, out.format_results(results, [report.tier]))
        return EXIT_OK
    results = lb.read_results(config.results)
    if args.tier is not None:
        config.tier(args.tier)  # a clear error for a tier the config lacks
    if args.chart:
        if not results.get("tiers"):
            raise InputError(f"{config.results} has no scores to draw; create them with `ganmetrics leaderboard "
                             "--update`")
        with atomic_write(args.chart) as handle:
            handle.write(out.chart_png(results))
        print(f"wrote {args.chart}", file=sys.stderr)
    _emit(results, args.json, out.format_results(results, [args.tier] if args.tier else None))
    return EXIT_OK


COMMANDS = {"fid": cmd_fid, "stats": cmd_stats, "eval": cmd_eval, "report": cmd_report, "dataset": cmd_dataset,
            "sample": cmd_sample, "compare": cmd_compare, "grid": cmd_grid, "train": cmd_train, "demo": cmd_demo,
            "leaderboard": cmd_leaderboard}


def reference_markdown(width: int = 100) -> str:
    """``docs/cli.md``: every command's ``--help`` (at a fixed width, so the page does not depend on the terminal)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    def help_of(p: argparse.ArgumentParser) -> str:
        p.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=width)
        return p.format_help().rstrip()

    lines = ["# Command line", "",
             "Generated from the argument parser (`python -m ganmetrics.cli --markdown > docs/cli.md`). Results go "
             "to stdout (one JSON object with `--json`), progress bars and messages to stderr. Exit codes: 0 ok, 1 a "
             "check failed (`leaderboard --check`), 2 bad usage or bad input (a one-line message naming the file "
             "or argument, never a traceback).", "", "```text", help_of(parser), "```", ""]
    for name, sub in commands.choices.items():
        lines += [f"## ganmetrics {name}", "", "```text", help_of(sub), "```", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ganmetrics`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"ganmetrics {args.command}: warning: {message}", file=sys.stderr, flush=True)

    try:
        with cli_words(), warnings.catch_warnings():
            warnings.showwarning = show_warning  # one clean line, no source file or code line
            return COMMANDS[args.command](args)
    except GanmetricsError as exc:
        print(f"ganmetrics {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ganmetrics: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The ``ganmetrics`` console script: :func:`main`, then exit with its code — through the trainer's
    :func:`~ganmetrics.train.distributed.exit_process` after ``ganmetrics train`` (see there why)."""
    code = main()
    trainer = sys.modules.get("ganmetrics.train.distributed")
    if trainer is not None:
        trainer.exit_process(code)
    sys.exit(code)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(reference_markdown(), end="")
        sys.exit(0)
    run()
