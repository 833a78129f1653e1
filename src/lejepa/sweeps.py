"""Sweeps: grids of pretraining runs around one base run; table 7 (lambda x views), table 1's
ablations (a)-(d), and the loss pool behind figures 1 (top), 10, 11, 19 and 21. No torch here:
the DAG imports it.

A sweep (config/sweeps.yaml) names its axes: keys of lejepa.train (TRAINING_KEYS: lam, t_max,
num_slices, knots, batch_size, n_global, ...) or the derived axes of DERIVED_AXES (views, the
total V = n_global + n_local; proj_width and proj_dim, the projector's hidden width and output
dimension). Per scale it names a base run of config/pretrain.yaml, the settings laid over every
run, each axis's values, the seeds and the probe behind each cell. A sweep without `parts` has
one grid, given by the scale's own axis keys (table 7: lam x views); a sweep with parts (table 1's
sub-tables) has one grid per part, each varying a few axes of the scale's `default` cell.

`sweep_runs` expands a scale into run entries, which `merge_sweep_runs` adds to pretrain.runs.
A run is named ``<base>__lam<lambda>__v<V>``, then one tag per setting that differs from the
scale's default cell, in NAME_TAGS order (``__vg<n_global>`` when n_global is not what views_as
gives for V, ``__t<t_max>``, ``__sl<num_slices>``, ``__k<knots>``, ``__b<batch_size>``,
``__p<projector>``; another training key is tagged by its own name), then ``__s<seed>`` for
seeds other than 0. One setting has one name, whichever sweep or part asks for it: table 1's
default cell at small scale is table 7's noise cell (cifar10_resnet18__lam0.02__v4), trained once.

The loss pool is one CSV, one line per (run, epoch): the run's final SIGReg and prediction
losses (its last epoch's means), lambda, views, probe accuracy, and its per-epoch loss terms
and online-probe accuracy from runs/<run>/metrics.csv. `pool_runs` keeps one line per run.
Correlations are Spearman's, in %, between *minus* the loss and the accuracy: positive when
a lower loss goes with a higher accuracy (the paper's figures 1 and 11).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lejepa.train_config import ADDED_TRAINING_KEYS, TRAINING_KEYS

# The paper's numbers behind the pool's figures (TARGETS.md).
PAPER_FIG1_SPEARMAN = 94.52  # training loss against linear-probe accuracy over one ViT-base run's epochs
PAPER_FIG11_SPEARMAN = {0.0: 85.0, 0.4: 99.0}  # alpha -> Spearman of accuracy against loss / lambda^alpha (about)

VIEW_MODES = ("all_global", "two_global")

# Axes that are not keys of lejepa.train, and the keys each sets (cell_settings).
DERIVED_AXES = {
    "views": "total views V = n_global + n_local (n_global as views_as says, unless n_global is an axis too)",
    "proj_width": "the projector's hidden width: every size of `projector` but the last",
    "proj_dim": "the projector's output dimension: the last size of `projector`",
}
# Run-name tags of the settings a cell changes from its scale's default, in name order.
NAME_TAGS = {"n_global": "vg", "t_max": "t", "num_slices": "sl", "knots": "k", "batch_size": "b", "projector": "p",
             "num_registers": "reg"}
# Keys of a sweep's scale that are not axes (any other key of a scale of a sweep without parts is an axis).
SCALE_KEYS = ("base", "define", "settings", "seeds", "noise", "probe", "dataset", "default", "views_as", "parts")
# Training keys a sweep may not vary (they name the run's data, model or seed, not a setting of the method).
NOT_AXES = ("dataset", "backbone", "seed")


# ---------------------------------------------------------------- expansion


def format_value(value) -> str:
    """The shortest text of a value that reads back to it: 0.05, 0.001, 0.15, 2, 512-512-128."""
    return value if isinstance(value, str) else f"{value:g}"


def _tag_order(key: str):
    return (0, list(NAME_TAGS).index(key), "") if key in NAME_TAGS else (1, 0, key)


def run_name(base: str, *, lam: float, views: int, seed: int = 0, extra: dict | None = None) -> str:
    """<base>__lam<lambda>__v<views>, a tag per setting of `extra` (NAME_TAGS order), and __s<seed>
    unless the seed is 0."""
    name = f"{base}__lam{format_value(lam)}__v{views}"
    for key in sorted(extra or {}, key=_tag_order):
        name += f"__{NAME_TAGS.get(key, key)}{format_value(extra[key])}"
    return with_seed(name, seed)


def with_seed(cell: str, seed: int) -> str:
    """A cell's run name for one seed: __s<seed> unless the seed is 0."""
    return cell if seed == 0 else f"{cell}__s{seed}"


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


def projector_sizes(projector: str) -> list[int]:
    """'512-512-128' -> [512, 512, 128]."""
    try:
        return [int(size) for size in str(projector).split("-")]
    except ValueError:
        raise ValueError(f"projector must be sizes joined by '-', e.g. 512-512-128, got {projector!r}") from None


def projector_with(projector: str, *, width=None, dim=None) -> str:
    """The projector with its hidden sizes set to `width` and its output size to `dim` (either may
    be None: kept)."""
    sizes = projector_sizes(projector)
    if width is not None:
        if len(sizes) < 2:
            raise ValueError(f"projector {projector!r} has no hidden layer whose width proj_width could set")
        sizes[:-1] = [int(width)] * (len(sizes) - 1)
    if dim is not None:
        sizes[-1] = int(dim)
    return "-".join(map(str, sizes))


def sweep_parts(sweep: dict) -> dict:
    """part -> {title, axes, paper, note}: a sweep's parts (table 1's sub-tables), or for a sweep
    without parts one part '' over the sweep's `axes` (default: lam, views) and its `paper`."""
    if "parts" in sweep:
        return sweep["parts"]
    return {"": {"title": sweep.get("title", ""), "axes": sweep.get("axes", ["lam", "views"]),
                 "paper": sweep.get("paper")}}  # fmt: skip


def check_axes(axes) -> None:
    bad = [axis for axis in axes if axis in NOT_AXES or (axis not in TRAINING_KEYS and axis not in DERIVED_AXES)]
    if bad:
        allowed = sorted(set(TRAINING_KEYS) - set(NOT_AXES) | set(DERIVED_AXES))
        raise ValueError(f"axis {bad[0]!r} is neither a setting of lejepa.train nor a derived axis; allowed: {allowed}")
    if "n_global" in axes and "views" not in axes:
        raise ValueError("an n_global axis needs a views axis beside it (n_local = views - n_global)")


def scale_grids(sweep: dict, scale: str) -> dict:
    """part -> its grid at one scale ({axis: values}, and `exclude`: cells left out). A sweep
    without parts: the scale's own keys that are not SCALE_KEYS."""
    at_scale = sweep["scales"][scale]
    parts = sweep_parts(sweep)
    if "parts" in sweep:
        grids = dict(at_scale.get("parts", {}))
    else:
        grids = {"": {key: value for key, value in at_scale.items() if key not in SCALE_KEYS}}
    for part, grid in grids.items():
        where = f"scale {scale!r}" + (f", part {part!r}" if part else "")
        if part not in parts:
            raise ValueError(f"{where}: the sweep has no such part; parts: {sorted(parts)}")
        axes = parts[part]["axes"]
        check_axes(axes)
        stray = [key for key in grid if key != "exclude" and key not in axes]
        if stray:
            raise ValueError(f"{where}: {stray[0]!r} is neither a setting of a sweep's scale {list(SCALE_KEYS)} "
                             f"nor an axis of the part {axes}")  # fmt: skip
    return grids


def _same(a, b) -> bool:
    return format_value(a) == format_value(b)


def grid_cells(grid: dict, axes) -> list[dict]:
    """Every combination of a grid's values (the first axis varies fastest), less those that match
    every value of an `exclude` entry."""
    swept = [axis for axis in axes if axis in grid]
    cells = []
    for combo in itertools.product(*(grid[axis] for axis in reversed(swept))):
        values = dict(zip(reversed(swept), combo))
        cells.append({axis: values[axis] for axis in swept})
    exclude = grid.get("exclude", [])
    return [cell for cell in cells
            if not any(all(key in cell and _same(cell[key], value) for key, value in entry.items())
                       for entry in exclude)]  # fmt: skip


def cell_settings(values: dict, default: dict, views_as: str) -> tuple[dict, dict, dict]:
    """One cell -> (its training keys, the settings its name tags, its value on every axis).

    values: the cell's own axis values; default: the scale's default cell, whose values fill
    the axes the cell does not set. The training keys are lam, n_global, n_local and each
    setting that differs from the default (the base run gives the others).
    """
    cell = {**default, **values}
    missing = [axis for axis in ("lam", "views") if axis not in cell]
    if missing:
        raise ValueError(f"a cell needs lam and views (from its grid or the scale's default); {missing} missing")
    views = int(cell["views"])
    standard = view_keys(views, views_as)["n_global"]
    n_global = int(cell.get("n_global", standard))
    if not 1 <= n_global <= views:
        raise ValueError(f"a cell of {views} views cannot have {n_global} global views")
    keys = {"lam": cell["lam"], "n_global": n_global, "n_local": views - n_global}
    extra = {"n_global": n_global} if n_global != standard else {}
    derived = {"lam", "views", "n_global", "proj_width", "proj_dim"}
    settings = {key: value for key, value in cell.items() if key not in derived}
    if "proj_width" in values or "proj_dim" in values:
        if "projector" not in default:
            raise ValueError("proj_width and proj_dim change the scale's default projector: give `projector` there")
        settings["projector"] = projector_with(default["projector"], width=values.get("proj_width"),
                                               dim=values.get("proj_dim"))  # fmt: skip
    for key, value in settings.items():
        if key not in default or not _same(value, default[key]):
            keys[key] = value
            extra[key] = value
    full = {**cell, "views": views, "n_global": n_global, "n_local": views - n_global}
    if "projector" in settings:
        sizes = projector_sizes(settings["projector"])
        full.update(projector=settings["projector"], proj_dim=sizes[-1],
                    proj_width=sizes[0] if len(sizes) > 1 else None)  # fmt: skip
    return keys, extra, full


def cell_run(sweep: dict, scale: str, values: dict) -> tuple[str, dict, dict]:
    """One cell of a scale -> (its name without seed, its training keys, its value on every axis)."""
    keys, extra, full = cell_settings(values, scale_default(sweep, scale), views_mode(sweep, scale))
    return run_name(sweep["scales"][scale]["base"], lam=keys["lam"], views=full["views"], extra=extra), keys, full


def scale_default(sweep: dict, scale: str) -> dict:
    return dict(sweep["scales"][scale].get("default", {}))


def views_mode(sweep: dict, scale: str) -> str:
    return sweep["scales"][scale].get("views_as", sweep.get("views_as", "all_global"))


def sweep_points(sweep: dict, scale: str) -> list[dict]:
    """Every run of one scale of a sweep: the cells of every part's grid x the scale's seeds, the
    default cell (a sweep with parts: every part's reference) x the seeds, then the noise cell's
    seeds. Each point: run, cell (the run's name without seed), values (every axis), keys
    (training keys), seed, grid (False for a noise seed only), parts (those whose grid has it)."""
    at_scale = sweep["scales"][scale]
    default = scale_default(sweep, scale)
    if "parts" in sweep:
        axes = {axis for part in scale_grids(sweep, scale) for axis in sweep_parts(sweep)[part]["axes"]}
        lacking = sorted(axis for axis in axes - {"n_global", "proj_width", "proj_dim"} if axis not in default)
        if lacking or ({"proj_width", "proj_dim"} & axes and "projector" not in default):
            raise ValueError(f"scale {scale!r}: the default cell must give every axis its parts vary; "
                             f"missing {lacking or ['projector']}")  # fmt: skip
    points = {}

    def add(values, seed, grid, part):
        cell, keys, full = cell_run(sweep, scale, values)
        run = with_seed(cell, seed)
        point = points.setdefault(run, {"run": run, "cell": cell, "values": full, "keys": keys, "seed": seed,
                                        "grid": grid, "parts": []})  # fmt: skip
        point["grid"] = point["grid"] or grid
        if part is not None and part not in point["parts"]:
            point["parts"].append(part)

    seeds = at_scale.get("seeds", [0])
    for part, grid in scale_grids(sweep, scale).items():
        for values in grid_cells(grid, sweep_parts(sweep)[part]["axes"]):
            for seed in seeds:
                add(values, seed, True, part)
    if "parts" in sweep:
        for seed in seeds:
            add({}, seed, True, None)
    noise = at_scale.get("noise")
    if noise:
        for seed in noise["seeds"]:
            add({key: value for key, value in noise.items() if key != "seeds"}, seed, False, None)
    return list(points.values())


def noise_cell(sweep: dict, scale: str) -> str | None:
    """The name (without seed) of the cell whose seeds measure the seed noise, or None."""
    noise = sweep["scales"][scale].get("noise")
    if not noise:
        return None
    return cell_run(sweep, scale, {key: value for key, value in noise.items() if key != "seeds"})[0]


def default_cell(sweep: dict, scale: str) -> str | None:
    """The name (without seed) of the default cell of a sweep with parts, or None."""
    if "parts" not in sweep:
        return None
    return cell_run(sweep, scale, {})[0]


def sweep_runs(sweep: dict, scale: str, runs: dict) -> dict:
    """run name -> its pretrain.runs entry, for one scale of one sweep.

    An entry is the base run's keys, then the scale's settings, then the point's training keys
    (lam, n_global, n_local and what it changes from the default cell) and seed, with `scale`
    set to this scale. ``runs``: config/pretrain.yaml's runs (the base is looked up there unless
    the scale defines it).
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
    points = sweep_points(sweep, scale)
    own = {"lam", "n_global", "n_local", "seed", "scale"} | {key for point in points for key in point["keys"]}
    clash = own & set(settings)
    if clash:
        raise ValueError(f"sweep scale {scale!r}: settings may not set {sorted(clash)}, the sweep's own keys")
    out = {}
    for point in points:
        out[point["run"]] = {**base_spec, **settings, "scale": scale, **point["keys"], "seed": point["seed"]}
    if "define" in at_scale:
        out[base] = {**base_spec, "scale": base_spec.get("scale", scale)}
    return out


def sweep_names(sweeps: dict) -> list[str]:
    """The sweeps of the `sweeps` section (every key but `pool`)."""
    return sorted(name for name in sweeps if name != "pool")


def merge_sweep_runs(pretrain: dict, sweeps: dict) -> dict:
    """config/pretrain.yaml's runs plus every run of every sweep at every scale. A generated name
    that config/pretrain.yaml already defines differently is an error naming both; so is a default
    cell whose stated settings are not those its base run trains with."""
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
    for name in sweep_names(sweeps):
        for scale in sweep_scales(sweeps[name]):
            check_default(sweeps[name], scale, {**pretrain, "runs": runs}, name=name)
    return runs


def check_default(sweep: dict, scale: str, pretrain: dict, *, name: str = "") -> None:
    """A scale's default cell states the settings its base run trains with (t_max, num_slices,
    ...): each must be what the run resolves to, or the cells' names and labels would lie."""
    from lejepa.train_config import resolve_run

    default = scale_default(sweep, scale)
    stated = {key: value for key, value in default.items() if key in TRAINING_KEYS and key != "lam"}
    if not stated:
        return
    run = default_cell(sweep, scale) or noise_cell(sweep, scale)
    config, _ = resolve_run(pretrain, run)
    resolved = {**ADDED_TRAINING_KEYS, **config}  # a key at its added default is left out of a resolved run
    wrong = {key: (value, resolved[key]) for key, value in stated.items() if not _same(value, resolved[key])}
    if wrong:
        text = ", ".join(f"{key} = {ours!r} (the run: {theirs!r})" for key, (ours, theirs) in wrong.items())
        raise ValueError(f"sweep {name!r} at scale {scale!r}: the default cell states {text}; make it say what "
                         f"its base run {sweep['scales'][scale]['base']!r} trains with")  # fmt: skip


def sweep_scales(sweep: dict) -> list[str]:
    return list(sweep.get("scales", {}))


def paper_cells(paper: dict | None) -> list[tuple[dict, float]]:
    """The paper's numbers of one (sub-)table as (axis values, accuracy), nulls left out. A paper
    block is {<column axis>: [values], rows: [{<row axes>: value, accuracy: [one per column]}]}."""
    if not paper:
        return []
    columns = [key for key in paper if key != "rows"]
    if len(columns) != 1:
        raise ValueError(f"a paper block has `rows` and one column axis, got {columns}")
    column = columns[0]
    out = []
    for row in paper["rows"]:
        axes = {key: value for key, value in row.items() if key != "accuracy"}
        if len(row["accuracy"]) != len(paper[column]):
            raise ValueError(f"paper row {axes}: {len(row['accuracy'])} numbers for "
                             f"{len(paper[column])} values of {column}")  # fmt: skip
        for value, accuracy in zip(paper[column], row["accuracy"]):
            if accuracy is not None:
                out.append(({**axes, column: value}, float(accuracy)))
    return out


def cell_key(values: dict, axes) -> tuple:
    return tuple(format_value(values[axis]) if values.get(axis) is not None else "" for axis in axes)


def sweep_cells(sweep: dict, scale: str, *, unavailable=lambda dataset: None,
                pretrain_dataset=None) -> list[dict]:  # fmt: skip
    """The cells of a sweep at one scale, each with its runs (one per seed; the noise cell holds
    every seed), the probe results it needs, the paper's number and a status: "ok", or why
    nothing is planned (the pretraining or probed dataset cannot be had here).

    A sweep without parts: one cell per (lam, views) of its grid, sorted by views then lam. A
    sweep with parts: per part (config order) its reference (the default cell) first, then the
    cells of its grid (last axis slowest), each with `part`, its value on every axis of the part,
    `values` (every setting), and flags `reference` and `noise`.

    unavailable: dataset -> None or why not; pretrain_dataset: run -> its dataset.
    """
    if scale not in sweep.get("scales", {}):
        raise ValueError(f"the sweep has no scale {scale!r}; defined: {sorted(sweep.get('scales', {}))}")
    at_scale = sweep["scales"][scale]
    points = sweep_points(sweep, scale)
    runs, values = {}, {}
    for point in points:
        runs.setdefault(point["cell"], []).append(point["run"])
        values.setdefault(point["cell"], point["values"])
    reference, noise = default_cell(sweep, scale), noise_cell(sweep, scale)
    grids = scale_grids(sweep, scale)

    def status_of(cell):
        datasets = [at_scale["dataset"]]
        if pretrain_dataset is not None:
            datasets.insert(0, pretrain_dataset(runs[cell][0]))
        reasons = [reason for reason in dict.fromkeys(unavailable(name) for name in datasets) if reason]
        return "; ".join(reasons) if reasons else "ok"

    def entry(cell, axes, paper):
        status = status_of(cell)
        return {
            **{axis: values[cell].get(axis) for axis in axes},
            "runs": runs[cell],
            "probe": at_scale["probe"],
            "dataset": at_scale["dataset"],
            "paper": paper.get(cell_key(values[cell], axes)),
            "status": status,
            "results": [result_path(run, at_scale["probe"], at_scale["dataset"]) for run in runs[cell]]
            if status == "ok" else [],
        }  # fmt: skip

    out = []
    for part, spec in sweep_parts(sweep).items():
        if part not in grids:
            continue
        axes = spec["axes"]
        paper = {cell_key(cell, axes): accuracy for cell, accuracy in paper_cells(spec.get("paper"))}
        if "parts" not in sweep:  # every cell, the noise cell too
            cells = list(dict.fromkeys(point["cell"] for point in points))
            out += sorted((entry(cell, axes, paper) for cell in cells),
                          key=lambda cell: tuple(cell[axis] for axis in reversed(axes)))  # fmt: skip
            continue
        cells = list(dict.fromkeys(point["cell"] for point in points if part in point["parts"]))
        ordered = sorted((cell for cell in cells if cell != reference),
                         key=lambda cell: tuple(values[cell][axis] for axis in reversed(axes)))  # fmt: skip
        for cell in [reference, *ordered]:
            out.append({"part": part, **entry(cell, axes, paper), "values": values[cell],
                        "reference": cell == reference, "noise": cell == noise})  # fmt: skip
    return out


def result_path(run: str, probe: str, dataset: str) -> str:
    return f"results/{run}/{probe}/{dataset}.json"


def paper_grid(sweep: dict, part: str = "") -> dict:
    """(value of each axis, in the part's `axes` order) -> the paper's number; table 7: (lam,
    views) -> number."""
    spec = sweep_parts(sweep)[part]
    return {tuple(cell[axis] for axis in spec["axes"]): accuracy for cell, accuracy in paper_cells(spec.get("paper"))}


# ---------------------------------------------------------------- table 7


TABLE7_COLUMNS = ["lam", "views", "accuracy", "std", "seeds", "runs", "paper", "gap", "status", "scale",
                  "probe", "dataset", "dataset_label", "backbone", "pretrain_dataset", "epochs", "steps",
                  "batch_size", "resolution",
                  "views_as", "n_global", "n_local", "pretrain_wall_s", "pretrain_device", "pretrain_commit",
                  "commit"]  # fmt: skip


RUN_INFO_KEYS = ("backbone", "pretrain_dataset", "epochs", "steps", "batch_size", "resolution", "pretrain_device",
                 "pretrain_commit")  # fmt: skip


def _accuracies(cell: dict, read_result) -> tuple[list[float] | None, str]:
    """(the accuracy of each of a cell's results, "ok"), or (None, the first result's status that
    is not "ok")."""
    results = [read_result(path) for path in cell["results"]]
    bad = [result.get("status") for result in results if result.get("status", "ok") != "ok"]
    if bad:
        return None, bad[0]
    return [float(result["accuracy"]) for result in results], "ok"


def _seed_summary(accuracies: list[float]) -> dict:
    """A cell's accuracy over its seeds: mean, std (ddof 1; 0 for one seed) and the seed count."""
    return {"accuracy": float(np.mean(accuracies)),
            "std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
            "seeds": len(accuracies)}  # fmt: skip


def _run_columns(runs: list[str], run_info) -> dict:
    """What a table prints of a cell's runs: the first run's RUN_INFO_KEYS, and the pretraining
    wall time of all of them."""
    info = run_info(runs[0])
    return {**{key: info.get(key) for key in RUN_INFO_KEYS},
            "pretrain_wall_s": sum(run_info(run).get("pretrain_wall_s") or 0.0 for run in runs)}  # fmt: skip


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
            accuracies, row["status"] = _accuracies(cell, read_result)
            if accuracies is not None:
                row.update(_seed_summary(accuracies))
            row.update(_run_columns(cell["runs"], run_info))
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


def budget_text(run) -> str:
    """"1 epoch (120 steps of 256 images)": the epochs a run's metrics list, and its steps where known."""
    text = f"{int(run.epochs)} epoch{'s' if int(run.epochs) != 1 else ''}"
    steps, batch_size = getattr(run, "steps", None), getattr(run, "batch_size", None)
    if not pd.isna(steps) and not pd.isna(batch_size):
        text += f" ({int(steps)} steps of {int(batch_size)} images)"
    return text


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
            f"{budget_text(run)} on {run.pretrain_dataset} at {int(run.resolution)} px, {views_text}; "
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


# ---------------------------------------------------------------- table 1 (a sweep with parts)


NOISE_RULE = ("a difference Δ from the default cell is **beyond seed noise** when |Δ| > 2 σ √(1/n + 1/n_ref), "
              "two standard errors of a difference between means of n and n_ref seeds, with σ the standard "
              "deviation (ddof 1) of the default cell's noise seeds; otherwise **within seed noise**")  # fmt: skip
SETTING_COLUMNS = ["lam", "views", "n_global", "n_local", "t_max", "num_slices", "knots", "batch_size", "projector",
                   "proj_width", "proj_dim", "num_registers"]  # fmt: skip
ABLATION_COLUMNS = ["part", "part_title", "reference", *SETTING_COLUMNS, "accuracy", "std", "seeds", "delta",
                    "threshold", "label", "paper", "status", "runs", "scale", "probe", "dataset", "dataset_label",
                    "backbone", "pretrain_dataset", "epochs", "steps", "max_steps_per_epoch", "warmup_epochs",
                    "resolution", "noise_std", "noise_seeds", "pretrain_wall_s", "pretrain_device",
                    "pretrain_commit", "commit"]  # fmt: skip


def noise_label(delta: float, sigma: float, n: int, n_ref: int) -> tuple[float, str]:
    """(threshold, label) of a difference `delta` between a cell of n seeds and the reference of
    n_ref seeds, given the seed noise sigma (NOISE_RULE)."""
    if sigma is None or not np.isfinite(sigma):
        return float("nan"), "seed noise not measured"
    threshold = 2 * sigma * math.sqrt(1 / n + 1 / n_ref)
    return threshold, "beyond seed noise" if abs(delta) > threshold else "within seed noise"


def ablation_frame(sweep: dict, cells: list[dict], *, scale: str, read_result, run_info, dataset_label,
                   commit: str, budget: dict | None = None) -> pd.DataFrame:  # fmt: skip
    """Table 1: one line per cell of each part (its reference, the default cell, first), then the
    paper's cells we did not run. Ours: mean and std over the cell's seeds; delta from the
    reference; its label against the seed noise (noise_label); the paper's number.

    cells: sweep_cells' (a sweep with parts); read_result: path -> result dict; run_info: run ->
    read_run_info's dict; budget: the default run's epochs, max_steps_per_epoch, warmup_epochs.
    """
    budget = budget or {}
    measured = {}
    for cell in cells:
        if cell["status"] == "ok" and cell["runs"][0] not in measured:
            accuracies, status = _accuracies(cell, read_result)
            measured[cell["runs"][0]] = (accuracies, status)
    noise = next((cell for cell in cells if cell["noise"]), None)
    noise_accuracies = measured.get(noise["runs"][0], (None, ""))[0] if noise else None
    sigma = float(np.std(noise_accuracies, ddof=1)) if noise_accuracies and len(noise_accuracies) > 1 else float("nan")
    noise_seeds = len(noise_accuracies) if noise_accuracies else 0
    parts = sweep_parts(sweep)
    rows = []
    for part, spec in parts.items():
        ours = [cell for cell in cells if cell["part"] == part]
        reference = next((cell for cell in ours if cell["reference"]), None)
        ref_accuracies = measured.get(reference["runs"][0], (None, ""))[0] if reference else None
        for cell in ours:
            row = {"part": part, "part_title": spec["title"], "reference": cell["reference"],
                   **{key: cell["values"].get(key) for key in SETTING_COLUMNS}, "paper": cell["paper"],
                   "status": cell["status"], "scale": scale, "probe": cell["probe"], "dataset": cell["dataset"],
                   "dataset_label": dataset_label(cell["dataset"]), "runs": " ".join(cell["runs"]),
                   "noise_std": sigma, "noise_seeds": noise_seeds, "commit": commit,
                   **{key: budget.get(key) for key in ("max_steps_per_epoch", "warmup_epochs")}}  # fmt: skip
            if cell["status"] == "ok":
                accuracies, status = measured[cell["runs"][0]]
                row["status"] = status
                if accuracies:
                    row.update(_seed_summary(accuracies))
                    if cell["reference"]:
                        row["label"] = "reference"
                    elif ref_accuracies:
                        row["delta"] = row["accuracy"] - float(np.mean(ref_accuracies))
                        row["threshold"], row["label"] = noise_label(row["delta"], sigma, len(accuracies),
                                                                     len(ref_accuracies))  # fmt: skip
                    else:
                        row["label"] = "reference not run"
                row.update(_run_columns(cell["runs"], run_info))
            rows.append(row)
        axes = spec["axes"]
        ran = {cell_key(cell, axes) for cell in ours}
        why = f"not run at {scale} scale" + (f": {spec['note']}" if spec.get("note") and not ours else "")
        for values, accuracy in paper_cells(spec.get("paper")):
            if cell_key(values, axes) not in ran:
                rows.append({"part": part, "part_title": spec["title"], "reference": False,
                             **{key: values.get(key) for key in SETTING_COLUMNS}, "paper": accuracy, "status": why,
                             "scale": scale, "noise_std": sigma, "noise_seeds": noise_seeds, "commit": commit,
                             **{axis: values.get(axis) for axis in axes if axis not in SETTING_COLUMNS}})  # fmt: skip
    frame = pd.DataFrame(rows)
    extra = [column for column in frame.columns if column not in ABLATION_COLUMNS]  # axes outside SETTING_COLUMNS
    return frame.reindex(columns=ABLATION_COLUMNS + [column for column in extra if frame[column].notna().any()])


def _number(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)


AXIS_LABELS = {"t_max": "t_max", "num_slices": "slices", "knots": "knots", "views": "V", "n_global": "V_g",
               "n_local": "V_l", "batch_size": "batch", "proj_dim": "proj. dim", "proj_width": "proj. width",
               "lam": "lambda", "projector": "projector", "num_registers": "registers"}  # fmt: skip


def ablation_markdown(frame: pd.DataFrame, sweep: dict) -> str:
    """tables/table1.md: the scale, budget, seeds and noise rule, then one section per part: ours,
    the difference from the default cell and its label, the paper's number."""
    first = frame.iloc[0]
    ok = frame.dropna(subset=["accuracy"])
    scale = first["scale"]
    lines = [f"# {sweep['title']}", "", f"Paper: {sweep['claim']}", ""]
    reference = frame[frame.reference.fillna(False).astype(bool)]
    sigma, noise_seeds = first["noise_std"], int(first["noise_seeds"] or 0)
    if len(ok):
        run = ok.iloc[0]
        ref = reference.iloc[0]
        steps = "" if pd.isna(run.max_steps_per_epoch) else f", each epoch cut at {int(run.max_steps_per_epoch)} steps"
        default = ", ".join(f"{AXIS_LABELS.get(key, key)} {_number(getattr(ref, key))}" for key in
                            ("lam", "views", "n_global", "n_local", "t_max", "num_slices", "knots", "batch_size",
                             "projector") if not pd.isna(getattr(ref, key)))  # fmt: skip
        seeds = ("every other cell 1 seed" if (ok[~ok.reference.astype(bool)].seeds == 1).all()
                 else "other cells as the `seeds` column says")  # fmt: skip
        lines += [
            f"Scale **{scale}**, built at commit {first['commit']}. Ours: {run.backbone} pretrained on "
            f"{run.pretrain_dataset} at {int(run.resolution)} px, {int(run.epochs)} epoch(s){steps} of the cell's "
            f"batch (warm-up {_number(run.warmup_epochs)} epoch), probe `{run.probe}` on {run.dataset_label}. "
            f"Default cell: {default}; the default cell {noise_seeds} seeds, {seeds}. The paper: ViT-L/14, "
            f"ImageNet-1k, 100 epochs.",
            "",
        ]
        if np.isfinite(sigma):
            one = 2 * sigma * math.sqrt(1 + 1 / max(noise_seeds, 1))
            lines += [f"Seed noise: σ = {sigma:.2f} points (std of the default cell's {noise_seeds} seeds); "
                      f"{NOISE_RULE} (for a one-seed cell against the {noise_seeds}-seed default: "
                      f"|Δ| > {one:.2f} points).", ""]  # fmt: skip
        else:
            lines += [f"Seed noise: not measured (fewer than 2 seeds of the default cell have a result); "
                      f"{NOISE_RULE}.", ""]  # fmt: skip
        if scale != "paper":
            lines += [f"These are {scale}-scale runs, far shorter than the paper's and on another backbone and "
                      "dataset: the numbers are not a reproduction of the paper's; what they test is whether any "
                      "setting collapses and which differences exceed the seed noise.", ""]  # fmt: skip
    else:
        lines += [f"Scale **{scale}**, built at commit {first['commit']}. No cell of ours is computed; "
                  f"{NOISE_RULE}.", ""]  # fmt: skip
    for part, spec in sweep_parts(sweep).items():
        rows = frame[frame.part == part]
        axes = list(reversed(spec["axes"]))
        lines += [f"## {spec['title']}", ""]
        if spec.get("note") and not rows.reference.fillna(False).astype(bool).any():
            lines += [f"Not run at {scale} scale: {spec['note']}.", ""]
        header = [AXIS_LABELS.get(axis, axis) for axis in axes] + ["ours", "Δ vs default", "seed noise", "paper"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows.itertuples():
            if not pd.isna(row.accuracy):
                ours = f"{row.accuracy:.2f}" + (f" ± {row.std:.2f} ({int(row.seeds)} seeds)" if row.seeds > 1 else "")
            elif str(row.status).startswith("not run") or row.status == "ok":
                ours = "not run"
            else:
                ours = f"n/a ({row.status})"
            delta = "default" if row.reference else ("" if pd.isna(row.delta) else f"{row.delta:+.2f}")
            label = "" if pd.isna(row.label) or row.label == "reference" else row.label
            values = [_number(getattr(row, axis, None)) for axis in axes]
            lines.append("| " + " | ".join([*values, ours, delta, label, _number(row.paper)]) + " |")
        lines.append("")
        measured_rows = rows.dropna(subset=["accuracy"])
        if len(measured_rows) > 1:
            beyond = (measured_rows.label == "beyond seed noise").sum()
            spread = measured_rows.accuracy.max() - measured_rows.accuracy.min()
            text = (f"Ours: {len(measured_rows)} cells, spread {spread:.2f} points, {beyond} of "
                    f"{len(measured_rows) - 1} differences beyond seed noise")  # fmt: skip
            paper = rows.dropna(subset=["paper"]).paper
            if len(paper) > 1:
                text += f"; the paper's {len(paper)} cells: spread {paper.max() - paper.min():.2f} points"
            lines += [text + ".", ""]
    reasons = sorted({status for status in frame.status.dropna()
                      if status != "ok" and not status.startswith("not run")})  # fmt: skip
    if reasons:
        lines += ["## Cells not computed here", ""] + [f"- {reason}" for reason in reasons] + [""]
    if len(ok):
        runs = {run for entry in ok.runs for run in str(entry).split()}
        wall = sum(ok.drop_duplicates("runs").pretrain_wall_s.fillna(0))
        lines += ["## Runs", "", f"{len(runs)} pretraining runs, {wall / 60:.0f} min of pretraining in all, on "
                  f"{ok.iloc[0].pretrain_device}; per cell in tables/table1.csv (`runs`).", ""]  # fmt: skip
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
    """Figure 1 top-right's run: the most optimisation steps among the runs with a curve (at least
    3 logged epochs; all runs if none has), ties broken by name."""
    if pool.empty:
        return None
    runs = pool_runs(pool)
    epochs = pool.groupby("run").size()
    with_curve = runs[runs.run.map(epochs) >= 3]
    runs = with_curve if len(with_curve) else runs
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
