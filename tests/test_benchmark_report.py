"""benchmarks/report.py: the table's ratios come from the medians of each group."""

from __future__ import annotations

import json

from benchmarks.report import main, render


def bench(group, name, median, extra=None):
    return {"group": group, "name": f"test_x[{name}]", "params": {"name": name},
            "stats": {"median": median, "min": median * 0.9, "rounds": 3}, "extra_info": extra or {}}


def test_ratios_and_extras(tmp_path):
    data = {"machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}, "python_version": "3.11"},
            "datetime": "2026-11-23", "benchmarks": [
                bench("frechet", "pytorch-fid", 10.0, {"fd": 1.5}),
                bench("frechet", "ganmetrics", 0.5, {"fd": 1.5}),
                bench("throughput", "ganmetrics", 2.0, {"images_per_second": 16.0}),
                bench("throughput", "torch-fidelity", 3.0, {"images_per_second": 10.7})]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    text = render([path])
    assert "Test CPU, 2 logical cores" in text
    assert "| pytorch-fid | 10.00 s | 9.00 s | 3 | 20.00× | 1.5 |" in text
    assert "| ganmetrics | 500.0 ms | 450.0 ms | 3 | 1.00× | 1.5 |" in text
    assert "| torch-fidelity | 3.00 s | 2.70 s | 3 | 1.50× | 10.7 |" in text
    out = tmp_path / "README.md"
    assert main([str(path), "-o", str(out)]) == 0 and out.read_text() == text
