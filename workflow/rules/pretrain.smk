# LeJEPA pretraining: one job per run of config/pretrain.yaml (`pretrain.runs`).
#
#   snakemake --cores all runs/cifar10_resnet18/final.pt
#
# Outputs: runs/<run>/final.pt (written last, only when training has finished) and
# runs/<run>/metrics.csv. runs/<run>/checkpoint.pt is deliberately not an output:
# Snakemake deletes the outputs of a failed or interrupted job, and the checkpoint
# must survive so that rerunning the job resumes where it stopped. The params hold
# only this run's resolved settings, less those that only say how it executes
# (lejepa.train_config.EXECUTION_KEYS), so editing one run (or its scale) reruns only
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
        "../envs/train.yaml"
    threads: lambda wc: pretrain_settings(wc.run)[1]["threads"]
    resources:
        mem_mb=lambda wc: pretrain_settings(wc.run)[1]["mem_mb"],
        runtime=lambda wc, attempt: pretrain_settings(wc.run)[1]["runtime"] * attempt,
        nodes=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])["nodes"],
        gpu=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])["gpu"],
        gres=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])["gres"],
        mpi=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])["mpi"],
        tasks=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])["tasks"],
        tasks_per_node=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])[
            "tasks_per_node"
        ],
        tasks_per_gpu=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])[
            "tasks_per_gpu"
        ],
        cpus_per_task=lambda wc: slurm_resources(pretrain_settings(wc.run)[1])[
            "cpus_per_task"
        ],
        slurm_extra=lambda wc: pretrain_settings(wc.run)[1].get("slurm_extra", ""),
    params:
        # What the run computes; the script takes the execution keys (device, threads,
        # workers, ...) from the config, so that changing them never plans a finished run again.
        settings=lambda wc: result_settings(pretrain_settings(wc.run)[0]),
    script:
        "../scripts/pretrain.py"
