"""The settings of a pretraining run: their names, defaults and checks, and the command line.

Torch-free, so that the workflow plans (`resolve_run`) on a machine without torch, such as
a cluster's login node; `lejepa.train` re-exports everything here.

A run's config is one flat mapping: every key of TRAINING_KEYS (they change the result and
have no default) and any key of RUNTIME_DEFAULTS (they do not change the result).

    python -m lejepa.train --help                                    # every key, its default
    python -m lejepa.train --config config/examples/train_tiny.yaml --set epochs=3 --set lr=2e-3
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from pathlib import Path

import yaml

from lejepa.families import resolve_family_settings

# Keys that change the result: a checkpoint whose values differ is not resumed.
TRAINING_KEYS = {
    "dataset": "name of the prepared dataset (data/<dataset>/)",
    "backbone": "timm model name",
    "projector": "projector MLP sizes, e.g. '2048-2048-128'",
    "small_stem": "none | cifar | stride1_maxpool (lejepa.models)",
    "n_global": "global views per image (V_g)",
    "n_local": "local views per image (V_l)",
    "global_size": "global view side in pixels",
    "local_size": "local view side in pixels",
    "global_scale": "RandomResizedCrop area range of global views",
    "local_scale": "RandomResizedCrop area range of local views",
    "batch_size": "global batch size (all processes together)",
    "epochs": "training epochs",
    "warmup_epochs": "linear learning-rate warm-up, in epochs (may be fractional)",
    "lr": "peak AdamW learning rate",
    "final_lr_ratio": "the cosine ends at lr * final_lr_ratio (absent: 0)",
    "weight_decay": "AdamW weight decay (not on the online probe); a number or {vit: x, other: y} by backbone",
    "lam": "lambda: loss = (1 - lam) * prediction + lam * SIGReg",
    "num_slices": "SIGReg directions per step",
    "t_max": "Epps-Pulley integration range [0, t_max]",
    "knots": "Epps-Pulley quadrature points",
    "centers": "auto | global | all: the views whose mean every view predicts (algorithm 2; auto: all, ViTs global)",
    "seed": "seed of model init, data order and augmentations",
    "max_steps_per_epoch": "cut every epoch to this many steps (null: the whole dataset)",
    "patch_size": "ViT patch side in pixels (0: the timm name's; e.g. 4 or 8 for 32-64 px images)",
    "num_registers": "ViT register tokens (table 1e; 0: none)",
    "predictor": "predictor MLP hidden sizes, e.g. '2048': every view predicts the centre through it (none: off)",
    "swa_decay": "EMA decay of an averaged encoder that makes the centres and is saved (table 4's SWA; 0: off)",
}

# Training keys added after runs were trained with the engine: a config or checkpoint
# without one behaves as the engine did before it (the cosine annealed to 0).
# The ViT and table-4 keys (patch_size ... swa_decay) came later too: their defaults are "off".
ADDED_TRAINING_KEYS = {
    "final_lr_ratio": 0.0,
    "patch_size": 0,
    "num_registers": 0,
    "predictor": "none",
    "swa_decay": 0.0,
}

# Keys that do not change the result (a resumed run may change them).
RUNTIME_DEFAULTS = {
    "run": "unnamed",
    "scale": "custom",
    "data_dir": None,  # default data/<dataset>
    "out_dir": None,  # default runs/<run>
    "eval_split": None,  # e.g. "test": online-probe accuracy on it after each epoch
    "eval_every": 1,  # epochs between online-probe evaluations
    "device": "auto",  # auto | cpu | cuda
    "threads": 2,  # torch intra-op threads of each process
    "workers": "auto",  # DataLoader worker processes; auto: 0 on a CPU, threads on a GPU
    "checkpoint_minutes": 10.0,  # also checkpoint mid-epoch this often
    "checkpoint_every_steps": None,  # also checkpoint every this many steps (tests)
    "progress": True,  # tqdm bar
    "channels_last": "auto",  # auto (on CUDA only) | true | false: memory format of images and weights
    "compile": False,  # torch.compile the model's forward (same math; a one-off compile at the start)
    "tensorboard": False,  # also write metrics.csv's scalars to <out_dir>/tensorboard (needs tensorboard)
}

# Runtime keys that say how a run executes, not what it computes or writes: the workflow's pretrain
# rule leaves them out of its params (`result_settings`), so that moving a finished run to a GPU,
# another thread count or more data workers never plans it again.
EXECUTION_KEYS = ("device", "threads", "workers", "checkpoint_minutes", "checkpoint_every_steps", "progress",
                  "channels_last", "compile", "tensorboard")


# Resources of a run whose scale and run give none (Snakemake `threads` / `resources`).
DEFAULT_RESOURCES = {"threads": 2, "mem_mb": 4000, "runtime": 60, "gpus": 0, "slurm_extra": "", "nodes": 1,
                     "tasks_per_node": None}  # per node: threads, mem_mb, gpus (lejepa.launch)


# What each runtime key does (`python -m lejepa.train --help` prints it beside the default).
RUNTIME_HELP = {
    "run": "the run's name",
    "scale": "the scale of config/pretrain.yaml it came from (a label)",
    "data_dir": "the prepared dataset's folder (null: data/<dataset>)",
    "out_dir": "where checkpoint.pt, metrics.csv and final.pt go (null: runs/<run>)",
    "eval_split": "a split of the dataset (e.g. test) to score the online probe on after an epoch (null: none)",
    "eval_every": "epochs between online-probe evaluations",
    "device": "auto | cpu | cuda",
    "threads": "torch intra-op threads of each process",
    "workers": "DataLoader worker processes: a number, or auto (0 on a CPU, the process's threads on a GPU)",
    "checkpoint_minutes": "also checkpoint mid-epoch this often",
    "checkpoint_every_steps": "also checkpoint every this many steps (null: only by time and at epoch ends)",
    "progress": "show a progress bar (the whole run's ETA)",
    "channels_last": "auto (on CUDA only) | true | false: memory format of images and weights",
    "compile": "torch.compile the model's forward (same math; a one-off compile at the start)",
    "tensorboard": "also write metrics.csv's scalars to <out_dir>/tensorboard (needs the tensorboard package)",
}

KNOWN_KEYS = (*TRAINING_KEYS, *RUNTIME_DEFAULTS)


def nearest_key(key: str) -> str | None:
    """The known key closest to a misspelt one, or None when none is close."""
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(keys) -> str:
    """'unknown pretrain config key(s) ...', with the nearest known name of each."""
    hints = []
    for key in keys:
        near = nearest_key(key)
        hints.append(f"{key!r} (did you mean {near!r}?)" if near else repr(key))
    known = sorted(TRAINING_KEYS) + sorted(RUNTIME_DEFAULTS)
    return f"unknown pretrain config key(s) {', '.join(hints)}; known: {known}"


def check_config(config: dict) -> dict:
    """Complete runtime keys with defaults; reject missing or unknown keys by name."""
    unknown = sorted(set(config) - set(TRAINING_KEYS) - set(RUNTIME_DEFAULTS))
    if unknown:
        raise ValueError(unknown_key_message(unknown))
    missing = sorted(set(TRAINING_KEYS) - set(config) - set(ADDED_TRAINING_KEYS))
    if missing:
        raise ValueError(f"pretrain config is missing key(s) {missing}")
    defaults = {**RUNTIME_DEFAULTS, **ADDED_TRAINING_KEYS}
    ordered = ["run", "scale", *TRAINING_KEYS, *(k for k in RUNTIME_DEFAULTS if k not in ("run", "scale"))]
    config = {key: config[key] if key in config else defaults[key] for key in ordered}
    config["data_dir"] = config["data_dir"] or f"data/{config['dataset']}"
    config["out_dir"] = config["out_dir"] or f"runs/{config['run']}"
    config = resolve_family_settings(config)  # centers and weight_decay for this backbone (lejepa.families)
    if not isinstance(config["final_lr_ratio"], (int, float)) or not 0 <= config["final_lr_ratio"] <= 1:
        raise ValueError(f"final_lr_ratio must be a number in [0, 1], got {config['final_lr_ratio']!r}")
    if config["channels_last"] not in ("auto", True, False):
        raise ValueError(f"channels_last must be 'auto', true or false, got {config['channels_last']!r}")
    if not isinstance(config["tensorboard"], bool):
        raise ValueError(f"tensorboard must be true or false, got {config['tensorboard']!r}")
    check_head_settings(config)
    for key in ("batch_size", "epochs", "n_global", "global_size", "num_slices"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"{key} must be a positive integer, got {config[key]!r}")
    return config


def check_head_settings(config: dict) -> None:
    """patch_size, num_registers, predictor and swa_decay: off, or a value that makes sense."""
    patch_size, registers = config["patch_size"], config["num_registers"]
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 0:
        raise ValueError(f"patch_size must be 0 (the backbone's own) or a positive integer, got {patch_size!r}")
    if isinstance(registers, bool) or not isinstance(registers, int) or registers < 0:
        raise ValueError(f"num_registers must be an integer >= 0, got {registers!r}")
    predictor = config["predictor"]
    if predictor != "none" and not re.fullmatch(r"[1-9][0-9]*(-[1-9][0-9]*)*", str(predictor)):
        raise ValueError(f"predictor must be 'none' or hidden sizes such as '2048' or '512-512', got {predictor!r}")
    decay = config["swa_decay"]
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
        raise ValueError(f"swa_decay must be 0 (off) or a number in (0, 1), got {decay!r}")


def resolve_run(pretrain: dict, run: str, *, default_scale: str = "small") -> tuple[dict, dict]:
    """config/pretrain.yaml's `pretrain` section + a run name -> (flat training config, resources).

    A run = {dataset, backbone, scale (optional), resources (optional), any key of
    TRAINING_KEYS or RUNTIME_DEFAULTS}; the scale's `settings` fill in the rest.
    """
    runs = pretrain.get("runs", {})
    if run not in runs:
        raise ValueError(f"pretrain run {run!r} is not defined in config (pretrain.runs); defined: {sorted(runs)}")
    spec = dict(runs[run])
    scale = spec.pop("scale", default_scale)
    scales = pretrain.get("scales", {})
    if scale not in scales:
        raise ValueError(f"pretrain run {run!r}: unknown scale {scale!r}; defined: {sorted(scales)}")
    resources = {**DEFAULT_RESOURCES, **scales[scale].get("resources", {}), **spec.pop("resources", {})}
    config = {**scales[scale]["settings"], **spec, "run": run, "scale": scale}
    try:
        config = check_config(config)
    except ValueError as error:
        raise ValueError(f"pretrain run {run!r}: {error}") from None
    # A key added since a run was trained is left out while it holds its old behaviour, so the
    # workflow's params (this config) of that run stay what Snakemake recorded when it trained.
    added = ADDED_TRAINING_KEYS
    return {k: v for k, v in config.items() if k not in added or v != added[k]}, resources


def resolve_workflow_run(config: dict, run: str) -> tuple[dict, dict]:
    """The workflow's config (config/*.yaml merged) + a run name -> resolve_run's (settings,
    resources), at the config's `scale` unless the run names its own."""
    return resolve_run(config["pretrain"], run, default_scale=config.get("scale", "small"))


def result_settings(settings: dict) -> dict:
    """A run's settings without EXECUTION_KEYS: what the pretrain rule's params track."""
    return {key: value for key, value in settings.items() if key not in EXECUTION_KEYS}


def load_config(path: str | os.PathLike) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read pretrain config {path}: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a mapping of pretrain settings, got {type(config).__name__}")
    return config


# ---- the command line ------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_value(text: str):
    """A --set value, read as YAML ('null', 'true', '[0.3, 1.0]', '16'); a number YAML 1.1
    reads as a string ('1e-3') is a float, as YAML 1.2 reads it."""
    value = yaml.safe_load(text)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def parse_overrides(pairs) -> dict:
    """['lr=1e-3', 'global_scale=[0.3, 1.0]'] -> {'lr': 0.001, 'global_scale': [0.3, 1.0]}.
    A pair without '=' or a key that is not a setting is a ValueError naming it (and the
    nearest setting)."""
    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        if key not in KNOWN_KEYS:
            near = nearest_key(key)
            hint = f"; did you mean {near!r}?" if near else ""
            raise ValueError(f"--set {key}: unknown setting{hint} (python -m lejepa.train --help lists them)")
        try:
            overrides[key] = parse_value(text)
        except yaml.YAMLError as error:
            raise ValueError(f"--set {key}: cannot read {text!r} as a YAML value ({error})") from None
    return overrides


def _show(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def settings_help() -> str:
    """Every setting, its default and what it does (the epilog of --help)."""
    width = max(len(key) for key in KNOWN_KEYS)
    lines = ["training settings (default or 'required', then what it does; a checkpoint made with other values",
             "is not resumed):"]  # fmt: skip
    lines += [
        f"  {key:<{width}}  {_show(ADDED_TRAINING_KEYS[key]) if key in ADDED_TRAINING_KEYS else 'required':<8} {text}"
        for key, text in TRAINING_KEYS.items()
    ]
    lines += ["", "runtime settings (default, then what it does; a resumed run may change them):"]
    lines += [f"  {key:<{width}}  {_show(RUNTIME_DEFAULTS[key]):<8} {RUNTIME_HELP[key]}" for key in RUNTIME_DEFAULTS]
    lines += [
        "",
        "Set them in the --config file, or with --set key=value (repeatable, YAML values, applied after the",
        "file). Example: python -m lejepa.train --config config/examples/train_tiny.yaml --set epochs=1",
    ]
    return "\n".join(lines)


def build_parser(description: str = "LeJEPA pretraining") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lejepa.train",
        description=description,
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="flat YAML file of settings, e.g. runs/<run>/config.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable); the value is read as YAML",
    )
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> dict:
    """--config's mapping with every --set laid over it (no --config: --set gives them all)."""
    config = load_config(arguments.config) if arguments.config else {}
    return {**config, **parse_overrides(arguments.overrides)}
