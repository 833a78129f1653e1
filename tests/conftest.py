"""Fixtures, reference computations and helpers that several test files share (they import
write_tiny_dataset, tiny_train_config, copy_workflow, run_snakemake, output_of and write_yaml
from here).

Tests that need ../shared (the offline dataset mirror, the paper's targets, the local
Slurm script; CI has it beside the repository) ask `require_shared`: it skips naming the
missing path and why it is needed, and fails instead when the environment variable CI is set.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lejepa.data.format import encode_jpeg, sha256_of, split_file, write_meta, write_split
from lejepa.train_config import KNOWN_KEYS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _require_shared(relative: str, why: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        message = f"needs {path} ({why}), from ../shared beside the repository"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so ../shared must be there: {message}", pytrace=False)
        pytest.skip(message)
    return path


# Snakemake loads every installed executor plugin at each start, and the Slurm plugin then asks
# `scontrol show config` for MinJobAge. Where Slurm's client tools are installed but no controller
# runs (CI, the project's machine) scontrol retries for about 9 s before it fails, and the plugin
# falls back to its default. So outside the Slurm tests a stand-in that fails at once on `show
# config` (and runs the real scontrol otherwise) comes first on PATH: a Snakemake start takes ~1 s
# instead of ~10. test_slurm.py takes it off PATH for its cluster (`real_slurm_path`).
FAST_SCONTROL = """#!/bin/sh
if [ "$1" = "show" ] && [ "$2" = "config" ]; then
    echo "scontrol show config: no Slurm controller outside the Slurm tests (tests/conftest.py)" >&2
    exit 1
fi
exec {real} "$@"
"""


@pytest.fixture(scope="session", autouse=True)
def fast_scontrol(tmp_path_factory):
    """Puts the stand-in scontrol first on PATH for the session; yields its folder (None when
    Slurm's scontrol is not installed: nothing to stand in for)."""
    real = shutil.which("scontrol")
    if real is None:
        yield None
        return
    folder = tmp_path_factory.mktemp("fast_scontrol")
    (folder / "scontrol").write_text(FAST_SCONTROL.format(real=real))
    (folder / "scontrol").chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
        yield folder


def real_slurm_path(fast_scontrol_folder) -> str:
    """PATH without the stand-in scontrol of `fast_scontrol`."""
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(fast_scontrol_folder))


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (restored after): tests of many tiny tensor ops."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def require_shared():
    """require_shared(path under ../shared, why the test needs it) -> the path; skips when it
    is missing (fails when CI is set)."""
    return _require_shared


def _epps_pulley_numpy(x, t_max=3.0, knots=17):
    """Official Epps-Pulley per column of x (N, M), direct cos/sin in float64."""
    t = np.linspace(0, t_max, knots)
    dt = t_max / (knots - 1)
    weights = np.full(knots, 2 * dt)
    weights[[0, -1]] = dt
    phi = np.exp(-(t**2) / 2)
    angles = x[:, :, None] * t
    err = (np.cos(angles).mean(0) - phi) ** 2 + np.sin(angles).mean(0) ** 2
    return x.shape[0] * err @ (weights * phi)


@pytest.fixture(scope="session")
def epps_pulley_numpy():
    """epps_pulley_numpy(x (N, M), t_max=3.0, knots=17) -> (M,): the official Epps-Pulley
    statistic written out in numpy (the reference of SIGReg and the loss)."""
    return _epps_pulley_numpy


def value_and_gradient(function, z):
    """function(z) and its gradient wrt z, on a float64 copy of z, both on the CPU."""
    import torch  # conftest stays importable without torch (tests/test_without_torch.py)

    z = z.detach().double().requires_grad_(True)
    value = function(z)
    (gradient,) = torch.autograd.grad(value, z)
    return value.detach().cpu(), gradient.cpu()


def write_tiny_dataset(root: Path, *, classes: int) -> Path:
    """<root>: 96 train / 32 test 20-px JPEGs in the prepared-dataset format; the class
    sets the dominant colour."""
    rng = np.random.default_rng(0)
    meta = {"name": root.name, "classes": [f"class{i}" for i in range(classes)], "splits": {}, "sha256": {}}
    for split, n in (("train", 96), ("test", 32)):
        samples = []
        for label in rng.integers(0, classes, n):
            image = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
            image[..., label % 3] += 150
            samples.append((encode_jpeg(image), int(label)))
        write_split(split_file(root, split), samples)
        meta["splits"][split] = n
        meta["sha256"][f"{split}.npz"] = sha256_of(split_file(root, split))
    write_meta(meta, root)
    return root


# The settings of a tiny pretraining on `write_tiny_dataset` (test_resnet, 16-px global and 8-px
# local views, batch 16: 6 steps per epoch of its 96 images), on one CPU thread, no progress bar.
TINY_TRAIN_CONFIG = dict(
    run="tiny", dataset="tiny", backbone="test_resnet", projector="32-16", small_stem="none",
    n_global=2, n_local=2, global_size=16, local_size=8, global_scale=[0.3, 1.0], local_scale=[0.05, 0.3],
    batch_size=16, epochs=2, warmup_epochs=0.5, max_steps_per_epoch=None,
    lr=1e-3, weight_decay=0.05, lam=0.05, num_slices=32, t_max=3.0, knots=17, centers="global", seed=0,
    eval_split=None, device="cpu", threads=1, workers=0, progress=False,
)  # fmt: skip


def tiny_train_config(data_dir="", out_dir="", **overrides) -> dict:
    """A lejepa.train config: TINY_TRAIN_CONFIG with data_dir, out_dir and ``overrides`` laid
    over it. An override that is no setting of lejepa.train is refused (a misspelt key would
    otherwise test nothing)."""
    unknown = sorted(set(overrides) - set(KNOWN_KEYS))
    if unknown:
        raise TypeError(f"tiny_train_config: {unknown} are not settings of lejepa.train")
    return {**TINY_TRAIN_CONFIG, "data_dir": str(data_dir), "out_dir": str(out_dir), **overrides}


def copy_workflow(copy: Path) -> Path:
    """The workflow's files (no outputs, no .snakemake) copied into ``copy``."""
    copy.mkdir()
    for name in ("Snakefile", "environment.yml"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, copy / name)
    for name in ("workflow", "config", "slurm"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """<root>/tiny: `write_tiny_dataset` with 4 classes (read only: tests share it)."""
    root = tmp_path_factory.mktemp("data")
    write_tiny_dataset(root / "tiny", classes=4)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_data_root) -> Path:
    """The prepared dataset of `tiny_data_root`."""
    return tiny_data_root / "tiny"


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """The workflow's files (no outputs, no .snakemake) in a temporary directory."""
    return copy_workflow(tmp_path / "workflow_copy")


# The tiny scale of config/pretrain.yaml and config/probe.yaml cut further for the tests that
# build a whole table through Snakemake (a --configfile laid over the shipped config): 16-px
# global and 8-px local views (features are extracted at 16 px: a quarter of the network's
# compute at 32 px), one step per epoch (the epochs stay), one few-shot subset, two L2 strengths for the
# linear probe's search. The DAG, its jobs and the tables' columns are those of the tiny scale.
FASTER_TINY_SCALE = {
    "pretrain": {"scales": {"tiny": {"settings": {"global_size": 16, "local_size": 8, "max_steps_per_epoch": 1}}}},
    "probe": {
        "few_shot": {"seeds": [0]},
        "scales": {"tiny": {"linear": {"folds": 2, "max_iter": 50, "l2_grid": [1e-2, 1e-4]}}},
    },
}


# Snakemake in a subprocess, for the tests that drive the workflow (test_workflow.py and others).


def run_snakemake(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run snakemake; ``--configfile`` takes several values, so pass it last."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def write_yaml(data: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def crash_at_step(train, config: dict, *, step: int, monkeypatch) -> None:
    """Run lejepa.train ``config`` until it crashes at ``step`` (train_step raises there), and
    restore train_step: calling train.main(config) again is a rerun after a crash."""
    real_step = train.train_step

    def crash_at(*args, state, **kwargs):
        if state.step == step:
            raise RuntimeError("simulated crash")
        return real_step(*args, state=state, **kwargs)

    monkeypatch.setattr(train, "train_step", crash_at)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.main(config)
    monkeypatch.setattr(train, "train_step", real_step)
