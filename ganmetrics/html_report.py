"""``ganmetrics report``: one self-contained HTML page comparing a generated set with a reference set.

The page holds every metric (FID, KID, IS, SWD, MS-SSIM; one that cannot apply says why), the first
images of both sets as grids (pixel for pixel), SWD per Laplacian-pyramid level as a chart (inline SVG), the
protocol and the Inception weights (file and SHA-256), where and when it ran, and the exact command
that makes it again.  Images are inlined as ``data:`` URIs and the page's Content-Security-Policy
forbids every other load, so the file can be mailed or attached to a CI run and opens anywhere
offline; the numbers are also embedded as JSON (``<script type="application/json" id="ganmetrics-result">``).

:func:`collect_report` computes (pure data), :func:`render_html` lays it out (a pure function of that
data), :func:`report` does both and writes the file atomically.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shlex
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .atomic import atomic_write, check_writable
from .devices import resolve_device
from .distributed import is_main_process
from .errors import InputError, spelled
from .evaluate import evaluate
from .features import Extractor, resolve_extractor
from .imageio import encode_png
from .inputs import is_statistics, load_statistics
from .metrics.base import (
    FEATURES,
    KEPT_FEATURES,
    LOGITS,
    Context,
    all_options,
    option_fields,
    option_flag,
    parse_metrics,
    registry,
    split_options,
)
from .plots import first_images, image_grid
from .preprocess import DEFAULT_PROTOCOL, PROTOCOL_REFERENCES
from .provenance import run_environment
from .sources import is_generator

REPORT_FORMAT = "ganmetrics-report-1"

@dataclass(frozen=True)
class ReportSettings:
    """What decides a report's numbers; each field is the ``ganmetrics report`` option of the same name, and
    ``options`` the metrics' options (evaluate()'s keywords: ``{"kid_subsets": 100, ...}``, every registered one).

    ``metrics=None``: every metric that applies (one that cannot, e.g. IS with feature-only weights, is
    listed with the reason); a list: exactly those, and one that cannot apply is an error.
    """

    metrics: tuple[str, ...] | None = None
    protocol: str = DEFAULT_PROTOCOL
    feature_extractor: Any = None  #: as evaluate() takes it; default Inception
    num_samples: int | None = None
    seed: int = 0
    grid_images: int = 64
    strict: bool = True
    weights: str | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)
    bootstrap: int = 0
    ci: float = 0.95
    options: dict = field(default_factory=dict)

    @classmethod
    def of(cls, **values) -> ReportSettings:
        """Settings from fields and metric options given alike (``seed=1, kid_subsets=50``)."""
        names = {f.name for f in fields(cls)} - {"options"}
        return cls(**{k: v for k, v in values.items() if k in names},
                   options={k: v for k, v in values.items() if k not in names})

    def __post_init__(self) -> None:
        if self.metrics is not None:  # "fid,kid" or ["FID"] -> ("fid", "kid"), canonical order
            object.__setattr__(self, "metrics", parse_metrics(self.metrics))
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        object.__setattr__(self, "options", all_options(dict(self.options)))
        if self.grid_images < 1:
            raise InputError(f"grid_images must be >= 1, got {self.grid_images}")


def describe_source(source) -> str:
    """A path or bundled name as given; another object by its type (and shape)."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    shape = getattr(source, "shape", None)
    return f"{type(source).__name__}{list(shape) if shape is not None else ''}"


def reproduce_command(gen, real, output: str | os.PathLike, settings: ReportSettings,
                      title: str | None = None) -> str | None:
    """The ``ganmetrics report`` command line that makes this report again (paths made absolute), or ``None``
    when a set is a Python object rather than a path or a bundled name, or an option has no command-line flag."""
    if not all(isinstance(s, (str, os.PathLike)) for s in (gen, real)) or not isinstance(
            settings.feature_extractor, (str, type(None))):
        return None
    defaults = ReportSettings()
    specs = option_fields()
    if any(value != defaults.options[key] and not specs[key].metadata.get("cli", True)
           for key, value in settings.options.items()):
        return None

    def where(path) -> str:
        return str(Path(path).resolve()) if Path(path).exists() else str(path)

    words = ["ganmetrics", "report", where(gen), where(real), "-o", str(Path(output).resolve())]
    for spec in fields(ReportSettings):
        value = getattr(settings, spec.name)
        if spec.name == "strict":
            words += [] if value else ["--no-strict"]
        elif spec.name == "weights":
            words += ["--weights", where(value)] if value else []
        elif spec.name == "metrics":
            words += ["--metrics", ",".join(value)] if value else []
        elif spec.name == "value_range":
            words += ["--value-range", *(f"{v:g}" for v in value)] if tuple(value) != defaults.value_range else []
        elif spec.name == "options":
            words += [word for key, v in value.items() if v is not None and v != defaults.options[key]
                      for word in (option_flag(key), str(v))]
        elif value is not None and (value != getattr(defaults, spec.name) or spec.name in ("protocol", "seed")):
            words += [f"--{spec.name.replace('_', '-')}", str(value)]
    return shlex.join(words + (["--title", title] if title else []))


def _grid_or_reason(source, settings: ReportSettings, what: str) -> tuple[np.ndarray | None, str | None]:
    """The first ``grid_images`` images of ``source`` (uint8 ``[n, H, W, 3]``), or why there are none."""
    if is_statistics(source):
        return None, f"{what} is statistics ({describe_source(source)}): there are no images to show"
    return first_images(source, settings.grid_images, seed=settings.seed, value_range=settings.value_range), None


def _chosen_metrics(settings: ReportSettings, gen, real, extractor: Extractor | None,
                    sizes: dict[str, tuple[int, int]]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The metrics to compute and, when every metric was asked for, why each left out cannot apply (``real``:
    images, or the reference statistics already loaded; ``sizes``: role → the grids' image size)."""
    if settings.metrics is not None:
        return settings.metrics, {}
    known = registry()
    ctx = Context(seed=settings.seed, has_classifier=extractor.has_classifier if extractor else None,
                  image_sizes=sizes)
    options = split_options(known, settings.options)
    left_out = {name: str(reason) for name, metric in known.items()
                if (reason := metric.unavailable(gen, real, options[name], ctx))}
    return tuple(name for name in known if name not in left_out), left_out


def collect_report(gen, real, settings: ReportSettings = ReportSettings(), *, output: str | os.PathLike = "report.html",
                   batch_size: int = 64, device=None, num_workers: int | None = None, progress: bool = True,
                   title: str | None = None) -> dict:
    """Everything a report shows, as plain data: ``results`` (as :func:`ganmetrics.evaluate` returns them),
    ``left_out`` (metric → why it cannot apply), ``grids`` (``{"gen", "real"}``: uint8 ``[n, H, W, 3]`` or
    ``None``), ``notes`` (warnings raised on the way), the settings, protocol, weights, environment and
    the command that makes the report again."""
    if real is None:
        raise InputError("a report compares two sets: pass the reference set (images, statistics or a bundled name)")
    start = time.perf_counter()
    device = resolve_device(device)
    grids, notes = {}, []
    for role, source, what in (("gen", gen, "A"), ("real", real, "B")):
        grids[role], reason = _grid_or_reason(source, settings, what)
        if reason:
            notes.append(reason)
    wanted = settings.metrics if settings.metrics is not None else tuple(registry())
    extractor = None
    if any(registry()[name].needs & {FEATURES, KEPT_FEATURES, LOGITS} for name in wanted):
        extractor = resolve_extractor(settings.feature_extractor, protocol=settings.protocol, device=device,
                                      weights=settings.weights, progress=progress)
    sizes = {role: tuple(grid.shape[1:3]) for role, grid in grids.items() if grid is not None}
    reference = load_statistics(real) if is_statistics(real) else real  # a statistics file is read once, here
    chosen, left_out = _chosen_metrics(settings, gen, reference, extractor, sizes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = evaluate(gen, reference, chosen, protocol=settings.protocol, num_samples=settings.num_samples,
                           batch_size=batch_size, device=device, seed=settings.seed, weights=settings.weights,
                           progress=progress, num_workers=num_workers, strict=settings.strict,
                           value_range=settings.value_range, feature_extractor=extractor, bootstrap=settings.bootstrap,
                           ci=settings.ci, **settings.options)
    notes += list(dict.fromkeys(str(w.message) for w in caught))
    model = getattr(extractor, "model", None)  # Inception's network: its weights file
    return {
        "format": REPORT_FORMAT,
        "title": title or f"{describe_source(gen)} vs {describe_source(real)}",
        "gen": describe_source(gen),
        "gen_is_generator": is_generator(gen),
        "real": describe_source(real),
        "results": results,
        "left_out": left_out,
        # a user's extractor object is named, not copied (asdict deep-copies)
        "settings": {**asdict(replace(settings, feature_extractor=None)), "feature_extractor": (
            settings.feature_extractor if isinstance(settings.feature_extractor, (str, type(None)))
            else getattr(extractor, "name", None))},
        "protocol": {"name": settings.protocol, "reproduces": PROTOCOL_REFERENCES[settings.protocol]},
        "feature": getattr(extractor, "name", None),
        "weights": {"path": getattr(model, "weights_path", None), "sha256": getattr(extractor, "weights_sha256", None),
                    "classifier": getattr(extractor, "has_classifier", None)},
        "environment": run_environment(device),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.perf_counter() - start, 1),
        "command": reproduce_command(gen, real, output, settings, title),
        "working_directory": os.getcwd(),
        "notes": notes,
        "grids": grids,
    }


# ---------------------------------------------------------------------------------------------
# HTML

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid #d0d7de; }
.sub { color: #59636e; margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #d8dee4; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.value { font: 600 16px/1.3 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: nowrap; }
td.meaning, .muted { color: #59636e; font-size: 13px; }
tr.left-out td.value { color: #9a6700; font-weight: 400; font-size: 14px; }
.grids { display: flex; gap: 24px; flex-wrap: wrap; }
figure { margin: 0; } figcaption { color: #59636e; font-size: 13px; margin-top: 4px; max-width: 512px; }
img.grid { width: 512px; max-width: 100%; image-rendering: pixelated; border: 1px solid #d0d7de; }
svg { max-width: 100%; height: auto; display: block; margin: 8px 0 12px; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 10px 12px; white-space: pre-wrap; word-break: break-all;
      font-size: 13px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(rows: list[tuple[str, str]], *, escape_values: bool = True) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v) if escape_values else v}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _metrics_section(data: dict) -> str:
    results, settings = data["results"], data["settings"]
    known = registry()
    options = split_options(known, settings["options"])
    rows = []
    for name, metric in known.items():
        title = html.escape(metric.title)
        if name in results:
            detail = metric.detail(options[name], results["protocol"], results["num_samples"])
            boot = results.get("bootstrap", {}).get(name)
            interval = (f" (bootstrap ± {boot['std']:.3g}, {boot['confidence']:.0%} [{boot['low']:.4g}, "
                        f"{boot['high']:.4g}])" if boot else "")
            rows.append(f'<tr id="metric-{name}"><td>{title}</td><td class="value">'
                        f'{html.escape(metric.short(results[name]) + interval)}</td><td class="meaning">'
                        f'{html.escape(metric.meaning)} <span class="muted">'
                        f'({html.escape(detail)})</span></td></tr>')
        elif name in data["left_out"]:
            rows.append(f'<tr id="metric-{name}" class="left-out"><td>{title}</td><td class="value">not computed'
                        f'</td><td class="meaning">{html.escape(data["left_out"][name])}</td></tr>')
    counts = results["num_samples"]
    summary = f"{counts[0]} images of A" + (f", {counts[1]} of B" if len(counts) > 1 else "")
    return (f'<h2 id="metrics-heading">Metrics</h2><table id="metrics"><thead><tr><th>metric</th><th>value</th>'
            f'<th>what it measures</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p class="muted">{html.escape(summary)}; protocol {html.escape(results["protocol"])}. FID falls as the '
            f"number of images grows: compare FIDs computed from the same numbers of images.</p>")


def _grid_figure(grid: np.ndarray | None, caption: str) -> str:
    if grid is None:
        return ""
    png = encode_png(image_grid(grid, padding=2))
    return (f'<figure><img class="grid" alt="{html.escape(caption)}" src="{_png_data_uri(png)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _samples_section(data: dict) -> str:
    settings = data["settings"]
    sampled = f" (samples of seed {settings['seed']})" if data["gen_is_generator"] else ""
    figures = [_grid_figure(data["grids"][role], f"{label}: the first {len(data['grids'][role])} images of "
                                                 f"{data[role]}" + (sampled if role == "gen" else ""))
               for role, label in (("gen", "A"), ("real", "B")) if data["grids"][role] is not None]
    return f'<h2 id="samples">Samples</h2><div class="grids">{"".join(figures)}</div>' if figures else ""


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 × 10^k) giving about ``ticks`` ticks over ``[0, span]``."""
    raw = span / ticks if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def swd_levels_svg(levels: dict, average: float, *, width: int = 560, height: int = 300) -> str:
    """An inline SVG bar chart of SWD ×10³ per pyramid level (``{resolution: value}``, finest first) with
    their mean as a dashed line; needs no plotting library and no load."""
    left, right, top, bottom = 64, 16, 28, 48
    step = nice_step(max([*levels.values(), average]) * 1.1)
    top_value = step * math.ceil(max([*levels.values(), average]) * 1.1 / step)
    plot_w, plot_h = width - left - right, height - top - bottom

    def y(value: float) -> float:
        return top + plot_h * (1 - value / top_value)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="swd-chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12" role="img">',
             '<title>SWD ×10³ per Laplacian-pyramid level</title>']
    for k in range(int(round(top_value / step)) + 1):
        value = k * step
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#d8dee4"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
                     f'fill="#59636e">{value:g}</text>')
    slot = plot_w / len(levels)
    for i, (resolution, value) in enumerate(levels.items()):
        x0 = left + i * slot + slot * 0.2
        parts.append(f'<rect class="bar" data-level="{resolution}" data-value="{value!r}" x="{x0:.1f}" '
                     f'y="{y(value):.1f}" width="{slot * 0.6:.1f}" height="{y(0) - y(value):.1f}" fill="#4c72b0"/>'
                     f'<text x="{x0 + slot * 0.3:.1f}" y="{y(value) - 5:.1f}" text-anchor="middle" paint-order="stroke" '
                     f'stroke="#fff" stroke-width="4">{value:.2f}</text>'
                     f'<text x="{x0 + slot * 0.3:.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">'
                     f'{resolution}×{resolution}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(average):.1f}" y2="{y(average):.1f}" '
                 f'stroke="#c44e52" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{width - right}" '
                 f'y="{y(average) - 5:.1f}" text-anchor="end" fill="#c44e52">avg {average:.2f}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="#59636e">'
                 f'pyramid level (7×7 patches at this resolution)</text><text x="14" y="{top + plot_h / 2:.1f}" '
                 f'text-anchor="middle" fill="#59636e" transform="rotate(-90 14 {top + plot_h / 2:.1f})">'
                 f'SWD ×10³ (lower: closer)</text></svg>')
    return "".join(parts)


def _swd_section(data: dict) -> str:
    swd = data["results"].get("swd")
    if swd is None:
        return ""
    rows = "".join(f"<tr><td>{res}×{res}</td><td class=\"value\">{value:.4f}</td></tr>"
                   for res, value in swd["levels"].items())
    return (f'<h2 id="swd">SWD per pyramid level</h2>{swd_levels_svg(swd["levels"], swd["avg"])}'
            f'<table><thead><tr><th>level</th><th>SWD ×10³</th></tr></thead><tbody>{rows}'
            f'<tr><td>avg</td><td class="value">{swd["avg"]:.4f}</td></tr></tbody></table>')


def _provenance_section(data: dict) -> str:
    env, weights = data["environment"], data["weights"]
    rows = [("A (generated)", data["gen"]), ("B (reference)", data["real"]),
            ("protocol", f"{data['protocol']['name']}: equals {data['protocol']['reproduces']}")]
    if data.get("feature"):
        rows += [("features", data["feature"])]
    if weights["sha256"]:
        rows += [("weights", f"{weights['path']}"), ("weights SHA-256", weights["sha256"]),
                 ("classifier layer", "yes" if weights["classifier"] else "no (pool3 features only)")]
    settings = {**data["settings"], "metrics": data["settings"]["metrics"] or "every one that applies"}
    rows += [("settings", ", ".join(f"{k}={v}" for k, v in settings.items())),
             ("device", f"{env['device']} ({env['machine']}, {env['threads']} CPU threads)"),
             ("versions", f"ganmetrics {env['ganmetrics']}, torch {env['torch']}, Python {env['python']}"),
             ("made", f"{data['date']} in {data['seconds']} s")]
    return f'<h2 id="provenance">How these numbers were made</h2>{_table(rows)}'


def _reproduce_section(data: dict) -> str:
    if data["command"]:
        body = (f'<pre id="command">{html.escape(data["command"])}</pre><p class="muted">Run from '
                f'<code>{html.escape(data["working_directory"])}</code>; the same weights (SHA-256 above) and '
                f"protocol give the same numbers (see the docs' reliability page for the tolerances across "
                f"machines).</p>")
    else:
        body = ('<p id="command">Made from Python with an in-memory set, so no command line reproduces it: call '
                "<code>ganmetrics.report()</code> on the same sets with the settings above.</p>")
    return f'<h2 id="reproduce">Reproduce</h2>{body}'


def _notes_section(data: dict) -> str:
    if not data["notes"]:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in data["notes"])
    return f'<h2 id="notes">Notes</h2><ul>{items}</ul>'


def result_json(data: dict) -> dict:
    """The report's data without the image arrays (what the page embeds and ``--json`` prints)."""
    return {k: v for k, v in data.items() if k != "grids"}


def render_html(data: dict) -> str:
    """The report page of :func:`collect_report`'s ``data``: one HTML document, nothing loaded from outside."""
    embedded = json.dumps(result_json(data), indent=None).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ganmetrics report: {html.escape(data['title'])}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{html.escape(data['title'])}</h1>"
        f'<p class="sub">ganmetrics {__version__} · protocol {html.escape(data["protocol"]["name"])} · '
        f"{html.escape(data['date'])}</p>"
        + _metrics_section(data) + _samples_section(data) + _swd_section(data) + _provenance_section(data)
        + _reproduce_section(data) + _notes_section(data)
        + f'<script type="application/json" id="ganmetrics-result">{embedded}</script></main></body></html>\n'
    )


def report(gen, real, output: str | os.PathLike = "report.html", *, settings: ReportSettings | None = None,
           batch_size: int = 64, device=None, num_workers: int | None = None, progress: bool = True,
           title: str | None = None, **setting_values) -> dict:
    """Compare ``gen`` with ``real`` (anything :func:`ganmetrics.evaluate` accepts) and write the HTML report
    to ``output`` (atomically; under torchrun, rank 0 writes it); return its data without the images
    (:func:`result_json`).

    Settings come as a :class:`ReportSettings` or as its fields (``metrics=("fid", "kid")``, ``seed=1``, ...).
    """
    settings = settings or ReportSettings.of(**setting_values)
    check_writable(output, what=spelled("output", "-o"))  # before the work, not after it
    data = collect_report(gen, real, settings, output=output, batch_size=batch_size, device=device,
                          num_workers=num_workers, progress=progress, title=title)
    if is_main_process():  # under torchrun every rank holds the same data; one writes the page
        with atomic_write(output) as handle:
            handle.write(render_html(data).encode("utf-8"))
    return result_json(data)
