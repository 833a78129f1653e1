# LeJEPA (Balestriero & LeCun, arXiv 2511.08544): the paper's figures and tables that this
# workflow builds today. The README's "What the DAG builds today" says which, at what scale,
# and which are still owed.
#
#   snakemake --cores all                      # the synthetic figures (the default target, `all`)
#   snakemake --cores all figures/fig6.pdf     # one figure
#   snakemake --cores all synthetic            # every target that needs no data and no GPU
#   snakemake --profile slurm synthetic        # the same through Slurm (slurm/config.yaml)
#   snakemake --cores all probes               # pretrain, then probe, the runs of config/probe.yaml
#   snakemake --cores all tables/table2.csv    # a real-data table (config/tables.yaml) at the configured scale
#   snakemake --cores 1 monitor                # each run's curves and results/all.csv
#   snakemake --report report.html             # every figure with its caption
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

# Jobs import lejepa from src/, installed or not: the conda environments of
# `--sdm conda` (workflow/envs/) hold the third-party packages only.
SOURCE_DIR = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SOURCE_DIR)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SOURCE_DIR, os.environ.get("PYTHONPATH")]))
)

from lejepa.config_errors import describe_config_error
from lejepa.sweeps import merge_sweep_runs

min_version("9.0")


configfile: "config/config.yaml"
configfile: "config/data.yaml"
configfile: "config/pretrain.yaml"
configfile: "config/probe.yaml"
configfile: "config/tables.yaml"
configfile: "config/sweeps.yaml"
configfile: "config/segmentation.yaml"


# A misspelt key or an out-of-range value stops the run here, in a few lines naming
# the key, what is allowed and the config file that set it.
try:
    validate(config, schema="workflow/schemas/config.schema.yaml")
except WorkflowError as error:
    sys.exit(describe_config_error(error, workflow.configfiles))

# The sweeps' runs (config/sweeps.yaml: <base>__lam<lambda>__v<views>) join pretrain.runs.
try:
    config["pretrain"]["runs"] = merge_sweep_runs(config["pretrain"], config["sweeps"])
except ValueError as error:
    sys.exit(f"config/sweeps.yaml: {error}")


report: "workflow/report/workflow.rst"


# Bookkeeping rules run where Snakemake runs, never as cluster jobs (so do the
# downloads and the table assembly: `localrule: True` in their rules).
localrules:
    all,
    synthetic,
    probes,
    real_tables,
    monitor,


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/monitor.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/backbones.smk"


# A bare `snakemake --cores all` builds the synthetic figures: minutes on a laptop, no
# data, no GPU. It leaves out table 6 (timings of the machine that ran it: ask for
# tables/table6.csv) and everything that pretrains (probes, real_tables).
rule all:
    default_target: True
    input:
        synthetic_figure_targets(),


rule synthetic:
    input:
        synthetic_targets(),
