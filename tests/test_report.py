"""``ganmetrics report``: the HTML page's numbers, images, provenance and command, and the page in a real
headless Chromium (skipped, saying why, only where no Chromium can be found)."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from browser import INSTALL_HINT, Browser, find_chromium
from PIL import Image

from ganmetrics import evaluate
from ganmetrics.cli import build_parser, main, report_settings
from ganmetrics.errors import InputError
from ganmetrics.html_report import ReportSettings, nice_step, render_html, report, reproduce_command
from ganmetrics.plots import first_images, image_grid

# Small sets keep Inception to 40 images a pass; subsets and pairs sized to them.
SMALL = ["--kid-subset-size", "10", "--kid-subsets", "20", "--ms-ssim-pairs", "10", "--grid-images", "16"]


def embedded_result(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="ganmetrics-result">(.*?)</script>', page, re.S)
    assert found, "the page embeds its numbers as JSON"
    return json.loads(found.group(1).replace("<\\/", "</"))


def inlined_images(page: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.fixture(scope="module")
def cli_report(image_folders, offline_weights, tmp_path_factory) -> tuple[Path, dict, str]:
    """``ganmetrics report blobs shapes`` with every metric (IS: feature-only weights, so left out)."""
    shapes, blobs = image_folders
    output = tmp_path_factory.mktemp("report") / "report.html"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["report", str(blobs), str(shapes), "-o", str(output), "--json", "--no-progress",
                     "--weights", str(offline_weights), *SMALL])
    assert code == 0
    return output, json.loads(printed.getvalue()), output.read_text(encoding="utf-8")


def test_report_numbers_are_those_of_evaluate_with_the_same_settings(cli_report, image_folders, offline_weights):
    _, printed, page = cli_report
    shapes, blobs = image_folders
    expected = evaluate(str(blobs), str(shapes), ("fid", "kid", "swd", "ms_ssim"), weights=str(offline_weights),
                        kid_subset_size=10, kid_subsets=20, ms_ssim_num_pairs=10, progress=False)
    results = printed["results"]
    assert results["fid"] == pytest.approx(expected["fid"], rel=1e-12)
    assert results["kid"] == pytest.approx(expected["kid"], rel=1e-12)
    assert results["ms_ssim"] == pytest.approx(expected["ms_ssim"], rel=1e-12)
    assert results["swd"]["avg"] == pytest.approx(expected["swd"]["avg"], rel=1e-12)
    assert results["num_samples"] == [20, 20]
    assert embedded_result(page)["results"] == results  # what the page embeds is what --json printed
    # the metrics table shows the values as printed
    assert f'{expected["fid"]:.6f}' in page and f'{expected["swd"]["avg"]:.4f}' in page
    for resolution, value in expected["swd"]["levels"].items():
        assert f"<td>{resolution}×{resolution}</td><td class=\"value\">{value:.4f}</td>" in page


def test_report_says_why_a_metric_is_left_out(cli_report):
    _, printed, page = cli_report
    assert "is" not in printed["results"]
    assert "no classifier layer" in printed["left_out"]["is"]
    assert re.search(r'<tr id="metric-is" class="left-out">.*?not computed.*?no classifier layer', page, re.S)
    assert printed["weights"]["classifier"] is False


def test_report_is_self_contained(cli_report):
    _, _, page = cli_report
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(ref.startswith("data:image/png;base64,") for ref in references), references
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_report_grids_are_the_first_images_pixel_for_pixel(cli_report, image_folders):
    _, _, page = cli_report
    shapes, blobs = image_folders
    images = inlined_images(page)
    assert len(images) == 2  # grid of A, grid of B
    assert np.array_equal(images[0], image_grid(first_images(str(blobs), 16), padding=2))
    assert np.array_equal(images[1], image_grid(first_images(str(shapes), 16), padding=2))


def test_swd_chart_bars_are_the_levels_to_scale(cli_report):
    _, printed, page = cli_report
    bars = re.findall(r'<rect class="bar" data-level="(\d+)" data-value="([^"]+)" x="[^"]+" y="([^"]+)" '
                      r'width="[^"]+" height="([^"]+)"', page)
    levels = printed["results"]["swd"]["levels"]
    assert [(level, float(value)) for level, value, _, _ in bars] == [(k, v) for k, v in levels.items()]
    heights = np.array([float(h) for *_, h in bars])
    values = np.array(list(levels.values()))
    assert np.allclose(heights / heights.max(), values / values.max(), atol=2e-3)  # drawn to scale (0.1 px rounding)


def test_reproduce_command_parses_back_to_the_same_settings(tmp_path):
    settings = ReportSettings.of(metrics="kid,FID", protocol="clean", seed=3, num_samples=100, swd_num_images=64,
                              grid_images=9, strict=False, weights=str(tmp_path / "w.pth"))
    command = reproduce_command(str(tmp_path), "shapes32", "r.html", settings, title="A & 'B'")
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert report_settings(args) == settings and settings.metrics == ("fid", "kid")
    assert (args.a, args.b, args.title) == (str(tmp_path), "shapes32", "A & 'B'")
    assert Path(args.output).is_absolute() and args.output.endswith("r.html")
    defaults = reproduce_command("a", "b", "r.html", ReportSettings())
    assert "--metrics" not in defaults and "--no-strict" not in defaults and "--weights" not in defaults


def test_nice_step_gives_round_ticks():
    assert [nice_step(span) for span in (100, 12, 0.37, 480)] == [20, 5, 0.1, 100]


def test_report_records_protocol_weights_and_environment(cli_report, offline_weights):
    _, printed, page = cli_report
    from ganmetrics.weights import sha256_file

    assert printed["protocol"]["name"] == "tf" and "torch-fidelity" in printed["protocol"]["reproduces"]
    assert printed["weights"]["sha256"] == sha256_file(offline_weights)
    assert printed["weights"]["sha256"] in page and str(offline_weights) in page
    assert printed["environment"]["torch"] in page


def test_report_command_reproduces_the_page(cli_report, tmp_path, capsys):
    output, printed, page = cli_report
    words = shlex.split(printed["command"])
    assert words[:2] == ["ganmetrics", "report"] and words[words.index("-o") + 1] == str(output.resolve())
    assert all(Path(word).is_absolute() for word in words[2:4])  # runs from any folder
    words[words.index("-o") + 1] = str(tmp_path / "again.html")
    assert main([*words[1:], "--no-progress"]) == 0
    again = embedded_result((tmp_path / "again.html").read_text(encoding="utf-8"))
    assert again["results"]["fid"] == pytest.approx(printed["results"]["fid"], rel=1e-12)
    assert again["results"]["kid"] == pytest.approx(printed["results"]["kid"], rel=1e-12)
    assert again["results"]["swd"]["levels"] == pytest.approx(printed["results"]["swd"]["levels"], rel=1e-12)
    assert again["settings"] == printed["settings"]
    assert html.escape(printed["command"]) in page


def test_report_against_statistics_shows_what_it_can(image_folders, offline_weights, tmp_path):
    shapes, _ = image_folders
    data = report(str(shapes), "shapes32", tmp_path / "r.html", weights=str(offline_weights), progress=False,
                  grid_images=4)
    assert set(data["results"]) >= {"fid", "ms_ssim"} and "swd" not in data["results"]
    assert "statistics" in data["left_out"]["swd"]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert len(inlined_images(page)) == 1 and 'id="swd-chart"' not in page  # A's grid only: B has no images
    assert any("no images to show" in note for note in data["notes"])


def test_report_from_python_objects_says_no_command_reproduces_it(offline_weights, tmp_path):
    from ganmetrics.data.synthetic import render_images

    gen, real = render_images("blobs", 6, seed=3), render_images("shapes", 6, seed=4)
    data = report(gen, real, tmp_path / "r.html", settings=ReportSettings(metrics=("fid",), grid_images=6,
                                                                          weights=str(offline_weights)),
                  progress=False, title="arrays")
    assert data["command"] is None and set(data["left_out"]) == set()
    assert data["gen"].startswith("ndarray[6, 32, 32, 3]")
    assert "no command line reproduces it" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_report_cli_errors_name_the_input_and_write_nothing(image_folders, offline_weights, tmp_path, capsys):
    shapes, _ = image_folders
    output = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "missing"), str(shapes), "-o", str(output), "--no-progress"]) == 2
    assert "missing" in capsys.readouterr().err and not output.exists()
    # IS asked for by name with feature-only weights: an error that says how to get the full weights
    assert main(["report", str(shapes), str(shapes), "-o", str(output), "--metrics", "is", "--no-progress",
                 "--weights", str(offline_weights)]) == 2
    assert "classifier" in capsys.readouterr().err and not output.exists()


def test_render_html_escapes_what_it_shows(cli_report):
    _, printed, page = cli_report
    data = {**printed, "title": "<script>alert(1)</script>", "notes": ["a & b < c"],
            "grids": {"gen": None, "real": None}}
    html_page = render_html(data)
    assert "<script>alert(1)</script>" not in html_page and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_page
    assert "a &amp; b &lt; c" in html_page


# --- in a real browser -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"no Chromium on this machine: {INSTALL_HINT}")
    return executable


def test_report_opens_in_chromium_without_console_errors_and_shows_the_metrics_table(chromium, cli_report,
                                                                                     tmp_path):
    output, printed, _ = cli_report
    with Browser(chromium, width=1200, height=1500) as browser:
        browser.open(output)
        assert browser.console_problems() == []
        table = browser.evaluate("""(() => {
            const t = document.getElementById('metrics'), r = t.getBoundingClientRect();
            return {x: r.x, y: r.y, width: r.width, height: r.height, text: t.innerText,
                    fid: document.querySelector('#metric-fid td.value').innerText,
                    images: Array.from(document.images).map(i => i.complete && i.naturalWidth > 0),
                    chart: document.getElementById('swd-chart').getBoundingClientRect().width};
        })()""")
        shot = np.asarray(Image.open(io.BytesIO(browser.screenshot())).convert("L"))
    assert table["fid"] == f"{printed['results']['fid']:.6f}"
    assert all(table["images"]) and len(table["images"]) == 2  # both grids decoded
    assert table["chart"] > 300  # the SVG chart is laid out
    assert "KID" in table["text"] and "MS-SSIM" in table["text"] and "not computed" in table["text"]
    # the screenshot shows the table: it lies inside the viewport and its region holds dark text on white
    assert 0 <= table["y"] and table["y"] + table["height"] <= shot.shape[0] and table["width"] > 600
    region = shot[int(table["y"]):int(table["y"] + table["height"]), int(table["x"]):int(table["x"] + table["width"])]
    assert (region < 100).mean() > 0.01 and (region > 200).mean() > 0.5
    Image.fromarray(shot).save(tmp_path / "screenshot.png")


def test_chromium_console_check_catches_errors_and_blocked_loads(chromium, tmp_path):
    """The check above can fail: a script error and a load the page's CSP blocks are both reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                    "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                    "<img src=\"https://example.invalid/x.png\"><script>console.error('boom'); undefinedCall();"
                    "</script></body></html>", encoding="utf-8")
    with Browser(chromium) as browser:
        browser.open(page)
        problems = browser.console_problems()
    assert any("boom" in p for p in problems), problems
    assert any("undefinedCall" in p for p in problems), problems
    assert any("Content Security Policy" in p for p in problems), problems


def test_reproduce_command_carries_every_metric_option_or_none():
    settings = ReportSettings.of(kid_subsets=7, pr_k=4, dc_k=2)
    args = build_parser().parse_args(shlex.split(reproduce_command("a", "b", "r.html", settings))[1:])
    assert report_settings(args) == settings
    # is_shuffle has no command-line flag: no command would make this report again
    assert reproduce_command("a", "b", "r.html", ReportSettings.of(is_shuffle=False)) is None
    with pytest.raises(InputError, match="unknown option.*kid_subset\\b"):
        ReportSettings.of(kid_subset=7)
