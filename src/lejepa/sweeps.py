"""Sweeps: a grid of pretraining runs from one base run, table 7 (lambda x views), and the
loss pool behind figures 1 (top), 10, 11, 19 and 21. No torch here: the DAG imports it.

A sweep (config/sweeps.yaml) names, per scale, a base run of config/pretrain.yaml, the
settings laid over every run, the axes (lambda, total views V, seeds) and the probe behind
each cell. `sweep_runs` expands it into run entries named ``<base>__lam<lambda>__v<V>``
(``__s<seed>`` for seeds other than 0), which `merge_sweep_runs` adds to pretrain.runs.

The loss pool is one CSV, one line per (run, epoch): the run's final SIGReg and prediction
losses (its last epoch's means), lambda, views, probe accuracy, and its per-epoch loss terms
and online-probe accuracy from runs/<run>/metrics.csv. `pool_runs` keeps one line per run.
Correlations are Spearman's, in %, between *minus* the loss and the accuracy: positive when
a lower loss goes with a higher accuracy (the paper's figures 1 and 11).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

# The paper's numbers behind the pool's figures (TARGETS.md).
PAPER_FIG1_SPEARMAN = 94.52  # training loss against linear-probe accuracy over one ViT-base run's epochs
PAPER_FIG11_SPEARMAN = {0.0: 85.0, 0.4: 99.0}  # alpha -> Spearman of accuracy against loss / lambda^alpha (about)

VIEW_MODES = ("all_global", "two_global")


# ---------------------------------------------------------------- expansion


def format_value(value: float) -> str:
    """The shortest text of a number that reads back to it: 0.05, 0.001, 0.15, 2."""
    return f"{value:g}"


def run_name(base: str, *, lam: float, views: int, seed: int = 0) -> str:
    """<base>__lam<lambda>__v<views>, with __s<seed> unless the seed is 0."""
    name = f"{base}__lam{format_value(lam)}__v{views}"
    return name if seed == 0 else f"{name}__s{seed}"


def view_keys(views: int, views_as: str = "all_global") -> dict:
    """The lejepa.train keys of V total views: all global (algorithm 2 for non-ViT backbones)
    or 2 global + V - 2 local."""
    if views_as == "all_global":
        return {"n_global": views, "n_local": 0}
    if views_as == "two_global":
        if views < 2:
            raise ValueError(f"views_as two_global needs at least 2 views, got {views}")
        return {"n_global": 2, "n_local": views - 2}
    raise ValueError(f"views_as must be one of {VIEW_MODES}, got {views_as!r}")


def sweep_points(at_scale: dict) -> list[dict]:
    """Every (lam, views, seed) of one scale of a sweep, grid first, then the noise cell's extra
    seeds; each with its run name and whether it is part of the grid."""
    base = at_scale["base"]
    points = {}
    for lam in at_scale["lam"]:
        for views in at_scale["views"]:
            for seed in at_scale.get("seeds", [0]):
                points[(lam, views, seed)] = True
    noise = at_scale.get("noise")
    if noise:
        for seed in noise["seeds"]:
            points.setdefault((noise["lam"], noise["views"], seed), False)
    return [
        {"run": run_name(base, lam=lam, views=views, seed=seed), "lam": lam, "views": views, "seed": seed,
         "grid": grid}  # fmt: skip
        for (lam, views, seed), grid in points.items()
    ]


def sweep_runs(sweep: dict, scale: str, runs: dict) -> dict:
    """run name -> its pretrain.runs entry, for one scale of one sweep.

    An entry is the base run's keys, then the scale's settings, then the point's lam, views
    and seed, with `scale` set to this scale. ``runs``: config/pretrain.yaml's runs (the base
    is looked up there unless the scale defines it).
    """
    at_scale = sweep["scales"][scale]
    base = at_scale["base"]
    if "define" in at_scale:
        base_spec = dict(at_scale["define"])
    elif base in runs:
        base_spec = dict(runs[base])
    else:
        raise ValueError(
            f"sweep scale {scale!r}: base run {base!r} is not in pretrain.runs; "
            f"name one of config/pretrain.yaml's runs or give its keys under `define`"
        )
    settings = at_scale.get("settings", {})
    clash = {"lam", "n_global", "n_local", "seed", "scale"} & set(settings)
    if clash:
        raise ValueError(f"sweep scale {scale!r}: settings may not set {sorted(clash)}, the sweep's own keys")
    out = {}
    for point in sweep_points(at_scale):
        out[point["run"]] = {
            **base_spec,
            **settings,
            "scale": scale,
            "lam": point["lam"],
            **view_keys(point["views"], sweep.get("views_as", "all_global")),
            "seed": point["seed"],
        }
    if "define" in at_scale:
        out[base] = {**base_spec, "scale": base_spec.get("scale", scale)}
    return out


def sweep_names(sweeps: dict) -> list[str]:
    """The sweeps of the `sweeps` section (every key but `pool`)."""
    return sorted(name for name in sweeps if name != "pool")


def merge_sweep_runs(pretrain: dict, sweeps: dict) -> dict:
    """config/pretrain.yaml's runs plus every run of every sweep at every scale. A generated name
    that config/pretrain.yaml already defines differently is an error naming both."""
    runs = dict(pretrain.get("runs", {}))
    for name in sweep_names(sweeps):
        for scale in sweep_scales(sweeps[name]):
            for run, spec in sweep_runs(sweeps[name], scale, pretrain.get("runs", {})).items():
                if run in runs and runs[run] != spec:
                    raise ValueError(
                        f"sweep {name!r} at scale {scale!r} generates run {run!r}, which pretrain.runs "
                        f"already defines with other keys ({runs[run]} vs {spec}); rename one"
                    )
                runs[run] = spec
    return runs


def sweep_scales(sweep: dict) -> list[str]:
    return list(sweep.get("scales", {}))


def sweep_cells(sweep: dict, scale: str, *, unavailable=lambda dataset: None,
                pretrain_dataset=None) -> list[dict]:  # fmt: skip
    """The (lam, views) cells of a sweep at one scale, each with its runs (one per seed; the noise
    cell holds every seed), the probe results it needs, the paper's number and a status: "ok", or
    why nothing is planned (the pretraining or probed dataset cannot be had here).

    unavailable: dataset -> None or why not; pretrain_dataset: run -> its dataset.
    """
    if scale not in sweep.get("scales", {}):
        raise ValueError(f"the sweep has no scale {scale!r}; defined: {sorted(sweep.get('scales', {}))}")
    at_scale = sweep["scales"][scale]
    paper = paper_grid(sweep)
    points = sweep_points(at_scale)
    cells = {}
    for point in points:
        cell = cells.setdefault((point["lam"], point["views"]), {"lam": point["lam"], "views": point["views"],
                                                                 "runs": []})  # fmt: skip
        cell["runs"].append(point["run"])
    out = []
    for (lam, views), cell in cells.items():
        datasets = [at_scale["dataset"]]
        if pretrain_dataset is not None:
            datasets.insert(0, pretrain_dataset(cell["runs"][0]))
        reasons = [reason for reason in dict.fromkeys(unavailable(name) for name in datasets) if reason]
        status = "; ".join(reasons) if reasons else "ok"
        out.append({
            **cell,
            "probe": at_scale["probe"],
            "dataset": at_scale["dataset"],
            "paper": paper.get((lam, views)),
            "status": status,
            "results": [result_path(run, at_scale["probe"], at_scale["dataset"]) for run in cell["runs"]]
            if status == "ok" else [],
        })  # fmt: skip
    return sorted(out, key=lambda cell: (cell["views"], cell["lam"]))


def result_path(run: str, probe: str, dataset: str) -> str:
    return f"results/{run}/{probe}/{dataset}.json"


def paper_grid(sweep: dict) -> dict:
    """(lam, views) -> the paper's number, from the sweep's `paper` block (nulls left out)."""
    paper = sweep.get("paper")
    if not paper:
        return {}
    grid = {}
    for row in paper["rows"]:
        if len(row["accuracy"]) != len(paper["lam"]):
            raise ValueError(f"paper row views={row['views']}: {len(row['accuracy'])} numbers for "
                             f"{len(paper['lam'])} lambdas")  # fmt: skip
        for lam, accuracy in zip(paper["lam"], row["accuracy"]):
            if accuracy is not None:
                grid[(float(lam), int(row["views"]))] = float(accuracy)
    return grid


# ---------------------------------------------------------------- table 7


TABLE7_COLUMNS = ["lam", "views", "accuracy", "std", "seeds", "runs", "paper", "gap", "status", "scale",
                  "probe", "dataset", "dataset_label", "backbone", "pretrain_dataset", "epochs", "resolution",
                  "views_as", "n_global", "n_local", "pretrain_wall_s", "pretrain_device", "pretrain_commit",
                  "commit"]  # fmt: skip


def _lookup(mapping: dict, lam: float, views: int):
    for (other_lam, other_views), value in mapping.items():
        if other_views == views and math.isclose(other_lam, lam, rel_tol=1e-9):
            return value
    return None


def sweep_table_frame(sweep: dict, cells: list[dict], *, scale: str, read_result, run_info, dataset_label,
                      commit: str) -> pd.DataFrame:  # fmt: skip
    """One line per (lam, views) of our grid and of the paper's: ours (mean and std over the
    cell's seeds; the noise cell over all its seeds), the paper's number, the gap, and the runs'
    provenance. read_result: path -> result dict; run_info: run -> read_run_info's dict."""
    views_as = sweep.get("views_as", "all_global")
    rows = []
    for cell in cells:
        row = {"lam": cell["lam"], "views": cell["views"], "paper": cell["paper"], "status": cell["status"],
               "scale": scale, "probe": cell["probe"], "dataset": cell["dataset"],
               "dataset_label": dataset_label(cell["dataset"]), "views_as": views_as,
               "runs": " ".join(cell["runs"]), "commit": commit, **view_keys(cell["views"], views_as)}  # fmt: skip
        if cell["status"] == "ok":
            results = [read_result(path) for path in cell["results"]]
            bad = [result.get("status") for result in results if result.get("status", "ok") != "ok"]
            if bad:
                row["status"] = bad[0]
            else:
                accuracies = [float(result["accuracy"]) for result in results]
                row["accuracy"] = float(np.mean(accuracies))
                row["std"] = float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0
                row["seeds"] = len(accuracies)
            info = run_info(cell["runs"][0])
            row.update({key: info.get(key) for key in ("backbone", "pretrain_dataset", "epochs", "resolution",
                                                       "pretrain_device", "pretrain_commit")})  # fmt: skip
            row["pretrain_wall_s"] = sum(run_info(run).get("pretrain_wall_s") or 0.0 for run in cell["runs"])
        rows.append(row)
    planned = {(row["lam"], row["views"]) for row in rows}
    for (lam, views), paper in paper_grid(sweep).items():
        if _lookup({key: True for key in planned}, lam, views) is None:
            rows.append({"lam": lam, "views": views, "paper": paper, "status": f"not run at {scale} scale",
                         "scale": scale, "views_as": views_as, "commit": commit})  # fmt: skip
    frame = pd.DataFrame(rows).reindex(columns=TABLE7_COLUMNS)
    frame["gap"] = frame.accuracy - frame.paper
    return frame.sort_values(["views", "lam"], kind="stable").reset_index(drop=True)


def best_lambda(frame: pd.DataFrame, column: str) -> dict:
    """views -> (lam, value) of the highest `column` (accuracy or paper) in that row."""
    best = {}
    for views, group in frame.dropna(subset=[column]).groupby("views"):
        top = group.loc[group[column].idxmax()]
        best[int(views)] = (float(top.lam), float(top[column]))
    return best


def sweep_checks(frame: pd.DataFrame) -> list[str]:
    """What the paper's stability claim looks like on our numbers, one sentence each: per view
    count, the best lambda (ours and the paper's), whether it is interior, and the spread across
    lambda; then the seed noise."""
    lines = []
    ours_best, paper_best = best_lambda(frame, "accuracy"), best_lambda(frame, "paper")
    for views in sorted(ours_best):
        row = frame[(frame.views == views)].dropna(subset=["accuracy"])
        lams = sorted(row.lam)
        lam, value = ours_best[views]
        interior = "interior" if len(lams) > 2 and lams[0] < lam < lams[-1] else "at an end of our grid"
        spread = row.accuracy.max() - row.accuracy.min()
        text = (f"V = {views}: best lambda {format_value(lam)} ({value:.2f}, {interior}); "
                f"spread across {len(lams)} lambdas {spread:.2f} points")  # fmt: skip
        if views in paper_best:
            paper_row = frame[frame.views == views].dropna(subset=["paper"])
            paper_spread = paper_row.paper.max() - paper_row.paper.min()
            plam, pvalue = paper_best[views]
            text += (f"; paper: best {format_value(plam)} ({pvalue:.2f}), spread {paper_spread:.2f} "
                     f"over {len(paper_row)} lambdas")  # fmt: skip
        lines.append(text + ".")
    noise = frame[frame.seeds.fillna(0) > 1]
    for entry in noise.itertuples():
        lines.append(f"Seed noise: lambda {format_value(entry.lam)}, V = {entry.views}, {int(entry.seeds)} seeds: "
                     f"std {entry.std:.2f} points; differences below about twice that are within noise.")  # fmt: skip
    if noise.empty and frame.accuracy.notna().any():
        lines.append("Seed noise: not measured at this scale (one seed per cell).")
    return lines


def _grid_markdown(frame: pd.DataFrame, value) -> list[str]:
    lams = sorted(frame.lam.unique())
    lines = ["| V \\ lambda | " + " | ".join(format_value(lam) for lam in lams) + " |",
             "|---|" + "---|" * len(lams)]  # fmt: skip
    for views, group in frame.groupby("views"):
        by_lam = {row.lam: row for row in group.itertuples()}
        lines.append(f"| {int(views)} | " + " | ".join(value(by_lam[lam]) if lam in by_lam else "" for lam in lams)
                     + " |")  # fmt: skip
    return lines


def _cell_text(row) -> str:
    ours = "–" if pd.isna(row.accuracy) else f"{row.accuracy:.2f}"
    if not pd.isna(row.accuracy) and row.seeds > 1:
        ours += f" ± {row.std:.2f}"
    if pd.isna(row.accuracy) and row.status not in ("ok",) and not str(row.status).startswith("not run"):
        ours = "n/a"
    paper = "" if pd.isna(row.paper) else f" ({row.paper:.2f})"
    return ours + paper


def sweep_table_markdown(frame: pd.DataFrame, sweep: dict) -> str:
    """tables/table7.md: the grid (ours, the paper's in parentheses), the checks, the runs."""
    first = frame.iloc[0]
    ok = frame.dropna(subset=["accuracy"])
    lines = [f"# {sweep['title']}", "", f"Paper: {sweep['claim']}", ""]
    if len(ok):
        run = ok.iloc[0]
        views_text = ("every view a global view (n_global = V, n_local = 0; the paper's algorithm 2 for "
                      "non-ViT backbones)" if run.views_as == "all_global"
                      else "2 global views and V - 2 local views")  # fmt: skip
        lines += [
            f"Scale **{first['scale']}**, built at commit {first['commit']}. Ours: {run.backbone} pretrained "
            f"{int(run.epochs)} epochs on {run.pretrain_dataset} at {int(run.resolution)} px, {views_text}; "
            f"probe `{run.probe}` on {run.dataset_label}. The paper: resnet50, ImageNet-100, 400 epochs. "
            f"Cells: ours (mean ± std over seeds where there are several), the paper's number in parentheses.",
            "",
        ]
        if first["scale"] != "paper":
            lines += [f"These are {first['scale']}-scale runs, far shorter than the paper's: the numbers are not "
                      "a reproduction of the paper's; what they test is the shape of the grid.", ""]  # fmt: skip
    else:
        lines += [f"Scale **{first['scale']}**, built at commit {first['commit']}. No cell of ours is computed.", ""]
    lines += _grid_markdown(frame, _cell_text) + [""]
    checks = sweep_checks(frame)
    if checks:
        lines += ["## What our runs show", ""] + [f"- {line}" for line in checks] + [""]
    reasons = sorted({status for status in frame.status.dropna() if status != "ok"
                      and not status.startswith("not run")})  # fmt: skip
    if reasons:
        lines += ["## Cells not computed here", ""] + [f"- {reason}" for reason in reasons] + [""]
    if len(ok):
        runs = sum(len(str(entry).split()) for entry in ok.runs)
        wall = ok.pretrain_wall_s.sum()
        lines += ["## Runs", "",
                  f"{runs} pretraining runs ({ok.seeds.sum():.0f} probe results), {wall / 60:.0f} min of pretraining "
                  f"in all, on {ok.iloc[0].pretrain_device}; per cell in tables/table7.csv (`runs`).", ""]  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------- the loss pool


METRIC_COLUMNS = ["epoch", "step", "loss", "prediction", "sigreg", "online_eval_acc"]
POOL_COLUMNS = ["run", "sweep", "scale", "dataset", "backbone", "lam", "n_global", "n_local", "views", "seed",
                "epochs", "probe", "probe_dataset", "accuracy", "final_loss", "final_prediction", "final_sigreg",
                "final_step", "epoch", "step", "loss", "prediction", "sigreg", "online_eval_acc"]  # fmt: skip


def read_metrics(path) -> pd.DataFrame:
    """runs/<run>/metrics.csv with the columns the pool needs (a missing one is an error naming it)."""
    metrics = pd.read_csv(path)
    missing = [column for column in METRIC_COLUMNS if column not in metrics.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing} of lejepa.train's metrics.csv")
    if metrics.empty:
        raise ValueError(f"{path} has no epoch yet")
    return metrics[METRIC_COLUMNS].sort_values("epoch").reset_index(drop=True)


def pool_frame(entries: list[dict], *, read_result) -> pd.DataFrame:
    """The loss pool, one line per (run, epoch).

    entries: one per run: run, sweep (or ""), settings (the run's resolved lejepa.train config),
    result (path of its probe result), probe, probe_dataset, metrics (path of metrics.csv).
    A run whose probe result is not "ok" is left out.
    """
    frames = []
    for entry in entries:
        result = read_result(entry["result"])
        if result.get("status", "ok") != "ok":
            continue
        metrics = read_metrics(entry["metrics"])
        settings = entry["settings"]
        last = metrics.iloc[-1]
        run_columns = {
            "run": entry["run"], "sweep": entry.get("sweep", ""), "scale": settings["scale"],
            "dataset": settings["dataset"], "backbone": settings["backbone"], "lam": float(settings["lam"]),
            "n_global": int(settings["n_global"]), "n_local": int(settings["n_local"]),
            "views": int(settings["n_global"]) + int(settings["n_local"]), "seed": int(settings["seed"]),
            "epochs": int(settings["epochs"]), "probe": entry["probe"], "probe_dataset": entry["probe_dataset"],
            "accuracy": float(result["accuracy"]), "final_loss": float(last.loss),
            "final_prediction": float(last.prediction), "final_sigreg": float(last.sigreg),
            "final_step": int(last.step),
        }  # fmt: skip
        frames.append(metrics.assign(**run_columns))
    if not frames:
        return pd.DataFrame(columns=POOL_COLUMNS)
    return pd.concat(frames, ignore_index=True)[POOL_COLUMNS].sort_values(["run", "epoch"]).reset_index(drop=True)


def pool_runs(pool: pd.DataFrame) -> pd.DataFrame:
    """One line per run of the pool (its run-level columns)."""
    columns = [column for column in POOL_COLUMNS if column not in METRIC_COLUMNS]
    return pool.drop_duplicates("run")[columns].reset_index(drop=True)


def spearman_percent(loss, accuracy) -> float:
    """Spearman correlation, in %, of minus the loss with the accuracy (nan under 3 points or
    when either is constant)."""
    from scipy.stats import spearmanr

    loss, accuracy = np.asarray(loss, dtype=float), np.asarray(accuracy, dtype=float)
    keep = np.isfinite(loss) & np.isfinite(accuracy)
    loss, accuracy = loss[keep], accuracy[keep]
    if len(loss) < 3 or np.ptp(loss) == 0 or np.ptp(accuracy) == 0:
        return float("nan")
    return float(100 * spearmanr(-loss, accuracy).statistic)


def scaled_loss(runs: pd.DataFrame, alpha: float) -> pd.Series:
    """The paper's equation (8) argument: final training loss / lambda^alpha."""
    return runs.final_loss / runs.lam**alpha


def alpha_curve(runs: pd.DataFrame, alphas) -> pd.DataFrame:
    """Figure 11's numbers: for the whole pool and for each (backbone, dataset) group of at
    least 3 runs, Spearman (%) of accuracy against loss / lambda^alpha per alpha."""
    groups = [("all runs", runs)]
    for (backbone, dataset), group in runs.groupby(["backbone", "dataset"]):
        if 3 <= len(group) < len(runs):  # a group that is the whole pool is "all runs" already
            groups.append((f"{backbone}, {dataset}", group))
    rows = []
    for name, group in groups:
        for alpha in alphas:
            rows.append({"group": name, "alpha": float(alpha), "runs": len(group),
                         "spearman": spearman_percent(scaled_loss(group, alpha), group.accuracy)})  # fmt: skip
    return pd.DataFrame(rows, columns=["group", "alpha", "runs", "spearman"])


def epoch_series_run(pool: pd.DataFrame) -> str | None:
    """Figure 1 top-left's run: the one with the most epochs that have an online-probe accuracy
    (at least 3), ties broken by name; None if no run has 3."""
    counts = pool.dropna(subset=["online_eval_acc"]).groupby("run").size()
    counts = counts[counts >= 3]
    if counts.empty:
        return None
    return sorted(counts.index, key=lambda run: (-counts[run], run))[0]


def longest_run(pool: pd.DataFrame) -> str | None:
    """Figure 1 top-right's run: the most optimisation steps, ties broken by name."""
    if pool.empty:
        return None
    runs = pool_runs(pool)
    return sorted(zip(runs.final_step, runs.run), key=lambda item: (-item[0], item[1]))[0][1]


def fig1_numbers(pool: pd.DataFrame) -> pd.DataFrame:
    """Figure 1 (top): the series behind each panel, one line per epoch: panel (top_left: the
    epoch-series run, with its Spearman of loss against online-probe accuracy; top_right: the
    longest run), run, epoch, loss, online_eval_acc, spearman."""
    rows = []
    series = epoch_series_run(pool)
    if series is not None:
        run = pool[pool.run == series].dropna(subset=["online_eval_acc"])
        rho = spearman_percent(run.loss, run.online_eval_acc)
        rows += [{"panel": "top_left", "run": series, "epoch": e.epoch, "loss": e.loss,
                  "online_eval_acc": e.online_eval_acc, "spearman": rho} for e in run.itertuples()]  # fmt: skip
    longest = longest_run(pool)
    if longest is not None:
        run = pool[pool.run == longest]
        rows += [{"panel": "top_right", "run": longest, "epoch": e.epoch, "loss": e.loss,
                  "online_eval_acc": e.online_eval_acc, "spearman": float("nan")}
                 for e in run.itertuples()]  # fmt: skip
    return pd.DataFrame(rows, columns=["panel", "run", "epoch", "loss", "online_eval_acc", "spearman"])


def read_pool(path) -> pd.DataFrame:
    return pd.read_csv(Path(path))
