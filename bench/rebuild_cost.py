"""What each real-data target costs to rebuild at the configured scale from a fresh clone,
from the jobs Snakemake plans for it (a dry run with --forceall) and the benchmark files of
the jobs that ran on this machine.

    python bench/rebuild_cost.py [--benchmarks benchmarks ...] [--gpu-benchmarks DIR ...]
        [--out bench/results/rebuild_cost]

Writes <out>.csv (one row per target) and <out>.md (the lines README.md quotes), with the
commit. Hours are sums over the timed jobs, as run here (2 CPU cores, often shared with
other jobs, so an upper bound of an idle machine's time). A job that has a `benchmark:`
directive but no file here (a run never made on this machine) is counted as unmeasured,
unless --gpu-benchmarks holds its file: then it counts in the GPU columns (jobs and wall
minutes on a GPU machine), apart from this machine's hours.
"""

import argparse
import subprocess
from pathlib import Path

import pandas as pd

from lejepa.costs import dry_run_jobs, rebuild_cost
from lejepa.io import write_csv, write_text
from lejepa.tables import git_commit

TARGETS = {
    "tables 2, 3, 5 and figure 12": ["tables/table2.csv", "tables/table3.csv", "tables/table5.csv",
                                     "figures/fig12.pdf"],
    "table 7, figures 8, 1 (top), 10, 11, 19, 21": ["sweeps"],
    "table 1": ["tables/table1.csv"],
    "table 4, figure 9": ["tables/table4.csv", "figures/fig9.pdf"],
    "figures 13, 14, 1 (bottom left)": ["figures/fig14.pdf"],
}


def planned_jobs(targets: list[str]) -> list[dict]:
    command = ["snakemake", *targets, "-n", "--forceall"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return dry_run_jobs(result.stdout)


def markdown(frame: pd.DataFrame, commit: str) -> str:
    lines = [
        f"Rebuild cost at the `small` scale on this 2-core CPU machine (bench/rebuild_cost.py, commit {commit}):",
        "",
        "| target | jobs | timed | not timed here | wall hours | CPU hours | timed on a GPU | GPU job-minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in frame.itertuples(index=False):
        lines.append(
            f"| {row.target} | {row.jobs} | {row.timed_jobs} | {row.unmeasured_jobs} "
            f"| {row.wall_h:.2f} | {row.cpu_h:.2f} | {row.gpu_timed_jobs} | {row.gpu_wall_min:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=["benchmarks"],
                        help="directories that stand for benchmarks/ (e.g. another checkout's)")  # fmt: skip
    parser.add_argument("--gpu-benchmarks", nargs="*", default=[],
                        help="the same, for benchmark files brought back from a GPU machine")  # fmt: skip
    parser.add_argument("--out", default="bench/results/rebuild_cost")
    args = parser.parse_args()
    rows = []
    for name, targets in TARGETS.items():
        cost = rebuild_cost(planned_jobs(targets), benchmark_roots=args.benchmarks, gpu_roots=args.gpu_benchmarks)
        print(f"{name}: {cost['jobs']} jobs, {cost['timed_jobs']} timed, {cost['wall_h']:.2f} wall h; "
              f"{cost['unmeasured_jobs']} not timed here, e.g. {cost['unmeasured'][:2]}")  # fmt: skip
        rows.append({"target": name, "snakemake_targets": " ".join(targets),
                     **{key: value for key, value in cost.items() if key != "unmeasured"}})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["commit"] = commit = git_commit()
    write_csv(frame, Path(f"{args.out}.csv"))
    write_text(markdown(frame, commit), Path(f"{args.out}.md"))
    print(markdown(frame, commit))


if __name__ == "__main__":
    main()
