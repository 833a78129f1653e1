# LeJEPA pretraining: one job per run of config/pretrain.yaml (`pretrain.runs`).
#
#   snakemake --cores all runs/cifar10_resnet18/final.pt
#
# Outputs: runs/<run>/final.pt (written last, only when training has finished) and
# runs/<run>/metrics.csv. runs/<run>/checkpoint.pt is deliberately not an output:
# Snakemake deletes the outputs of a failed or interrupted job, and the checkpoint
# must survive so that rerunning the job resumes where it stopped. The params hold
# only this run's resolved settings, so editing one run (or its scale) reruns only
# the runs concerned; a run whose training settings changed starts afresh.
#
# A preempted, killed or timed-out job is retried (`retries`), and the retry resumes
# from checkpoint.pt, with more time on Slurm (runtime x attempt). final.pt is
# protected (read-only): retraining a finished run means deleting it first.
#
# Processes: a run's resources ask for `nodes` x `gpus` (one process per GPU) or, on CPU,
# `nodes` x `tasks_per_node` processes (config/pretrain.yaml). lejepa.launch.slurm_resources
# turns them into the Slurm plugin's resources (nodes, gres, tasks_per_node / tasks,
# cpus_per_task, mpi); the script starts one srun task per process inside the allocation
# (torchrun --standalone on one machine without Slurm).

from lejepa.launch import slurm_resources


def pretrain_resource(run, key):
    """One Snakemake resource of run's pretraining job (None: not set)."""
    return slurm_resources(pretrain_settings(run)[1])[key]


rule pretrain:
    input:
        meta=lambda wc: dataset_meta(pretrain_settings(wc.run)[0]["dataset"]),
    output:
        final=protected("runs/{run}/final.pt"),
        metrics="runs/{run}/metrics.csv",
    log:
        "logs/pretrain/{run}.log",
    benchmark:
        "benchmarks/pretrain/{run}.tsv"
    wildcard_constraints:
        run="|".join(re.escape(run) for run in PRETRAIN_RUNS) or "(?!)",  # (?!) matches nothing
    retries: RETRIES
    conda:
        "../../environment.yml"
    threads: lambda wc: pretrain_settings(wc.run)[1]["threads"]
    resources:
        mem_mb=lambda wc: pretrain_settings(wc.run)[1]["mem_mb"],
        runtime=lambda wc, attempt: pretrain_settings(wc.run)[1]["runtime"] * attempt,
        nodes=lambda wc: pretrain_resource(wc.run, "nodes"),
        gpu=lambda wc: pretrain_resource(wc.run, "gpu"),
        gres=lambda wc: pretrain_resource(wc.run, "gres"),
        mpi=lambda wc: pretrain_resource(wc.run, "mpi"),
        tasks=lambda wc: pretrain_resource(wc.run, "tasks"),
        tasks_per_node=lambda wc: pretrain_resource(wc.run, "tasks_per_node"),
        tasks_per_gpu=lambda wc: pretrain_resource(wc.run, "tasks_per_gpu"),
        cpus_per_task=lambda wc: pretrain_resource(wc.run, "cpus_per_task"),
        slurm_extra=lambda wc: pretrain_settings(wc.run)[1].get("slurm_extra", ""),
    params:
        settings=lambda wc: pretrain_settings(wc.run)[0],
    script:
        "../scripts/pretrain.py"
