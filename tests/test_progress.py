"""Progress in the logs: the probes' L2 search and fine-tuning say what they have done and
how long the rest will take (lejepa.progress). The logged numbers are checked against the
results the functions return, not against clocks."""

import logging
import re

import numpy as np
import pytest
import torch

from lejepa import probe
from lejepa.progress import ProgressClock, format_duration, time_left

DURATION = r"(\d+s|\d+m\d\ds|\d+h\d\dm|\?)"


def test_format_duration_and_time_left():
    assert [format_duration(s) for s in (0, 12.4, 59.6, 185, 3599, 7384)] == ["0s", "12s", "1m00s", "3m05s",
                                                                          "59m59s", "2h03m"]  # fmt: skip
    assert format_duration(float("nan")) == format_duration(-1) == "?"
    assert time_left(10.0, 2, 3) == 15.0
    assert np.isnan(time_left(0.0, 0, 3))
    clock = ProgressClock(4, start=0.0)  # started long ago: every step is slow
    assert re.fullmatch(rf"3/4, {DURATION}, about {DURATION} left", clock.done(3))
    assert ProgressClock(4).done(0).endswith("about ? left")


def test_linear_probe_logs_every_strength_of_its_l2_search(caplog):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(np.int64)
    grid = (1.0, 0.1, 0.01, 0.001)
    with caplog.at_level(logging.INFO, logger="lejepa.probe"):
        result = probe.linear(x[:80], y[:80], x[80:], y[80:], l2_grid=grid, patience=len(grid), folds=3,
                              device="cpu")  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "lejepa.probe"]
    pattern = re.compile(
        rf"L2 search: l2 (\S+) held-out accuracy (\S+)% \(best (\S+)% at l2 (\S+)\); "
        rf"strength (\d+)/(\d+), {DURATION}, about {DURATION} left at most"
    )
    matches = [pattern.fullmatch(line) for line in lines]
    assert all(matches) and len(matches) == len(grid), lines
    accuracies = result["selection_accuracy"]
    assert [float(m[1]) for m in matches] == [float(f"{s:.3g}") for s in sorted(grid, reverse=True)]
    assert [m[2] for m in matches] == [f"{accuracies[s]:.2f}" for s in sorted(grid, reverse=True)]
    assert [(int(m[5]), int(m[6])) for m in matches] == [(i, len(grid)) for i in range(1, len(grid) + 1)]
    best = max(accuracies.values())
    assert matches[-1][3] == f"{best:.2f}"
    assert float(matches[-1][4]) == float(f"{max(s for s, a in accuracies.items() if a == best):.3g}")


def test_fine_tuning_logs_every_epoch_with_its_loss(caplog):
    torch.manual_seed(0)
    images = torch.randn(40, 3, 8, 8)
    labels = (images[:, 0].mean((1, 2)) > 0).long()
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    train = torch.utils.data.TensorDataset(images[:30], labels[:30])
    test = torch.utils.data.TensorDataset(images[30:], labels[30:])
    with caplog.at_level(logging.INFO, logger="lejepa.probe"):
        result = probe.fine_tune(backbone, train, test, num_classes=2, epochs=3, batch_size=8, device="cpu")
    lines = [r.getMessage() for r in caplog.records if r.name == "lejepa.probe"]
    pattern = re.compile(rf"fine-tune epoch (\d)/3: train loss (\S+); epoch (\d)/3, {DURATION}, about {DURATION} left")
    matches = [pattern.fullmatch(line) for line in lines]
    assert all(matches) and [int(m[1]) for m in matches] == [int(m[3]) for m in matches] == [1, 2, 3], lines
    assert matches[-1][2] == f"{result['train_loss']:.4f}"  # the last epoch's mean loss is the result's


@pytest.mark.parametrize("seconds, text", [(3600, "1h00m"), (90061, "25h01m")])
def test_long_durations_are_hours(seconds, text):
    assert format_duration(seconds) == text
