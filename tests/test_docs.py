"""The documentation site: it builds with `mkdocs build --strict` (broken links, missing pages and
unresolvable API references fail), and its generated pages match the code they describe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ganmetrics.cli import reference_markdown

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_page_is_generated_from_the_parser():
    page = (REPO / "docs" / "cli.md").read_text()
    assert page == reference_markdown(), "regenerate: python -m ganmetrics.cli --markdown > docs/cli.md"


def test_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("ganmetrics.fid", "ganmetrics.evaluate.evaluate", "ganmetrics.FID.update", "ganmetrics.zoo.load"):
        assert f'id="{name}"' in api, f"{name} missing from the API reference"
    assert (tmp_path / "site" / "leaderboard.png").is_file()
