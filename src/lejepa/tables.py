"""The paper's tables beside ours: the numbers quoted from the paper and the assembly
of ``tables/tableN.csv`` (the data) and ``tables/tableN.md`` (rendered for reading).

Table 6 (paper, appendix): time in milliseconds of one SIGReg forward + backward pass
for a mini-batch of N embeddings, M slices and a number of integration points, mean
and standard deviation over 10 runs on a Tesla V100-SXM2-16GB. The paper does not
state the embedding dimension D; our grid says which D we used.
"""

from __future__ import annotations

import math
import platform
import os
import subprocess
from pathlib import Path

import pandas as pd

from lejepa.io import write_csv, write_text

PAPER_TABLE6_DEVICE = "Tesla V100-SXM2-16GB"

# (N, M, knots) -> (mean ms, std ms), the paper's table 6.
PAPER_TABLE6 = {
    (512, 512, 16): (0.465236, 0.011642),
    (512, 512, 64): (0.461317, 0.003894),
    (512, 512, 256): (0.627644, 0.003337),
    (2048, 512, 16): (1.406441, 0.002415),
    (8192, 512, 16): (6.188304, 0.007226),
    (8192, 8192, 16): (8.685009, 0.038829),
    (32768, 512, 16): (26.373118, 0.012732),
    (512, 2048, 16): (0.465614, 0.005274),
    (512, 8192, 16): (0.670379, 0.006854),
}

TABLE6_COLUMNS = [
    "N",
    "M",
    "knots",
    "D",
    "mean_ms",
    "std_ms",
    "repeats",
    "peak_mem_mb",
    "device",
    "impl",
    "paper_mean_ms",
    "paper_std_ms",
    "paper_device",
    "commit",
    "torch_version",
]


def git_commit(directory: str | Path = ".") -> str:
    """Short hash of HEAD, with ``-dirty`` if tracked files changed; ``unknown`` outside git.

    ``LEJEPA_COMMIT`` in the environment takes precedence, for copies of the tree that
    have no .git (a cluster's scratch copy, say).
    """
    if os.environ.get("LEJEPA_COMMIT"):
        return os.environ["LEJEPA_COMMIT"]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def device_name(device: str, *, threads: int | None = None) -> str:
    """Readable name of a torch device: the GPU model, or the CPU model and thread count."""
    if device.startswith("cuda"):
        import torch

        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    model = _cpu_model()
    if threads:
        model += f", {threads} thread" + ("s" if threads > 1 else "")
    return f"cpu: {model}"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def table6_frame(
    measurements: list[dict],
    *,
    device: str,
    impl: str,
    repeats: int,
    commit: str,
    torch_version: str,
) -> pd.DataFrame:
    """One row per grid point: our timing beside the paper's (NaN where the paper has no such row).

    ``measurements``: dicts with keys n, m, knots, d (the grid row) and mean_ms, std_ms,
    peak_mem_mb (``lejepa.timing.time_sigreg``'s result).
    """
    rows = []
    for row in measurements:
        missing = {"n", "m", "knots", "d", "mean_ms", "std_ms", "peak_mem_mb"} - set(row)
        if missing:
            raise ValueError(f"table 6 measurement {row} lacks {sorted(missing)}")
        paper_mean, paper_std = PAPER_TABLE6.get((row["n"], row["m"], row["knots"]), (math.nan, math.nan))
        rows.append(
            {
                "N": row["n"],
                "M": row["m"],
                "knots": row["knots"],
                "D": row["d"],
                "mean_ms": row["mean_ms"],
                "std_ms": row["std_ms"],
                "repeats": repeats,
                "peak_mem_mb": row["peak_mem_mb"],
                "device": device,
                "impl": impl,
                "paper_mean_ms": paper_mean,
                "paper_std_ms": paper_std,
                "paper_device": PAPER_TABLE6_DEVICE,
                "commit": commit,
                "torch_version": torch_version,
            }
        )
    return pd.DataFrame(rows, columns=TABLE6_COLUMNS)


def table6_markdown(frame: pd.DataFrame) -> str:
    """Render table 6 as markdown, ours beside the paper's, with the devices in the header."""
    first = frame.iloc[0]
    lines = [
        "# Table 6: time of one SIGReg forward + backward pass (ms)",
        "",
        f"Ours: {first['device']}, torch {first['torch_version']}, implementation "
        f"{first['impl']!r}, mean and std over {first['repeats']} timed runs, commit {first['commit']}.",
        f"Paper: {PAPER_TABLE6_DEVICE}, mean and std over 10 runs (the paper does not state D).",
        "",
        "| N | M | knots | D | ours mean (ms) | ours std (ms) | peak memory (MB) "
        "| paper mean (ms) | paper std (ms) | ours / paper |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in frame.itertuples(index=False):
        ratio = row.mean_ms / row.paper_mean_ms
        cells = [
            f"{row.N}",
            f"{row.M}",
            f"{row.knots}",
            f"{row.D}",
            _number(row.mean_ms),
            _number(row.std_ms),
            _number(row.peak_mem_mb, digits=1),
            _number(row.paper_mean_ms),
            _number(row.paper_std_ms),
            _number(ratio, digits=2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: float, *, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def write_table6(frame: pd.DataFrame, *, csv_path: str | Path, md_path: str | Path) -> None:
    """Write tables/table6.csv and tables/table6.md, each atomically."""
    write_csv(frame, csv_path)
    write_text(table6_markdown(frame), md_path)
