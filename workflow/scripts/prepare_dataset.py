"""Rule prepare_<name>: write <data.root>/<name>/ from the configured source (lejepa.data.prepare)."""

import logging
import sys
from pathlib import Path

from lejepa.data import prepare

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

# Everything the job prints, warnings and a traceback included, goes to its log file.
sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
logging.captureWarnings(True)
log = logging.getLogger("prepare_dataset")

dataset = snakemake.params.dataset
settings = dict(snakemake.params.settings)
out_dir = Path(snakemake.output.meta).parent.parent
log.info("preparing %s into %s with %s, %d worker(s)", dataset, out_dir, settings, snakemake.threads)
try:
    prepare(dataset, out_dir=out_dir, workers=snakemake.threads, **settings)
except Exception as error:
    # The reason belongs on the terminal too, not only in the log.
    print(f"prepare_{dataset} failed: {error}", file=sys.__stderr__)
    raise
