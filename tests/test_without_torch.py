"""The workflow plans without torch (a cluster's login node may lack it): Snakemake parses the
Snakefile, with every rule file and the lejepa modules they import, and dry-runs a target, in
a process where importing torch, torchvision or timm raises ImportError. Only the jobs import them."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import copy_workflow

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "torchvision", "timm")


def blocking_env(tmp_path: Path) -> dict:
    """PYTHONPATH with packages named torch, torchvision and timm first, each raising ImportError."""
    blocked = tmp_path / "blocked"
    for name in BLOCKED:
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked: a machine without it')\n")
    path = os.pathsep.join([str(blocked), str(REPO / "src")])
    return {**os.environ, "PYTHONPATH": path}


def test_snakemake_plans_figure_6_where_torch_cannot_be_imported(tmp_path):
    env = blocking_env(tmp_path)
    for name in BLOCKED:  # the block holds
        blocked = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert blocked.returncode != 0 and f"ImportError: {name} is blocked" in blocked.stderr
    planning = ["lejepa.config_errors", "lejepa.data", "lejepa.probe_spec", "lejepa.tables", "lejepa.train_config"]
    imported = subprocess.run([sys.executable, "-c", f"import {', '.join(planning)}"], env=env, capture_output=True,
                              text=True)  # fmt: skip
    assert imported.returncode == 0, imported.stderr

    folder = copy_workflow(tmp_path / "workflow_copy")
    command = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "figures/fig6.pdf"]
    planned = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    output = planned.stdout + planned.stderr
    assert planned.returncode == 0, output[-5000:]
    assert "rule synthetic_fig6:" in output and "This was a dry-run" in output, output[-3000:]
