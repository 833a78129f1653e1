"""What a target costs to rebuild from a fresh clone: the jobs of its DAG (from a dry run with
--forceall) and the wall and CPU time each of them took here (from the `benchmark:` files
that Snakemake wrote when it ran them).

    jobs = dry_run_jobs(text_of("snakemake tables/table5.csv -n --forceall"))
    cost = rebuild_cost(jobs, benchmark_roots=["benchmarks"])

A job whose rule has no `benchmark:` directive (downloads, table assembly: local rules of
seconds) or whose benchmark file is not on disk (never run here) is counted, not timed. A job
found only under `gpu_roots` (benchmark files brought back from a GPU machine) is timed apart,
in GPU minutes, since its wall time says nothing of a CPU rebuild.
Torch-free: bench/rebuild_cost.py is the CLI that writes bench/results/rebuild_cost.*.
"""

import csv
import re
from pathlib import Path

__all__ = ["dry_run_jobs", "read_benchmark", "rebuild_cost"]

_RULE = re.compile(r"^(?:local)?rule (\w+):")
_BENCHMARK = re.compile(r"^\s+benchmark: (\S+)")


def dry_run_jobs(text: str) -> list[dict]:
    """The jobs of a `snakemake -n` printout: [{"rule", "benchmark" (path or None)}]."""
    jobs = []
    for line in text.splitlines():
        if match := _RULE.match(line):
            jobs.append({"rule": match.group(1), "benchmark": None})
        elif (match := _BENCHMARK.match(line)) and jobs:
            jobs[-1]["benchmark"] = match.group(1)
    return jobs


def read_benchmark(path: str | Path) -> dict:
    """Wall seconds and CPU seconds of one Snakemake benchmark file (the mean over its rows)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: a benchmark file without a measurement row")
    return {
        "wall_s": sum(float(row["s"]) for row in rows) / len(rows),
        "cpu_s": sum(float(row["cpu_time"]) for row in rows) / len(rows),
    }


def _find(relative: str, roots) -> Path | None:
    for root in roots:
        path = Path(root) / Path(relative).relative_to("benchmarks")
        if path.is_file():
            return path
    return None


def rebuild_cost(jobs: list[dict], *, benchmark_roots, gpu_roots=()) -> dict:
    """Sum the measured jobs: counts of jobs, timed jobs and jobs with a benchmark directive but
    no file here (never run here), the wall and CPU hours of those timed on this machine, and
    the count and wall minutes of those timed on a GPU machine.
    benchmark_roots: directories that stand for `benchmarks/` (e.g. another checkout's);
    gpu_roots: the same, for benchmark files written on a GPU machine (looked up last)."""
    timed, unmeasured, wall_s, cpu_s = 0, [], 0.0, 0.0
    gpu_timed, gpu_wall_s = 0, 0.0
    for job in jobs:
        if job["benchmark"] is None:
            continue
        if path := _find(job["benchmark"], benchmark_roots):
            measured = read_benchmark(path)
            timed += 1
            wall_s += measured["wall_s"]
            cpu_s += measured["cpu_s"]
        elif path := _find(job["benchmark"], gpu_roots):
            gpu_timed += 1
            gpu_wall_s += read_benchmark(path)["wall_s"]
        else:
            unmeasured.append(job["benchmark"])
    return {
        "jobs": len(jobs),
        "timed_jobs": timed,
        "unmeasured_jobs": len(unmeasured),
        "unmeasured": unmeasured,
        "wall_h": wall_s / 3600,
        "cpu_h": cpu_s / 3600,
        "gpu_timed_jobs": gpu_timed,
        "gpu_wall_min": gpu_wall_s / 60,
    }
