"""The paper's tables beside ours: the numbers quoted from the paper and the assembly
of ``tables/tableN.csv`` (the data) and ``tables/tableN.md`` (rendered for reading).

Table 6 (paper, appendix): time in milliseconds of one SIGReg forward + backward pass
for a mini-batch of N embeddings, M slices and a number of integration points, mean
and standard deviation over 10 runs on a Tesla V100-SXM2-16GB. The paper does not
state the embedding dimension D; our grid says which D we used.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path

import pandas as pd

from lejepa.io import write_csv, write_text
from lejepa.probe_spec import parse_probe_name

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


GENERATED_FOLDERS = ("tables", "figures", "docs/runs")


def git_commit(directory: str | Path = ".") -> str:
    """Short hash of HEAD, with ``-dirty`` if tracked files outside GENERATED_FOLDERS changed;
    ``unknown`` outside git.

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
        # the workflow's own outputs (committed tables and figures being rebuilt) are not code
        outputs = [f":(exclude){folder}" for folder in GENERATED_FOLDERS]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *outputs)
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
    baseline = "baseline_mean_ms" in frame.columns
    lines = [
        "# Table 6: time of one SIGReg forward + backward pass (ms)",
        "",
        f"Ours: {first['device']}, torch {first['torch_version']}, implementation "
        f"{first['impl']!r}, mean and std over {first['repeats']} timed runs, commit {first['commit']}.",
    ]
    if baseline:
        lines.append(
            f"Beside it, on the same device, inputs and directions: {first['baseline']!r} "
            "(lejepa.timing; 'algorithm1' is the paper's Algorithm 1 as printed, its knots on [-5, 5])."
        )
        if frame.baseline_mean_ms.isna().any():
            lines.append(
                f"–: {first['baseline']!r} not run, its (N, M, knots) tensors would exceed the job's memory "
                "(config/config.yaml resources.table6.mem_mb)."
            )
    if "command" in frame.columns:
        lines.append(f"Written by `{first['command']}`.")
    lines += [
        f"Paper: {PAPER_TABLE6_DEVICE}, mean and std over 10 runs (the paper does not state D).",
        "",
        "| N | M | knots | D | ours mean (ms) | ours std (ms) | peak memory (MB) "
        + (
            f"| {first['baseline']} mean (ms) | {first['baseline']} peak (MB) | ours / {first['baseline']} "
            if baseline
            else ""
        )
        + "| paper mean (ms) | paper std (ms) | ours / paper |",
        "|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if baseline else "") + "---:|---:|---:|",
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
        ]
        if baseline:
            cells += [
                _number(row.baseline_mean_ms),
                _number(row.baseline_peak_mem_mb, digits=1),
                _number(row.mean_ms / row.baseline_mean_ms, digits=2),
            ]
        cells += [
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


# ---------------------------------------------------------------- real-data tables (2, 3, 5)
#
# A table of config/tables.yaml is rows x columns x probes of cells. `table_cells` decides, when
# the DAG is built, what each cell needs (a probe result to build, or why it has no number);
# `real_table_frame` reads the results into one CSV row per cell and `real_table_markdown`
# renders it with the provenance and the checks of the paper's orderings.

REAL_TABLE_COLUMNS = [
    "table", "scale", "row", "row_label", "paper_model", "column", "column_label", "probe", "method", "shots",
    "dataset", "dataset_label", "run", "run_kind", "status", "accuracy", "std", "seeds", "paper", "gap",
    "backbone", "pretrain_dataset", "epochs", "resolution", "pretrain_wall_s", "pretrain_commit", "pretrain_device",
    "num_train", "probe_wall_s", "result", "commit",
]  # fmt: skip


def run_for_cell(spec, *, column: str, dataset: str) -> str | None:
    """A row's run at one scale for one column: a name, "{dataset}" formatted with the probed
    dataset, or {column: run} with "*" for the other columns; None when the row has none."""
    if isinstance(spec, dict):
        spec = spec.get(column, spec.get("*"))
    return None if spec is None else spec.format(dataset=dataset)


def table_cells(table: dict, *, scale: str, run_kind, pretrain_dataset, unavailable) -> list[dict]:
    """Every cell of one table at one scale that has a paper number or a run, and what it needs.

    Args:
        table: one entry of config/tables.yaml's `tables`.
        run_kind: run -> "pretrained", "random_init" or "frontier"; raises on an unknown run,
            so that a misspelt run fails the DAG instead of becoming a gap in the table.
        pretrain_dataset: pretrained run -> the dataset it trains on.
        unavailable: dataset -> None, or why it cannot be had here (lejepa.data.unavailable_reason).
    Returns dicts with row, column, probe, paper, dataset, run, run_kind, result (the probe
    result to build, or None) and status ("planned", or one line saying why there is no number).
    """
    if scale not in table["scales"]:
        raise ValueError(f"scale {scale!r} is not defined for this table; defined: {sorted(table['scales'])}")
    at_scale = table["scales"][scale]
    not_run = f"not run at {scale} scale"
    cells = []
    for row_key, row in table["rows"].items():
        probes_here = probes_at_scale(table, scale, row=row_key)
        for probe in table["probes"]:
            paper_values = row.get("paper", {}).get(probe) or [None] * len(table["columns"])
            for column, paper in zip(table["columns"], paper_values, strict=True):
                dataset = at_scale["datasets"].get(column)
                run = None
                if dataset and probe in probes_here:
                    run = run_for_cell(at_scale["runs"].get(row_key), column=column, dataset=dataset)
                if run is None and paper is None:
                    continue
                cell = {"row": row_key, "column": column, "probe": probe, "paper": paper, "dataset": dataset,
                        "run": run, "run_kind": None, "result": None, "status": not_run}  # fmt: skip
                if run is not None:
                    cell["run_kind"] = run_kind(run)
                    cell["status"] = _cell_status(cell, pretrain_dataset=pretrain_dataset, unavailable=unavailable)
                    if cell["status"] == "planned":
                        cell["result"] = f"results/{run}/{probe}/{dataset}.json"
                cells.append(cell)
    return cells


def probes_at_scale(table: dict, scale: str, *, row: str | None = None) -> list[str]:
    """The probes a scale runs: the row's own list (`row_probes`), else the scale's, else the table's."""
    at_scale = table["scales"][scale]
    default = at_scale.get("probes", table["probes"])
    return at_scale.get("row_probes", {}).get(row, default) if row else default


def _cell_status(cell: dict, *, pretrain_dataset, unavailable) -> str:
    reason = unavailable(cell["dataset"])
    if reason:
        return f"{cell['dataset']}: {reason}"
    if cell["run_kind"] == "pretrained":
        source = pretrain_dataset(cell["run"])
        reason = unavailable(source)
        if reason:
            return f"pretraining data {source}: {reason}"
    return "planned"


def real_table_frame(name: str, table: dict, cells: list[dict], *, scale: str, read_result, run_info,
                     dataset_label, commit: str) -> pd.DataFrame:  # fmt: skip
    """One row per cell: ours (mean, std over seeds) beside the paper's number, with provenance.

    read_result: path -> the probe result (results/<run>/<probe>/<dataset>.json, as a dict).
    run_info: run -> {backbone, pretrain_dataset, epochs, resolution, pretrain_wall_s, pretrain_commit}.
    dataset_label: dataset -> the name to print (a stand-in says what it stands in for).
    """
    rows = []
    for cell in cells:
        row_spec = table["rows"][cell["row"]]
        method, shots = parse_probe_name(cell["probe"])
        out = {
            "table": name, "scale": scale, "row": cell["row"], "row_label": row_spec["label"],
            "paper_model": row_spec.get("paper_model"), "column": cell["column"],
            "column_label": table["columns"][cell["column"]], "probe": cell["probe"], "method": method,
            "shots": str(shots or "all"), "dataset": cell["dataset"], "run": cell["run"], "run_kind": cell["run_kind"],
            "status": cell["status"], "paper": cell["paper"], "result": cell["result"], "commit": commit,
            "dataset_label": dataset_label(cell["dataset"]) if cell["dataset"] else None,
        }  # fmt: skip
        if cell["result"] is not None:
            out.update(run_info(cell["run"]))
            result = read_result(cell["result"])
            out["status"] = result.get("status", "ok")
            if out["status"] == "ok":
                out.update(
                    accuracy=result["accuracy"], std=result["std"], seeds=_seeds_text(result),
                    num_train=result.get("num_train"), probe_wall_s=result.get("wall_time_s"),
                )  # fmt: skip
        if out.get("accuracy") is not None and cell["paper"] is not None:
            out["gap"] = out["accuracy"] - cell["paper"]
        rows.append(out)
    frame = pd.DataFrame(rows, columns=REAL_TABLE_COLUMNS)
    return frame.astype({"epochs": "Int64", "resolution": "Int64", "num_train": "Int64"})


def _seeds_text(result: dict) -> str:
    seeds = result.get("seeds") or []
    return " ".join(str(seed) for seed in seeds) if seeds else "deterministic"


def _block_lines(group: pd.DataFrame, *, across: str, table: dict, notes: dict[str, int]) -> list[str]:
    """One markdown table: a line per row of the paper, a column per `across` value."""
    order = table["columns"] if across == "column" else table["probes"]
    heads = [head for head in order if head in set(group[across])]
    labels = [table["columns"][head] if across == "column" else head for head in heads]
    lines = ["| model | " + " | ".join(labels) + " |", "|---" * (len(heads) + 1) + "|"]
    for _, entries in group.groupby("row", sort=False):
        by_head = {getattr(entry, across): entry for entry in entries.itertuples()}
        cells = [_cell_text(by_head[head], notes) if head in by_head else "" for head in heads]
        lines.append(f"| {entries.row_label.iloc[0]} | " + " | ".join(cells) + " |")
    return lines


def _cell_text(entry, notes: dict[str, int]) -> str:
    """'ours ± std (paper)'; a cell that cannot be computed here points to its note."""
    paper = "" if pd.isna(entry.paper) else f" ({entry.paper:.2f})"
    if entry.status not in ("ok", "planned") and not str(entry.status).startswith("not run"):
        return f"n/a [{notes.setdefault(entry.status, len(notes) + 1)}]{paper}"
    ours = "–" if pd.isna(entry.accuracy) else f"{entry.accuracy:.1f}"
    if not pd.isna(entry.accuracy) and entry.std and entry.std > 0:
        ours += f" ± {entry.std:.1f}"
    return ours + paper


def check_above(frame: pd.DataFrame, *, row: str, than: str) -> str:
    """Is `row` above `than` in every cell where both have a number? One line saying so."""
    ours = frame.dropna(subset=["accuracy"]).set_index(["probe", "column"])
    a, b = ours[ours.row == row].accuracy, ours[ours.row == than].accuracy
    both = a.index.intersection(b.index)
    labels = dict(zip(frame.row, frame.row_label))
    label_a, label_b = labels.get(row, row), labels.get(than, than)
    if len(both) == 0:
        return f"{label_a} vs {label_b}: no cell has both numbers."
    margins = (a[both] - b[both]).sort_values()
    wins = int((margins > 0).sum())
    verdict = "holds" if wins == len(both) else "does not hold"
    line = (
        f"{label_a} above {label_b}: {verdict}, in {wins} of {len(both)} cells "
        f"(margin {margins.min():+.1f} to {margins.max():+.1f} points, mean {margins.mean():+.1f})"
    )
    losses = [f"{probe} {column} ({margin:+.1f})" for (probe, column), margin in margins.items() if margin <= 0]
    return line + (f"; not in: {', '.join(losses)}." if losses else ".")


def check_ranking(frame: pd.DataFrame, *, rows: list[str]) -> list[str]:
    """Per probe and column where two or more listed rows have ours and the paper's number: both orders."""
    lines = []
    both = frame[frame.row.isin(rows)].dropna(subset=["accuracy", "paper"])
    for (probe, column), group in both.groupby(["probe", "column"], sort=False):
        if len(group) < 2:
            continue
        ours = " > ".join(group.sort_values("accuracy", ascending=False).row)
        paper = " > ".join(group.sort_values("paper", ascending=False).row)
        verdict = "same order" if ours == paper else "order differs"
        lines.append(f"{probe}, {column}: ours {ours}; paper {paper} ({verdict}).")
    return lines or [f"ranking of {', '.join(rows)}: no column has two of them."]


def real_table_checks(frame: pd.DataFrame, checks: list[dict]) -> list[str]:
    """The table's `checks` (config/tables.yaml) as sentences, plus the mean gap to the paper."""
    lines = []
    for check in checks:
        if "above" in check:
            lines.append(check_above(frame, row=check["above"], than=check["than"]))
        else:
            lines.extend(check_ranking(frame, rows=check["ranking"]))
    gaps = frame.gap.dropna()
    if len(gaps):
        lines.append(
            f"Gap to the paper over the {len(gaps)} cells with both numbers: mean {gaps.mean():+.1f} points "
            f"(from {gaps.min():+.1f} to {gaps.max():+.1f}); the paper's runs are far longer (see Runs)."
        )
    return lines


def real_table_markdown(frame: pd.DataFrame, table: dict) -> str:
    """Readable table: one block per probe (or per column when there are fewer columns than
    probes), cells "ours ± std (paper)", then the checks, the runs behind it and the notes."""
    first = frame.iloc[0]
    notes: dict[str, int] = {}
    lines = [
        f"# {table['title']}",
        "",
        f"Scale **{first['scale']}**, built at commit {first['commit']}. Cells: ours, mean ± std over the seeds "
        "of the few-shot subsets or fine-tuning runs (std omitted when 0), then (the paper's number). "
        "– = not computed; n/a with a note = cannot be computed here.",
        "",
        f"**The paper's claim.** {table['claim']}",
        "",
        _compute_line(frame),
        "",
        _probes_line(table, first["scale"]),
        "",
        "**What our run shows.**",
        "",
        *[f"- {line}" for line in real_table_checks(frame, table.get("checks", []))],
    ]
    by_probe = frame.column.nunique() >= frame.probe.nunique()
    blocks, across = ("probe", "column") if by_probe else ("column", "probe")
    for block, group in frame.groupby(blocks, sort=False):
        if by_probe:
            title = block
        else:
            dataset = group.dataset_label.dropna()
            title = f"{table['columns'][block]} ({dataset.iloc[0] if len(dataset) else 'not run'})"
        lines += ["", f"## {title}", ""] + _block_lines(group, across=across, table=table, notes=notes)
    lines += _runs_section(frame) + _datasets_section(frame)
    if notes:
        lines += ["", "## Notes", ""] + [f"{number}. {status}" for status, number in notes.items()]
    return "\n".join(lines) + "\n"


def _probes_line(table: dict, scale: str) -> str:
    """Which of the paper's probes run at this scale, and which do not."""
    at_scale = table["scales"][scale]
    here = probes_at_scale(table, scale)
    skipped = [probe for probe in table["probes"] if probe not in here]
    line = f"Probes run at the {scale} scale: {', '.join(here)}"
    line += f"; not run at this scale (paper numbers only): {', '.join(skipped)}" if skipped else ""
    for row, probes in at_scale.get("row_probes", {}).items():
        line += f"; {table['rows'][row]['label']} only: {', '.join(probes)}"
    return line + "." + (f" Note: {at_scale['note']}" if "note" in at_scale else "")


def _compute_line(frame: pd.DataFrame) -> str:
    """How long the numbers of this table took: pretraining and probes, as recorded by the runs."""
    runs = frame.drop_duplicates("run").dropna(subset=["pretrain_wall_s"])
    probes = frame.drop_duplicates("result").dropna(subset=["probe_wall_s"])
    seeds = frame.dropna(subset=["seeds"]).drop_duplicates("probe")
    return (
        f"Compute behind our numbers: {runs.pretrain_wall_s.sum() / 60:.0f} min of pretraining ({len(runs)} run(s), "
        f"devices in Runs) and {probes.probe_wall_s.sum() / 60:.0f} min of probes ({len(probes)} results; feature "
        "extraction not counted). Seeds (k-shot: of the subsets; all samples: of the held-out split or of the "
        "fine-tuning runs): " + "; ".join(f"{entry.probe} {entry.seeds}" for entry in seeds.itertuples()) + "."
    )


def _runs_section(frame: pd.DataFrame) -> list[str]:
    runs = frame.dropna(subset=["result"]).drop_duplicates("run")
    lines = ["", "## Runs", "",
             "| run | kind | backbone | pretrained on | epochs | resolution | pretraining wall time | device "
             "| commit |",
             "|---|---|---|---|---:|---:|---:|---|---|"]  # fmt: skip
    for run in runs.itertuples():
        wall = "" if pd.isna(run.pretrain_wall_s) else f"{run.pretrain_wall_s / 60:.1f} min"
        cells = [run.run, run.run_kind, run.backbone, run.pretrain_dataset, run.epochs, run.resolution, wall,
                 run.pretrain_device, run.pretrain_commit]  # fmt: skip
        lines.append("| " + " | ".join("" if pd.isna(c) else str(c) for c in cells) + " |")
    return lines


def _datasets_section(frame: pd.DataFrame) -> list[str]:
    used = frame.dropna(subset=["dataset"]).drop_duplicates("column")
    lines = ["", "## Datasets", "", "| paper's column | dataset we probe |", "|---|---|"]
    lines += [f"| {entry.column_label} | {entry.dataset_label} |" for entry in used.itertuples()]
    return lines


def write_real_table(frame: pd.DataFrame, table: dict, *, csv_path, md_path) -> None:
    """Write tables/tableN.csv and tables/tableN.md, each atomically."""
    write_csv(frame, csv_path)
    write_text(real_table_markdown(frame, table), md_path)


def write_run_provenance(out_dir, *, device: str, threads: int) -> None:
    """runs/<run>/provenance.json: the commit and device of the session that finished the run
    (device: the run's `device` setting, auto | cpu | cuda)."""
    import json

    import torch

    from lejepa.devices import resolve_device

    device = resolve_device(device)
    record = {
        "commit": git_commit(),
        "device": device_name(device, threads=threads),
        "torch_version": torch.__version__,
    }
    write_text(json.dumps(record, indent=1) + "\n", Path(out_dir) / "provenance.json")


def read_result(path) -> dict:
    """A probe result (results/<run>/<probe>/<dataset>.json) for a table cell. A file that is not
    valid JSON, or whose "ok" result lacks a finite accuracy in [0, 100], raises ValueError naming
    the file, the key and what to do: a table never shows a number from a broken result."""
    import json

    remedy = "delete it and rerun; the probe rule computes it again"
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"cannot read probe result {path} ({type(error).__name__}: {error}): truncated or corrupted? "
            f"{remedy[0].upper()}{remedy[1:]}"
        ) from error
    if not isinstance(result, dict):
        raise ValueError(f"probe result {path} holds a {type(result).__name__}, not a result mapping: {remedy}")
    if result.get("status", "ok") == "ok":
        for key, low, high in (("accuracy", 0.0, 100.0), ("std", 0.0, math.inf)):
            value = result.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
                raise ValueError(
                    f"probe result {path}: status ok but {key} = {value!r}, "
                    f"not a number in [{low:g}, {high:g}]: {remedy}"
                )
    return result


def read_run_info(run: str, encoder: dict, *, runs_dir="runs") -> dict:
    """What a table prints about the encoder behind a cell.

    encoder: the probe rule's encoder spec (kind; for random_init the architecture it copies).
    A pretrained run is read from runs/<run>/{config.yaml, metrics.csv, provenance.json}.
    """
    import json

    import yaml

    kind = encoder["kind"]
    if kind == "frontier":
        from lejepa.features import FRONTIER_MODELS

        return {"backbone": FRONTIER_MODELS[run]["title"], "pretrain_dataset": "external (transfer)",
                "resolution": encoder["resolution"]}  # fmt: skip
    if kind == "random_init":
        config = encoder["run_config"]
        return {"backbone": config["backbone"], "pretrain_dataset": "none (random init)", "epochs": 0,
                "resolution": config["global_size"]}  # fmt: skip
    folder = Path(runs_dir) / run
    config = yaml.safe_load((folder / "config.yaml").read_text())
    metrics_path = folder / "metrics.csv"
    remedy = (f"delete it and rerun: Snakemake reruns the pretrain job of {run}, which resumes from "
              f"{folder / 'checkpoint.pt'} and writes it again")  # fmt: skip
    try:
        metrics = pd.read_csv(metrics_path)
    except (OSError, ValueError, UnicodeDecodeError) as error:  # pandas' parser errors are ValueErrors
        raise ValueError(f"cannot read {metrics_path} ({type(error).__name__}: {error}): {remedy}") from error
    expected = list(range(1, int(config["epochs"]) + 1))
    if {"epoch", "wall_s"} - set(metrics.columns) or metrics.epoch.tolist() != expected or metrics.wall_s.isna().any():
        raise ValueError(
            f"{metrics_path} lists epochs {metrics.epoch.tolist() if 'epoch' in metrics else '(no epoch column)'}, "
            f"but the run trains {config['epochs']} ({folder / 'config.yaml'}); truncated or corrupted? {remedy}"
        )
    provenance = folder / "provenance.json"
    record = json.loads(provenance.read_text()) if provenance.is_file() else {}
    commit, device = record.get("commit", "unknown"), record.get("device", "unknown")
    return {
        "backbone": config["backbone"],
        "pretrain_dataset": config["dataset"],
        "epochs": int(metrics.epoch.max()) if len(metrics) else 0,
        "steps": int(metrics.step.iloc[-1]) if len(metrics) and "step" in metrics else None,
        "batch_size": config.get("batch_size"),
        "resolution": config["global_size"],
        "pretrain_wall_s": float(metrics.wall_s.iloc[-1]) if len(metrics) else None,
        "pretrain_commit": commit,
        "pretrain_device": device,
    }


RESULT_COLUMNS = ["run", "run_kind", "probe", "dataset", "shots", "status", "accuracy", "std", "seeds", "scale",
                  "pretrain_dataset", "transfer", "resolution", "device", "wall_time_s", "checkpoint_sha256",
                  "path"]  # fmt: skip


def results_frame(paths) -> pd.DataFrame:
    """Every probe result (results/<run>/<probe>/<dataset>.json) as one line each, read (and
    checked) by `read_result`, sorted by run, probe and dataset."""
    rows = []
    for path in paths:
        result = read_result(path)
        row = {column: result.get(column) for column in RESULT_COLUMNS}
        row["seeds"] = " ".join(str(seed) for seed in result.get("seeds", []))
        row["path"] = str(path)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return frame.sort_values(["run", "probe", "dataset"], kind="stable").reset_index(drop=True)
