"""What the README promises a new user, checked on a fresh clone of the tracked files.

A fresh clone has the committed outputs but no `.snakemake/` metadata, so Snakemake
cannot know which code made them: the README says the quick start's first command
recomputes figure 6 (one job), and that a bare `snakemake` builds the synthetic figures
only (no table 6 timings, no pretraining).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The tracked files of the working tree, copied in `git ls-files` order (as a checkout writes them)."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path_factory.mktemp("fresh_clone")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        source = REPO / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, clone / name)
    return clone


def readme_text() -> str:
    """README.md with its line breaks and indentation folded into single spaces."""
    return " ".join((REPO / "README.md").read_text().split())


def dry_run(clone: Path, *targets: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *targets],
        cwd=clone,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return re.findall(r"^(?:local)?rule (\S+):$", result.stdout, flags=re.MULTILINE)


def test_readme_quick_start_recomputes_figure_6_as_one_job(fresh_clone):
    assert "recomputes figure 6: one job" in readme_text()
    assert dry_run(fresh_clone, "figures/fig6.pdf") == ["synthetic_fig6"]


def test_default_target_builds_the_synthetic_figures_only(fresh_clone):
    listed = re.search(r"^SYNTHETIC_FIGURES = \[(.*?)\]", (REPO / "workflow/rules/common.smk").read_text(), re.M | re.S)
    figures = re.findall(r'"(fig\d+)"', listed[1])
    assert len(figures) == 11
    assert sorted(dry_run(fresh_clone)) == sorted([f"synthetic_{figure}" for figure in figures] + ["all"])
    assert "A bare `snakemake --cores all` builds the 11 synthetic figures" in readme_text()
