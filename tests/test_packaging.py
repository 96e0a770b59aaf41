"""What a user installing the wheel gets: every subpackage, the bundled statistics, the leaderboard and the zoo's
checkpoints (the editable install of the tests would find them in the checkout even if the wheel lacked them)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted(find_packages(str(REPO), include=["ganmetrics*"]) + ["ganmetrics.reference_stats"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, capture_output=True)
    (path,) = out.glob("ganmetrics-*.whl")
    return path


def test_wheel_ships_the_statistics_the_leaderboard_and_the_checkpoints(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    stats = json.loads((REPO / "reference_stats" / "manifest.json").read_text())["stats"]
    models = json.loads((REPO / "ganmetrics" / "zoo" / "checkpoints" / "manifest.json").read_text())["models"]
    expected = {"ganmetrics/reference_stats/manifest.json", "ganmetrics/reference_stats/leaderboard.json",
                "ganmetrics/reference_stats/leaderboard.toml", "ganmetrics/reference_stats/leaderboard-ci-samples.npz",
                "ganmetrics/zoo/checkpoints/manifest.json"}
    expected |= {f"ganmetrics/reference_stats/{entry['file']}" for entry in stats}
    expected |= {f"ganmetrics/zoo/checkpoints/{entry['file']}" for entry in models}
    assert expected <= names


def test_installed_wheel_resolves_bundled_names_inside_the_package(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = ("import ganmetrics, ganmetrics.leaderboard as lb; from ganmetrics.reference import reference_path; "
            "print(ganmetrics.__file__); print(reference_path('shapes32')); config = lb.read_config(lb.default_config()); "
            "print(config.results); print([e.name for e in config.tier(None).entries]); print(config.docs)")
    lines = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path,
                           env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    package = Path(lines[0]).parent
    assert package.parent == target
    assert Path(lines[1]) == package / "reference_stats" / "shapes32.npz"
    assert Path(lines[2]) == package / "reference_stats" / "leaderboard.json"
    assert "dcgan" in lines[3] and lines[4] == "None"


def test_the_command_line_is_built_without_the_trainer_or_the_zoo():
    """`ganmetrics fid` and the other metric commands do not import the training loop or the zoo: the train
    subcommand's options come from plain data (ganmetrics.train.config), the loop loads when training starts."""
    code = ("import sys, ganmetrics.cli; ganmetrics.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('ganmetrics.zoo', 'ganmetrics.train.loop'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_metrics_are_leaves():
    """ganmetrics/metrics/ holds math and accumulators: it imports the statistics, errors, device and distributed
    helpers, the Fréchet math and the network's constants — never the sources, the feature pass, evaluate, the
    CLI, the zoo or the trainer (docs/architecture.md)."""
    import ast

    allowed = {"errors", "stats", "distributed", "devices", "frechet", "inception"}
    for path in sorted((REPO / "ganmetrics" / "metrics").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert (node.module or "").split(".")[0] in allowed, f"{path.name} imports ..{node.module}"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ganmetrics"):
                raise AssertionError(f"{path.name} imports {node.module}")
