"""The pretraining engine (lejepa.train) on a tiny generated dataset, on CPU:
end to end, bit-identical resume after kill -9, 2-process DDP == 1 process,
NaN stop, the schedule, the sampler, and the config of config/pretrain.yaml."""

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import tiny_train_config

from lejepa import train
from lejepa.data import EncodedImages
from lejepa.devices import resolve_workers
from lejepa.models import load_encoder
from lejepa.train_config import check_config

REPO = Path(__file__).resolve().parents[1]
CLASSES = 4  # of conftest's tiny_dataset


def write_config(config, path):
    path.write_text(yaml.safe_dump(config))
    return path


def subprocess_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------- pieces


def test_learning_rate_warmup_then_cosine():
    kwargs = dict(peak=2.0, warmup_steps=4, total_steps=14)
    assert [train.learning_rate(s, **kwargs) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]
    assert train.learning_rate(4, **kwargs) == 2.0  # cosine starts at the peak
    assert math.isclose(train.learning_rate(9, **kwargs), 1.0)  # halfway: cos(pi/2)
    assert math.isclose(train.learning_rate(14, **kwargs), 0.0, abs_tol=1e-12)
    assert train.learning_rate(0, peak=1.0, warmup_steps=0, total_steps=10) == 1.0


def test_sampler_ranks_split_the_one_process_batches():
    dataset = list(range(40))
    batch = 8
    one = list(train.ResumableSampler(dataset, num_replicas=1, rank=0, seed=3))
    ranks = [list(train.ResumableSampler(dataset, num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    assert all(epoch == 0 for epoch, _ in one)
    assert sorted(i for _, i in one) == dataset
    for step in range(len(dataset) // batch):
        step_one = {i for _, i in one[step * batch : (step + 1) * batch]}
        half = batch // 2
        step_two = {i for r in ranks for _, i in r[step * half : (step + 1) * half]}
        assert step_one == step_two  # the global batch of every step is the same set of images

    sampler = train.ResumableSampler(dataset, num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert all(epoch == 1 for epoch, _ in epoch1) and epoch1 != [(1, i) for _, i in one]
    sampler.set_epoch(1, skip=16)
    assert list(sampler) == epoch1[16:] and len(sampler) == 24


def test_workers_auto_is_none_on_a_cpu_and_one_per_thread_on_a_gpu(tiny_dataset):
    assert resolve_workers("auto", device="cpu", threads=2) == 0
    assert resolve_workers("auto", device="cuda", threads=8) == 8
    assert resolve_workers(3, device="cpu", threads=2) == 3
    for bad in (-1, "two", True, 1.5):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            resolve_workers(bad, device="cpu", threads=2)
    config = check_config(tiny_train_config(tiny_dataset, workers="auto"))
    cpu = train.Processes(world_size=1, rank=0, device=torch.device("cpu"))
    loader, _, _ = train.make_train_loader(config, EncodedImages(tiny_dataset, "train"), cpu)
    assert loader.num_workers == 0 and not loader.persistent_workers


def test_config_errors_name_the_key(tiny_dataset, tmp_path):
    config = tiny_train_config(tiny_dataset, tmp_path)
    with pytest.raises(ValueError, match="lrr"):
        train.check_config({**config, "lrr": 1.0})
    missing = dict(config)
    del missing["lam"]
    with pytest.raises(ValueError, match="lam"):
        train.check_config(missing)
    with pytest.raises(ValueError, match="centers"):
        train.check_config({**config, "centers": "local"})
    with pytest.raises(ValueError, match="channels_last.*'yes'"):
        train.check_config({**config, "channels_last": "yes"})
    pretrain = {
        "scales": {"s": {"settings": {k: v for k, v in config.items() if k not in ("run",)}}},
        "runs": {"r": {"scale": "s"}},
    }
    assert train.resolve_run(pretrain, "r")[0]["out_dir"] == str(tmp_path)
    with pytest.raises(ValueError, match="'nope'"):
        train.resolve_run(pretrain, "nope")
    pretrain["runs"]["r"]["scale"] = "huge"
    with pytest.raises(ValueError, match="huge"):
        train.resolve_run(pretrain, "r")


def test_pretrain_schema_and_the_engine_know_the_same_keys():
    """workflow/schemas/pretrain.schema.yaml validates what lejepa.train.check_config takes:
    every TRAINING_KEYS and RUNTIME_DEFAULTS key except those the workflow sets itself."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "pretrain.schema.yaml").read_text())
    settings = set(schema["$defs"]["settings"]["properties"])
    set_by_the_workflow = {"run", "scale", "data_dir", "out_dir", "threads"}  # run name, scale, paths, resources
    assert settings == (set(train.TRAINING_KEYS) | set(train.RUNTIME_DEFAULTS)) - set_by_the_workflow
    assert "scale" in schema["properties"]["runs"]["additionalProperties"]["properties"]
    assert set(schema["$defs"]["resources"]["properties"]) == set(train.DEFAULT_RESOURCES)


def test_every_configured_run_resolves():
    from snakemake.utils import validate

    pretrain = yaml.safe_load((REPO / "config/pretrain.yaml").read_text())["pretrain"]
    validate(pretrain, str(REPO / "workflow/schemas/pretrain.schema.yaml"), set_default=False)
    for run in pretrain["runs"]:
        config, resources = train.resolve_run(pretrain, run)
        assert config["out_dir"] == f"runs/{run}" and config["data_dir"] == f"data/{config['dataset']}"
        assert {"threads", "mem_mb", "runtime", "gpus"} <= set(resources)
    small = train.resolve_run(pretrain, "cifar10_resnet18")[0]
    assert (small["backbone"], small["global_size"], small["local_size"], small["n_global"], small["n_local"]) == (
        "resnet18",
        32,
        16,
        2,
        2,  # 2 local views since recipe.jsonl row 20 (docs/recipe.md)
    )
    assert (small["batch_size"], small["lr"], small["lam"], small["num_slices"]) == (256, 2e-3, 0.02, 256)
    assert small["projector"] == "512-512-128"  # docs/recipe.md


# ---------------------------------------------------------------- end to end


def test_end_to_end_tiny_pretrain(tiny_dataset, tmp_path):
    config = tiny_train_config(tiny_dataset, tmp_path / "run", eval_split="test", epochs=3)
    final = train.main(config)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics.columns) == [
        "epoch", "step", "loss", "prediction", "sigreg", "online_acc", "online_eval_acc", "lr", "img_per_s", "wall_s",
    ]  # fmt: skip
    assert metrics["epoch"].tolist() == [1, 2, 3] and metrics["step"].tolist() == [6, 12, 18]  # 96 images / 16
    assert np.isfinite(metrics[["loss", "prediction", "sigreg", "online_acc", "online_eval_acc"]].to_numpy()).all()
    # the logged loss is the loss's own combination of its terms (averaged per epoch, so exact up to rounding)
    np.testing.assert_allclose(metrics["loss"], 0.95 * metrics["prediction"] + 0.05 * metrics["sigreg"], rtol=1e-5)
    assert metrics["wall_s"].is_monotonic_increasing and (metrics["img_per_s"] > 0).all()

    encoder, run_config = load_encoder(final)
    assert run_config["backbone"] == "test_resnet"
    with torch.no_grad():
        features, embedding = encoder(torch.randn(2, 3, 16, 16))
    assert features.shape == (2, encoder.feature_dim) and embedding.shape == (2, 16)
    assert train.main(config) == final  # finished: a rerun does nothing


def test_changed_settings_start_afresh(tiny_dataset, tmp_path):
    config = tiny_train_config(tiny_dataset, tmp_path, epochs=1, max_steps_per_epoch=2)
    train.main(config)
    (tmp_path / "final.pt").unlink()  # as Snakemake does before rerunning a job whose params changed
    changed = {**config, "lr": 5e-4, "threads": 2}
    train.main(changed)
    assert (tmp_path / "checkpoint.stale.pt").exists()
    assert load(tmp_path / "final.pt")["config"]["lr"] == 5e-4
    # a runtime-only change (threads, workers, ...) resumes instead: nothing left to train
    (tmp_path / "final.pt").unlink()
    train.main({**changed, "threads": 1, "workers": 1})
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 1


def test_channels_last_changes_the_memory_format_not_the_training(tiny_dataset, tmp_path):
    overrides = dict(epochs=1, max_steps_per_epoch=3)
    standard = train.main(tiny_train_config(tiny_dataset, tmp_path / "standard", channels_last=False, **overrides))
    nhwc = train.main(tiny_train_config(tiny_dataset, tmp_path / "nhwc", channels_last=True, **overrides))
    standard, nhwc = load(standard), load(nhwc)
    assert nhwc["encoder"].keys() == standard["encoder"].keys()
    for key, value in standard["encoder"].items():  # other convolution kernels: float32 rounding only
        torch.testing.assert_close(nhwc["encoder"][key], value, rtol=1e-3, atol=1e-4, msg=key)


def test_non_finite_loss_stops_with_the_terms_and_keeps_the_checkpoint(tiny_dataset, tmp_path):
    # lr 1e30: the first AdamW step sends the weights to ~1e30, the next loss overflows
    config = tiny_train_config(tiny_dataset, tmp_path, lr=1e30, warmup_epochs=0, checkpoint_every_steps=1)
    with pytest.raises(train.NonFiniteLoss, match=r"step 1 .*prediction=.*sigreg=") as error:
        train.main(config)
    assert str(tmp_path / "checkpoint.pt") in str(error.value)
    checkpoint = load(tmp_path / "checkpoint.pt")
    assert checkpoint["step"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["encoder"].values() if v.is_floating_point())
    assert not (tmp_path / "final.pt").exists()


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_is_bit_identical(tiny_dataset, tmp_path):
    reference = train.main(tiny_train_config(tiny_dataset, tmp_path / "reference", epochs=4, checkpoint_every_steps=1))

    out_dir = tmp_path / "killed"
    config_path = write_config(
        tiny_train_config(tiny_dataset, out_dir, epochs=4, checkpoint_every_steps=1), tmp_path / "config.yaml"
    )
    command = [sys.executable, "-m", "lejepa.train", "--config", str(config_path)]
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            checkpoint = load(out_dir / "checkpoint.pt")
        except (FileNotFoundError, EOFError, RuntimeError):
            checkpoint = None
        if checkpoint and checkpoint["epoch"] >= 1 and checkpoint["batch_in_epoch"] >= 1:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed_at = (checkpoint["epoch"], checkpoint["batch_in_epoch"])
            break
        time.sleep(0.01)
    if killed_at is None:
        process.kill()
        pytest.fail(
            f"the run ended (rc {process.returncode}) before it could be killed mid-epoch: "
            f"{process.stderr.read()[-2000:]}"
        )
    assert process.returncode == -signal.SIGKILL
    assert not (out_dir / "final.pt").exists()
    resume = load(out_dir / "checkpoint.pt")
    assert resume["batch_in_epoch"] >= 1  # the rerun starts inside an epoch

    rerun = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed" in rerun.stdout
    expected, resumed = load(reference), load(out_dir / "final.pt")
    assert_same_tensors(expected["encoder"], resumed["encoder"])
    assert_same_tensors(expected["probe"], resumed["probe"])
    columns = ["epoch", "step", "loss", "prediction", "sigreg", "online_acc", "lr"]
    pd.testing.assert_frame_equal(
        pd.read_csv(reference.parent / "metrics.csv")[columns],
        pd.read_csv(out_dir / "metrics.csv")[columns],
        check_exact=True,
    )


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tiny_dataset, tmp_path):
    """Same global batch of 16 on 1 process vs 2 gloo processes x 8 (GlobalBatchNorm, the
    all-reduced SIGReg, DDP's gradient average): same losses, gradients and weights.

    AdamW normalises each update to about lr, so gradients that are zero up to rounding
    give steps of up to ~lr that differ between the two runs; lr = 1e-4 keeps those below
    the 1e-5 tolerance. Since AdamW's update ignores the gradient's scale, the gradients
    themselves are compared through AdamW's first moment (exp_avg, proportional to them)."""
    overrides = dict(epochs=1, max_steps_per_epoch=3, lr=1e-4, warmup_epochs=0)
    one = train.main(tiny_train_config(tiny_dataset, tmp_path / "one", **overrides))
    config_path = write_config(tiny_train_config(tiny_dataset, tmp_path / "two", **overrides), tmp_path / "config.yaml")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "lejepa.train", "--config", str(config_path)]  # fmt: skip
    result = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    expected, distributed = load(one), load(tmp_path / "two" / "final.pt")
    for key in ("loss", "prediction", "sigreg", "online_acc"):
        assert math.isclose(expected["history"][0][key], distributed["history"][0][key], rel_tol=1e-5), key
    for part in ("encoder", "probe"):
        for key, value in expected[part].items():
            if value.is_floating_point():
                torch.testing.assert_close(distributed[part][key], value, atol=1e-5, rtol=0, msg=f"{part}.{key}")
    # gradients: AdamW's first moments, stored in the end-of-epoch checkpoints
    moments_one = load(tmp_path / "one" / "checkpoint.pt")["optimizer"]["state"]
    moments_two = load(tmp_path / "two" / "checkpoint.pt")["optimizer"]["state"]
    assert moments_one.keys() == moments_two.keys()
    for index in moments_one:
        a, b = moments_one[index]["exp_avg"], moments_two[index]["exp_avg"]
        assert (a - b).abs().max() <= 1e-3 * a.abs().max() + 1e-12, f"gradient of parameter {index} differs"
    # and training did something: the weights moved by far more than the tolerance
    torch.manual_seed(0)  # the engine's initialisation
    start = train.encoder_from_config(expected["config"]).state_dict()
    change = max((expected["encoder"][k] - start[k]).abs().max().item() for k in start if start[k].is_floating_point())
    assert change > 1e-4


# ---------------------------------------------------------------- the command line, progress, TensorBoard


def cli(*args, env=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lejepa.train", *args]
    return subprocess.run(command, env=env or subprocess_env(), capture_output=True, text=True, timeout=600)


def test_help_lists_every_setting_with_its_default():
    shown = cli("--help")
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line.split(maxsplit=2)[1:] for line in shown.stdout.splitlines() if line.startswith("  ")}
    for key in train.TRAINING_KEYS:
        default = "required" if key not in train.ADDED_TRAINING_KEYS else str(train.ADDED_TRAINING_KEYS[key])
        assert lines[key][0] == default, key
    for key, default in train.RUNTIME_DEFAULTS.items():
        assert lines[key][0] == yaml.safe_dump(default).removesuffix("\n...\n").strip(), key
    assert "--set KEY=VALUE" in shown.stdout and "config/examples/train_tiny.yaml" in shown.stdout


def test_set_values_are_yaml_and_unknown_keys_name_the_nearest_setting():
    from lejepa.train_config import parse_overrides

    pairs = ["lr=1e-3", "global_scale=[0.2, 1.0]", "eval_split=null", "progress=false", "epochs=3", "run=a=b"]
    assert parse_overrides(pairs) == {"lr": 0.001, "global_scale": [0.2, 1.0], "eval_split": None,
                                      "progress": False, "epochs": 3, "run": "a=b"}  # fmt: skip
    refused = cli("--set", "lrr=1e-3")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        "error: --set lrr: unknown setting; did you mean 'lr'? (python -m lejepa.train --help lists them)"
    )
    missing = cli("--set", "lr=1e-3")
    assert missing.returncode == 2 and "error: pretrain config is missing key(s) ['backbone', " in missing.stderr
    assert cli("--set", "epochs").stderr.strip().endswith("error: --set expects key=value, got 'epochs'")


def test_example_config_is_complete_and_runs_through_the_cli_with_set(tiny_dataset, tmp_path):
    """config/examples/train_tiny.yaml, pointed by --set at the tiny dataset and made smaller: the CLI
    trains the same weights as lejepa.train.main given the same settings, and its epoch lines say
    how far the whole run is."""
    example = REPO / "config/examples/train_tiny.yaml"
    config = train.load_config(example)
    assert set(train.TRAINING_KEYS) - set(train.ADDED_TRAINING_KEYS) <= set(config)
    train.check_config(config)
    smaller = dict(data_dir=str(tiny_dataset), out_dir=str(tmp_path / "cli"), backbone="test_resnet", projector="32-16",
                   global_size=16, local_size=8, batch_size=16, max_steps_per_epoch=2, num_slices=16, threads=1,
                   progress=False, eval_split=None)  # fmt: skip
    sets = [f"{key}={yaml.safe_dump(value, default_flow_style=True).removesuffix(chr(10) + '...' + chr(10)).strip()}"
            for key, value in smaller.items()]  # fmt: skip
    ran = cli("--config", str(example), *[arg for pair in sets for arg in ("--set", pair)])
    assert ran.returncode == 0, ran.stderr[-3000:]
    reference = train.main({**config, **smaller, "out_dir": str(tmp_path / "reference")})
    expected, found = load(reference), load(tmp_path / "cli" / "final.pt")
    assert_same_tensors(expected["encoder"], found["encoder"])
    assert_same_tensors(expected["probe"], found["probe"])
    assert found["config"]["backbone"] == "test_resnet" and found["config"]["epochs"] == config["epochs"]
    progress = re.findall(r"^run example_tiny: step (\d+)/(\d+), about (\S+) left$", ran.stdout, re.MULTILINE)
    total = config["epochs"] * 2
    epochs = range(1, config["epochs"] + 1)
    assert [(int(step), int(of)) for step, of, _ in progress] == [(2 * epoch, total) for epoch in epochs]
    assert progress[-1][2] == "0s"  # nothing left after the last epoch


def test_tensorboard_without_the_package_names_the_setting(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as without the package
    with pytest.raises(ImportError) as raised:
        train.main(tiny_train_config(tiny_dataset, tmp_path / "run", tensorboard=True))
    message = str(raised.value)
    assert message.startswith("the setting tensorboard: true needs the tensorboard package, which cannot be imported")
    assert message.endswith("install it (pip install tensorboard, or pip install -e '.[tensorboard]') "
                            "or set tensorboard: false")  # fmt: skip
    assert not (tmp_path / "run").exists()  # stopped before any work


def test_the_workflow_params_leave_out_only_the_execution_keys():
    """result_settings (the pretrain rule's params) drops how a run executes and keeps what it computes."""
    pretrain = {"scales": {"s": {"settings": tiny_train_config("d", "o")}}, "runs": {"r": {"scale": "s"}}}
    settings, _ = train.resolve_run(pretrain, "r")
    tracked = train.result_settings(settings)
    assert set(settings) - set(tracked) == set(train.EXECUTION_KEYS)
    assert set(train.TRAINING_KEYS) - set(train.ADDED_TRAINING_KEYS) <= set(tracked)
    assert {"run", "scale", "data_dir", "out_dir", "eval_split", "eval_every"} <= set(tracked)
    with pytest.raises(ValueError, match="tensorboard must be true or false, got 'yes'"):
        train.check_config({**tiny_train_config("d", "o"), "tensorboard": "yes"})


def test_tensorboard_holds_the_scalars_of_metrics_csv(tiny_dataset, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install -e '.[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    config = tiny_train_config(tiny_dataset, out, epochs=2, max_steps_per_epoch=2, eval_split="test", tensorboard=True)
    train.main(config)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    metrics = pd.read_csv(out / "metrics.csv")
    columns = [c for c in metrics.columns if c not in ("epoch", "step")]
    assert sorted(events.Tags()["scalars"]) == sorted(columns)
    for column in columns:
        logged = [(e.step, e.value) for e in events.Scalars(column)]
        expected = [(int(s), float(np.float32(v))) for s, v in zip(metrics["step"], metrics[column])]
        assert logged == expected, column
