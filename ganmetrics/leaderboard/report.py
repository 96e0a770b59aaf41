"""A leaderboard as text: the terminal table, the Markdown for a pull request, JUnit XML for CI systems, the docs
page and its chart.  Pure functions of the stored results (and a :class:`~ganmetrics.leaderboard.Report`); metric
titles, formats and directions come from the registry."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..atomic import atomic_write
from ..metrics.base import HIGHER, LOWER, registry
from ..plots import figure_png, pyplot
from .config import Config
from .results import FAILED, IMPROVED, PASSED, WITHIN_GATE

STATUS_MARK = {PASSED: "✅ same", IMPROVED: "⬆️ better", WITHIN_GATE: "⚠️ within gate", FAILED: "❌ failed"}


def cell(metric: str, value, bootstrap: dict | None = None) -> str:
    """A number as a table shows it: 4 significant digits, ``± std`` for a mean over subsets, and the bootstrap's
    interval ``[low, high]`` when the entry was scored with one."""
    if value is None:
        return "–"
    known = registry()[metric]
    head = known.headline(value)
    std = value.get("std") if isinstance(value, dict) else None
    interval = f" [{bootstrap['low']:.4g}, {bootstrap['high']:.4g}]" if bootstrap else ""
    return f"{head:.4g}" + (f" ± {std:.2g}" if std is not None else "") + interval


def metrics_of(tier: dict) -> list[str]:
    """The metrics a tier's entries were scored with, in the registry's order."""
    scored = {m for entry in tier["entries"].values() for m in entry["scores"]}
    return [m for m in registry() if m in scored]


def header(metrics: list[str]) -> list[str]:
    known = registry()
    arrows = {LOWER: " ↓", HIGHER: " ↑", None: ""}
    return ["entry", *(f"{known[m].label or known[m].title}{arrows[known[m].direction]}" for m in metrics), "time"]


def table_rows(tier: dict) -> list[list[str]]:
    """One row per entry of a stored (or just scored) tier: its numbers and how long it took."""
    metrics = metrics_of(tier)
    rows = []
    for name, entry in tier["entries"].items():
        p = entry["provenance"]
        rows.append([name, *(cell(m, entry["scores"].get(m), entry.get("bootstrap", {}).get(m)) for m in metrics),
                     f"{p['seconds']:.0f} s ({p['threads']} thr.)"])
    return rows


def format_table(head: list[str], rows: list[list[str]]) -> str:
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]

    def line(cells) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(row) + " |" for row in rows)])


def summary(name: str, tier: dict) -> str:
    """One line: sample counts, seed, protocol, reference, where and when scored."""
    entries = list(tier["entries"].values())
    if not entries:
        return f"{name}: no entries"
    s, p = entries[0]["settings"], entries[0]["provenance"]
    ref = entries[0].get("reference") or {}
    against = f"against {ref.get('source')} ({ref.get('num_images', 0):,} images)" if ref else ""
    if ref.get("fid_reference"):
        against += f", FID against the statistics {ref['fid_reference']}"
    dates = sorted({e["provenance"]["date"][:10] for e in entries})
    where = sorted({f"{e['provenance']['machine']} ({e['provenance']['device']})" for e in entries})
    return (f"{name}: {s['num_samples']:,} samples per entry (seed {s['seed']}, protocol {p['protocol']}) {against}; "
            f"scored {' to '.join(dict.fromkeys([dates[0], dates[-1]]))} on {'; '.join(where)}")


def format_results(results: dict, tiers: list[str] | None = None) -> str:
    """The terminal view of stored results: each tier's summary and table."""
    names = [t for t in results.get("tiers", {}) if tiers is None or t in tiers]
    if not names:
        return "no results yet: create them with `ganmetrics leaderboard --update`"
    blocks = []
    for name in names:
        tier = results["tiers"][name]
        blocks.append(f"{summary(name, tier)}\n{format_table(header(metrics_of(tier)), table_rows(tier))}")
    return "\n\n".join(blocks)


def check_rows(report) -> list[list[str]]:
    """One row per entry × metric of a check: stored, now, change, verdict."""
    known = registry()
    rows = []
    for f in report.findings:
        title = known[f.metric].label or known[f.metric].title
        delta = "–" if f.stored is None or f.now is None else f"{f.now - f.stored:+.3g}"
        rows.append([f.entry, title, "–" if f.stored is None else f"{f.stored:.6g}",
                     "–" if f.now is None else f"{f.now:.6g}", delta, STATUS_MARK[f.status]])
    return rows


CHECK_HEADER = ["entry", "metric", "stored", "now", "change", "verdict"]


def check_markdown(report) -> str:
    """Markdown to post on a pull request: the verdict, every entry × metric, the problems and notices."""
    verdict = "passed" if report.passed else "FAILED"
    out = [f"### ganmetrics leaderboard check: {verdict}", "",
           f"Config `{report.config.path.name}`, tier `{report.tier}`.", "",
           markdown_table(CHECK_HEADER, check_rows(report)), ""]
    if report.problems:
        out += ["**Problems**", "", *(f"- {p}" for p in report.problems), ""]
    notices = [f.message for f in report.notices] + report.notes
    if notices:
        out += ["**Notices**", "", *(f"- {n}" for n in notices), ""]
    return "\n".join(out)


def junit_xml(report) -> bytes:
    """JUnit XML: one test case per entry × metric (classname ``leaderboard.<tier>.<entry>``), plus one ``inputs``
    case per entry (settings, artefact) and one for the tier's own problems."""
    suite = ET.Element("testsuite", name=f"ganmetrics leaderboard {report.tier}")
    cases = []
    for f in report.findings:
        case = ET.Element("testcase", classname=f"leaderboard.{report.tier}.{f.entry}", name=f.metric)
        if f.failed:
            ET.SubElement(case, "failure", message=f.message, type="regression").text = f.message
        else:
            ET.SubElement(case, "system-out").text = f.message
        cases.append(case)
    entries = list(dict.fromkeys([f.entry for f in report.findings] + list(report.records)))
    for entry in entries:
        mine = [p for p in report.problems if p.startswith(f"{entry}:")]
        case = ET.Element("testcase", classname=f"leaderboard.{report.tier}.{entry}", name="inputs")
        for problem in mine:
            ET.SubElement(case, "failure", message=problem, type="stale").text = problem
        cases.append(case)
    rest = [p for p in report.problems if not any(p.startswith(f"{e}:") for e in entries)]
    case = ET.Element("testcase", classname=f"leaderboard.{report.tier}", name="tier")
    for problem in rest:
        ET.SubElement(case, "failure", message=problem, type="problem").text = problem
    cases.append(case)
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def markdown_page(config: Config, results: dict, chart: str | None = "leaderboard.png") -> str:
    """The docs page of a leaderboard: the config's title and description, each tier's table, notes, tolerances
    with their basis, the chart and the commands."""
    known = registry()
    out = [f"# {config.title}", "",
           f"Written by `ganmetrics leaderboard --update` from `{config.results.name}` (config "
           f"`{config.path.name}`); do not edit by hand.", ""]
    if config.description:
        out += [config.description, ""]
    for name, tier in results.get("tiers", {}).items():
        out += [f"## Tier `{name}`", "", summary(name, tier) + ".", "",
                markdown_table(header(metrics_of(tier)), table_rows(tier)), ""]
        yard = {m: v for e in tier["entries"].values() for m, v in ((e.get("reference") or {})
                                                                     .get("yardsticks") or {}).items()}
        booted = [e["settings"] for e in tier["entries"].values() if e.get("bootstrap")]
        if booted:
            out += [f"In brackets: the {booted[0]['ci']:.0%} percentile interval of a bootstrap of "
                    f"{booted[0]['bootstrap']} replicates, each resampling the generated features (and the "
                    "reference's, where kept) with replacement; the check judges the number itself.", ""]
        if yard:
            out += ["The reference images' own values (yardsticks): " + ", ".join(
                f"{known[m].label or known[m].title} {cell(m, v)}" for m, v in yard.items()) + ".", ""]
        if tier.get("note"):
            out += [tier["note"], ""]
        if tier.get("samples"):
            out += [f"The check scores the uint8 images stored in `{tier['samples']['file']}`, after checking that "
                    "the images made now equal them to within float32 rounding (at most a fraction "
                    f"{tier.get('max_drift_fraction', 1e-3):g} of the values one level apart): the numbers see "
                    "the same images on every machine; images that changed beyond that are scored as made.", ""]
        tolerances = next(iter(tier["entries"].values()))["tolerances"] if tier["entries"] else {}
        out += ["Tolerances (absolute; a change within one is the same number):", ""]
        out += [f"- {known[m].label or known[m].title}: {value:.3g}. {tier.get('tolerance_basis', {}).get(m, '')}"
                for m, value in tolerances.items()]
        out += [""]
    if chart and results.get("tiers"):
        out += ["## Chart", "", f"![leaderboard chart]({chart})", ""]
    out += ["## Commands", "", "```bash",
            "ganmetrics leaderboard                  # print the stored tables (--json: the results file)",
            "ganmetrics leaderboard --check          # rescore the first tier; exit 1 naming each regression",
            "ganmetrics leaderboard --update --tier T  # rescore and rewrite (deliberately; never in CI)",
            "```", "",
            "A failed check names each entry and metric (`dcgan FID: stored …, now … : worse by …`) and exits 1. "
            "If the change was meant — a new checkpoint, a deliberate fix of a metric — rescore with `--update`, "
            "review the diff of the results file and commit it with the reason; otherwise the failure is the "
            "regression to fix. Checks for your own models: [Leaderboard checks in your CI](leaderboard-ci.md).", ""]
    return "\n".join(out)


def chart_png(results: dict) -> bytes:
    """One bar chart per metric: the entries, one bar per tier (the reference's yardstick as a dashed line)."""
    plt = pyplot("the leaderboard chart")
    known = registry()
    tiers = list(results["tiers"].items())
    metrics = list(dict.fromkeys(m for _, tier in tiers for m in metrics_of(tier)))
    entries = list(dict.fromkeys(e for _, tier in tiers for e in tier["entries"]))
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    width = 0.8 / max(1, len(tiers))
    for ax, metric in zip(axes.flat, metrics):
        for k, (name, tier) in enumerate(tiers):
            have = [e for e in entries if e in tier["entries"] and metric in tier["entries"][e]["scores"]]
            xs = [entries.index(e) + (k - (len(tiers) - 1) / 2) * width for e in have]
            ys = [known[metric].headline(tier["entries"][e]["scores"][metric]) for e in have]
            bars = ax.bar(xs, ys, width, label=f"{name} ({tier['entries'][have[0]]['settings']['num_samples']:,} "
                                               "samples)" if have else name)
            yard = [((tier["entries"][e].get("reference") or {}).get("yardsticks") or {}).get(metric) for e in have]
            if have and yard[0] is not None:
                ax.axhline(known[metric].headline(yard[0]), color=bars.patches[0].get_facecolor(), linestyle="--",
                           linewidth=1, label=f"reference ({name})")
        arrow = {LOWER: " (lower is better)", HIGHER: " (higher is better)"}.get(known[metric].direction, "")
        ax.set_title(f"{known[metric].label or known[metric].title}{arrow}", fontsize=9)
        ax.set_xticks(range(len(entries)), entries, rotation=45, ha="right")
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return figure_png(fig)


def write_docs(config: Config, results: dict, docs: Path) -> list[Path]:
    """Write ``docs/<results stem>.md`` and its chart ``.png`` (atomically); return their paths."""
    page, chart = docs / f"{config.results.stem}.md", docs / f"{config.results.stem}.png"
    with atomic_write(chart) as handle:
        handle.write(chart_png(results))
    with atomic_write(page, "w") as handle:
        handle.write(markdown_page(config, results, chart=chart.name))
    return [page, chart]


__all__ = ["chart_png", "check_markdown", "format_results", "junit_xml", "markdown_page", "table_rows",
           "write_docs"]
