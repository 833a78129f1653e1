"""Table 4's two options of lejepa.train, both off by default: a predictor head (every view
predicts the centre through an MLP; SIGReg stays on the embeddings) and a stochastic weight
average of the encoder (an EMA that makes the centres without gradient and is saved)."""

import copy

import numpy as np
import pytest
import torch
from conftest import crash_at_step

from lejepa import LeJEPALoss, SIGReg, train
from lejepa.models import Encoder, encoder_from_config

CONFIG = dict(
    run="tiny", dataset="tiny", backbone="test_resnet", projector="32-16", small_stem="none",
    n_global=2, n_local=2, global_size=16, local_size=8, global_scale=[0.3, 1.0], local_scale=[0.05, 0.3],
    batch_size=16, epochs=2, warmup_epochs=0.5, max_steps_per_epoch=2,
    lr=1e-3, weight_decay=0.05, lam=0.05, num_slices=32, t_max=3.0, knots=17, centers="all", seed=0,
    eval_split=None, device="cpu", threads=1, workers=0, progress=False,
)  # fmt: skip


def run_config(data_dir, out_dir, **overrides):
    return {**CONFIG, "data_dir": str(data_dir), "out_dir": str(out_dir), **overrides}


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_both_options_are_off_by_default():
    config = train.check_config(run_config("d", "o"))
    assert config["predictor"] == "none" and config["swa_decay"] == 0
    assert Encoder("test_resnet", projector="32-16").predictor is None
    resolved, _ = train.resolve_run({"scales": {"s": {"settings": CONFIG}}, "runs": {"r": {"scale": "s"}}}, "r")
    assert not {"predictor", "swa_decay", "patch_size", "num_registers"} & set(resolved)  # params of old runs stay


def test_the_predictor_adds_an_mlp_from_the_embedding_to_the_embedding():
    torch.manual_seed(0)
    plain = Encoder("test_resnet", projector="32-16")
    torch.manual_seed(0)
    with_predictor = Encoder("test_resnet", projector="32-16", predictor="24")
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    # Linear 16 -> 24 (no bias, BN follows), BN(24) weight and bias, Linear 24 -> 16 with bias
    assert count(with_predictor) - count(plain) == 16 * 24 + 2 * 24 + 24 * 16 + 16
    # built after backbone and projector: their initialisation is the same
    for (name, a), b in zip(plain.state_dict().items(), with_predictor.state_dict().values()):
        assert torch.equal(a, b), name
    assert with_predictor.predictor(torch.randn(5, 16)).shape == (5, 16)
    with pytest.raises(ValueError, match="predictor"):
        train.check_config(run_config("d", "o", predictor="wide"))


def test_with_a_predictor_the_prediction_term_takes_the_predictions_and_sigreg_the_embeddings():
    rng = np.random.default_rng(0)
    all_z = rng.normal(size=(4, 32, 8))
    predicted = rng.normal(size=(4, 32, 8))
    centres = all_z[:2].mean(axis=0)
    loss_fn = LeJEPALoss(lam=0.3, sigreg=SIGReg(num_slices=16))
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    plain = loss_fn(as_tensor(all_z[:2]), as_tensor(all_z), step=5)
    out = loss_fn(as_tensor(all_z[:2]), as_tensor(all_z), step=5, predicted_z=as_tensor(predicted))
    assert out["prediction"].item() == pytest.approx(((predicted - centres) ** 2).mean(), rel=1e-5)
    assert out["sigreg"].item() == plain["sigreg"].item()  # SIGReg on the embeddings, not the predictions
    assert out["loss"].item() == pytest.approx(0.7 * out["prediction"].item() + 0.3 * out["sigreg"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="predicted_z"):
        loss_fn(as_tensor(all_z[:2]), as_tensor(all_z), step=5, predicted_z=as_tensor(predicted[:3]))


def test_a_run_with_a_predictor_trains_it(tiny_dataset, tmp_path, one_torch_thread):
    config = run_config(tiny_dataset, tmp_path / "run", predictor="24")
    saved = load(train.main(config))
    torch.manual_seed(config["seed"])  # lejepa.train's initialisation: seed, then the encoder
    start = encoder_from_config(train.check_config(config)).state_dict()
    predictor_keys = [key for key in saved["encoder"] if key.startswith("predictor.")]
    assert predictor_keys and all(
        not torch.equal(saved["encoder"][key], start[key]) for key in predictor_keys if key.endswith("weight")
    )  # the predictor received gradient
    plain = load(train.main(run_config(tiny_dataset, tmp_path / "plain")))
    assert not torch.equal(plain["encoder"]["projector.0.weight"], saved["encoder"]["projector.0.weight"])


def test_swa_saves_the_running_average_of_the_online_weights(tiny_dataset, tmp_path, monkeypatch,
                                                             one_torch_thread):  # fmt: skip
    decay = 0.6
    config = run_config(tiny_dataset, tmp_path / "run", swa_decay=decay)
    snapshots, centre_grads = [], []
    real_update, real_forward = train.update_average, LeJEPALoss.forward

    def recording_update(average, encoder, *, decay):
        snapshots.append(copy.deepcopy(encoder.state_dict()))  # the online weights after this step
        return real_update(average, encoder, decay=decay)

    def recording_forward(self, global_z, all_z, **kwargs):
        centre_grads.append((global_z.shape[0], global_z.requires_grad, all_z.requires_grad))
        return real_forward(self, global_z, all_z, **kwargs)

    monkeypatch.setattr(train, "update_average", recording_update)
    monkeypatch.setattr(LeJEPALoss, "forward", recording_forward)
    saved = load(train.main(config))
    assert len(snapshots) == 4
    # the centres come from the average (no gradient), of every view here (centers: all)
    assert centre_grads == [(4, False, True)] * 4

    torch.manual_seed(config["seed"])
    average = encoder_from_config(train.check_config(config)).state_dict()
    parameter_names = {name for name, _ in encoder_from_config(train.check_config(config)).named_parameters()}
    for snapshot in snapshots:  # by hand: a <- decay * a + (1 - decay) * w; buffers copied
        average = {
            name: decay * average[name] + (1 - decay) * value if name in parameter_names else value.clone()
            for name, value in snapshot.items()
        }
    for name, value in average.items():
        torch.testing.assert_close(saved["encoder"][name], value, msg=name)
    for name, value in snapshots[-1].items():
        assert torch.equal(saved["online_encoder"][name], value), name
    assert not torch.equal(saved["encoder"]["projector.0.weight"], saved["online_encoder"]["projector.0.weight"])


def test_swa_resumes_with_its_average(tiny_dataset, tmp_path, monkeypatch, one_torch_thread):
    config = run_config(tiny_dataset, tmp_path / "run", swa_decay=0.5, predictor="24", checkpoint_every_steps=1)
    whole = load(train.main(config))
    resumed = config | {"out_dir": str(tmp_path / "resumed")}
    crash_at_step(train, resumed, step=3, monkeypatch=monkeypatch)
    again = load(train.main(resumed))
    for key in ("encoder", "online_encoder"):
        for name, value in whole[key].items():
            assert torch.equal(again[key][name], value), (key, name)
