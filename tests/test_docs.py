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
    for example in ("leaderboard.png", "report-example.png"):
        assert (tmp_path / "site" / example).is_file(), example


def first_bash_block(page: str, heading: str) -> list[str]:
    """The commands of the first ```bash block under ``heading`` (comments and blank lines dropped)."""
    section = page.split(heading, 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_getting_started_first_fid_works_as_written_and_is_correct(image_folders, peer_weights_file, tmp_path):
    """A new user follows docs/getting-started.md §2 literally on two folders of their images: the command
    runs from a shell and prints the FID torch-fidelity gives for the same folders (protocol tf)."""
    import shutil

    from peers import import_peer

    commands = first_bash_block((REPO / "docs" / "getting-started.md").read_text(), "## 2. Your first FID")
    assert commands == ["ganmetrics fid generated/ real/"]
    shapes, blobs = image_folders
    shutil.copytree(blobs, tmp_path / "generated")
    shutil.copytree(shapes, tmp_path / "real")
    result = subprocess.run(commands[0].split(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("FID: ")
    printed = float(result.stdout.split()[1])
    theirs = import_peer("torch_fidelity").calculate_metrics(
        input1=str(tmp_path / "generated"), input2=str(tmp_path / "real"), fid=True, cuda=False, cache=False,
        verbose=False, feature_extractor_weights_path=str(peer_weights_file))["frechet_inception_distance"]
    assert abs(printed - theirs) < 1e-3  # the page promises TTUR / torch-fidelity's number
