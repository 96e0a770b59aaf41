"""Write the benchmark table (benchmarks/README.md) from a pytest-benchmark JSON file.

    python -m pytest benchmarks/ --benchmark-only --benchmark-json=benchmarks/results-cpu.json --ignore=benchmarks/test_bench_manifold.py
    python -m benchmarks.report benchmarks/results-cpu.json [more.json ...] -o benchmarks/README.md

Every suite parametrises its test by implementation ("ganmetrics", then the peers) inside one
``benchmark.group``; the ratio column is each row's median time over the ganmetrics median of
the same group and file (> 1: ganmetrics is faster).  Selected ``extra_info`` values (images/s,
peak memory, the metric value) are shown beside the times.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

REFERENCE = "ganmetrics"
EXTRA_COLUMNS = {
    "images_per_second": "img/s",
    "kimg_per_second": "kimg/s",
    "start_seconds": "start s",
    "compute_seconds": "metric s",
    "peak_rss_mb": "peak RSS MB",
    "accumulation_mb": "added MB",
    "fid": "FID",
    "fd": "value",
    "value": "value",
}
HEADER = """# Benchmarks

ganmetrics side by side with the peers, each suite in one pytest run on the same inputs
(`benchmarks/test_bench_*.py`). **ratio** = the row's median time / ganmetrics's median in the
same group (> 1: ganmetrics is faster). Regenerate with:

```bash
python -m pytest benchmarks/ --benchmark-only --benchmark-json=benchmarks/results-cpu.json --ignore=benchmarks/test_bench_manifold.py --ignore=benchmarks/test_bench_uncertainty.py --ignore=benchmarks/test_bench_dinov2.py
python -m pytest benchmarks/test_bench_manifold.py --benchmark-only --benchmark-json=benchmarks/results-manifold.json
python -m pytest benchmarks/test_bench_uncertainty.py --benchmark-only --benchmark-json=benchmarks/results-uncertainty.json
python -m pytest benchmarks/test_bench_dinov2.py --benchmark-only --benchmark-json=benchmarks/results-extractors.json
python -m benchmarks.report benchmarks/results-cpu.json benchmarks/results-train.json benchmarks/results-manifold.json benchmarks/results-uncertainty.json benchmarks/results-extractors.json -o benchmarks/README.md
```

In the groups without a peer (FD∞ and the bootstrap) the ratio is to the group's first row, one plain FID of the
same features.

Training throughput of the zoo's models (seconds per iteration; the variants of each model side by side, with
"before" the trainer of an earlier revision) comes from `python -m benchmarks.train_throughput --baseline REV -o
benchmarks/results-train.json`; pass that file to the report after the CPU file.

On a CUDA machine, `bash benchmarks/run_gpu.sh OUT` runs the CUDA tests and the same suites with
`--bench-device cuda` (all libraries in float32 with TF32 off; the end-to-end folders at the full
1,000 + 1,000 and 500 + 500 PNGs) and writes `OUT/results-gpu.json`; pass it to the report after
the CPU file to add its section.
"""


def implementation(bench: dict) -> str:
    """The implementation a row measures: its ``name`` parameter, else the bracketed test id."""
    params = bench.get("params") or {}
    if "name" in params:
        return str(params["name"])
    match = re.search(r"\[(.*)\]$", bench["name"])
    return match.group(1) if match else bench["name"]


def machine_line(data: dict) -> str:
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {})
    parts = [cpu.get("brand_raw") or info.get("processor") or "unknown CPU",
             f"{cpu.get('count', '?')} logical cores", f"{info.get('system', '')} {info.get('release', '')}".strip(),
             f"Python {info.get('python_version', '?')}"]
    extra = data.get("ganmetrics_environment")
    if extra:
        parts.append(extra)
    return ", ".join(p for p in parts if p)


def _format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _format_extra(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def group_table(rows: list[dict]) -> list[str]:
    """Markdown lines of one group: implementation, median, min, ratio and extra columns."""
    # ganmetrics's row; in a group without peers (FD∞, the bootstrap), its first row: the baseline it runs first
    reference = next((r for r in rows if implementation(r) == REFERENCE), rows[0] if rows else None)
    extras = [key for key in EXTRA_COLUMNS if any(key in r.get("extra_info", {}) for r in rows)]
    header = ["implementation", "median", "min", "rounds", "ratio"] + [EXTRA_COLUMNS[k] for k in extras]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=lambda r: (r is not reference, r["stats"]["median"])):
        stats = row["stats"]
        ratio = f"{stats['median'] / reference['stats']['median']:.2f}×" if reference else "—"
        cells = [implementation(row), _format_seconds(stats["median"]), _format_seconds(stats["min"]),
                 str(stats["rounds"]), ratio]
        cells += [_format_extra(row.get("extra_info", {}).get(k, "")) for k in extras]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(files: list[Path]) -> str:
    """The whole README: a section per JSON file (one machine/device each), a table per group."""
    out = [HEADER]
    for path in files:
        data = json.loads(path.read_text())
        out.append(f"## {path.name}\n")
        out.append(f"Machine: {machine_line(data)}; run {data.get('datetime', '?')}.\n")
        groups: dict[str, list[dict]] = defaultdict(list)
        for bench in data.get("benchmarks", []):
            groups[bench.get("group") or bench["name"]].append(bench)
        for group in sorted(groups):
            out.append(f"### {group}\n")
            out.extend(group_table(groups[group]))
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark JSON files")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = render(args.json)
    if args.output is None:
        print(text, end="")
    else:
        from ganmetrics.atomic import atomic_write

        with atomic_write(args.output, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
