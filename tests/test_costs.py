"""lejepa.costs: the jobs of a dry-run printout and the sum of their benchmark files."""

import pytest

from lejepa.costs import dry_run_jobs, rebuild_cost

DRY_RUN = """Building DAG of jobs...
Job stats:
job        count
rule prepare_cifar10:
    output: data/cifar10/meta.json
    jobid: 3
localrule real_table:
    input: results/a/linear/cifar10.json
rule pretrain:
    output: runs/a/final.pt
    log: logs/pretrain/a.log
    benchmark: benchmarks/pretrain/a.tsv
    threads: 2
rule pretrain:
    benchmark: benchmarks/pretrain/b.tsv
rule probe:
    benchmark: benchmarks/probe/a/linear/cifar10.tsv
"""

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_dry_run_jobs_keeps_every_job_and_its_benchmark():
    jobs = dry_run_jobs(DRY_RUN)
    assert [job["rule"] for job in jobs] == ["prepare_cifar10", "real_table", "pretrain", "pretrain", "probe"]
    assert [job["benchmark"] for job in jobs] == [
        None, None, "benchmarks/pretrain/a.tsv", "benchmarks/pretrain/b.tsv", "benchmarks/probe/a/linear/cifar10.tsv",
    ]  # fmt: skip


def test_rebuild_cost_sums_the_files_found_under_any_root_and_counts_the_rest(tmp_path):
    first, second = tmp_path / "here", tmp_path / "elsewhere"
    (first / "pretrain").mkdir(parents=True)
    (second / "probe" / "a" / "linear").mkdir(parents=True)
    (first / "pretrain" / "a.tsv").write_text(HEADER + "3600\t1:00:00\t1\t1\t1\t1\t0\t0\t90\t5400\n")
    # two measurement rows (Snakemake's `repeat`): their mean counts
    (second / "probe" / "a" / "linear" / "cifar10.tsv").write_text(
        HEADER + "100\t0:01:40\t1\t1\t1\t1\t0\t0\t90\t150\n" + "300\t0:05:00\t1\t1\t1\t1\t0\t0\t90\t250\n"
    )
    cost = rebuild_cost(dry_run_jobs(DRY_RUN), benchmark_roots=[first, second])
    assert (cost["jobs"], cost["timed_jobs"], cost["unmeasured_jobs"]) == (5, 2, 1)
    assert cost["unmeasured"] == ["benchmarks/pretrain/b.tsv"]
    assert cost["wall_h"] == pytest.approx((3600 + 200) / 3600)
    assert cost["cpu_h"] == pytest.approx((5400 + 200) / 3600)




def test_jobs_timed_only_on_a_gpu_machine_count_apart_in_gpu_minutes(tmp_path):
    here, gpu = tmp_path / "here", tmp_path / "gpu"
    (here / "pretrain").mkdir(parents=True)
    (gpu / "pretrain").mkdir(parents=True)
    (here / "pretrain" / "a.tsv").write_text(HEADER + "3600\t1:00:00\t1\t1\t1\t1\t0\t0\t90\t5400\n")
    (gpu / "pretrain" / "a.tsv").write_text(HEADER + "60\t0:01:00\t1\t1\t1\t1\t0\t0\t90\t60\n")  # ignored: timed here
    (gpu / "pretrain" / "b.tsv").write_text(HEADER + "90\t0:01:30\t1\t1\t1\t1\t0\t0\t90\t80\n")
    cost = rebuild_cost(dry_run_jobs(DRY_RUN), benchmark_roots=[here], gpu_roots=[gpu])
    assert (cost["timed_jobs"], cost["gpu_timed_jobs"], cost["unmeasured_jobs"]) == (1, 1, 1)
    assert cost["unmeasured"] == ["benchmarks/probe/a/linear/cifar10.tsv"]
    assert cost["wall_h"] == pytest.approx(1.0) and cost["cpu_h"] == pytest.approx(1.5)
    assert cost["gpu_wall_min"] == pytest.approx(1.5)

def test_readme_rebuild_cost_table_is_the_committed_bench_output():
    """README's rebuild-cost rows are bench/results/rebuild_cost.md's, whose numbers are the CSV's."""
    from pathlib import Path

    import pandas as pd

    repo = Path(__file__).resolve().parents[1]
    frame = pd.read_csv(repo / "bench" / "results" / "rebuild_cost.csv")
    markdown = (repo / "bench" / "results" / "rebuild_cost.md").read_text()
    readme = (repo / "README.md").read_text()
    for row in frame.itertuples(index=False):
        line = (f"| {row.target} | {row.jobs} | {row.timed_jobs} | {row.unmeasured_jobs} "
                f"| {row.wall_h:.2f} | {row.cpu_h:.2f} | {row.gpu_timed_jobs} | {row.gpu_wall_min:.1f} |")  # fmt: skip
        assert line in markdown and line in readme, line
