"""WeightsUnreachable means the weights could not be reached, nothing else.

A frontier backbone whose weights cannot be fetched (no network, no local copy) becomes a
table cell saying so; every other failure (a typo'd model name, a loader bug) must fail
the job with its own error instead of passing for a network problem.
"""

import urllib.error

import pytest
import timm
import torch

from lejepa import features


@pytest.fixture
def online(monkeypatch):
    """Pretend both hosts answer, so the loaders go on to timm / torch hub (which we stub)."""
    monkeypatch.setattr(features, "_reachable", lambda host, timeout=5.0: None)


def _raise(error):
    def load(*args, **kwargs):
        raise error

    return load


def test_typo_in_timm_name_is_a_value_error_not_unreachable(online):
    with pytest.raises(ValueError, match="vit_smal_patch14_dinov2_typo"):
        features._from_timm("vit_smal_patch14_dinov2_typo")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("connection refused"),
        TimeoutError("timed out"),
        FileNotFoundError("no model.safetensors in the cache"),
        urllib.error.URLError("name resolution failed"),
    ],
)
def test_network_and_missing_file_errors_are_unreachable(online, monkeypatch, error):
    monkeypatch.setattr(timm, "create_model", _raise(error))
    with pytest.raises(features.WeightsUnreachable, match=type(error).__name__):
        features._from_timm("vit_small_patch14_dinov2.lvd142m")
    monkeypatch.setattr(torch.hub, "load", _raise(error))
    with pytest.raises(features.WeightsUnreachable, match=type(error).__name__):
        features._from_torch_hub("facebookresearch/dinov2", "dinov2_vits14")


def test_http_client_transport_error_is_unreachable(online, monkeypatch):
    transport_errors = [cls for cls in features.unreachable_errors() if cls is not OSError]
    if not transport_errors:
        pytest.skip("no httpx-like client installed")
    error = transport_errors[0]("connect failed")
    monkeypatch.setattr(timm, "create_model", _raise(error))
    with pytest.raises(features.WeightsUnreachable, match="connect failed"):
        features._from_timm("vit_small_patch14_dinov2.lvd142m")


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Unknown model (dinov2_vits14_typo)"),
        KeyError("state_dict key mismatch"),
        AttributeError("loader bug"),
        TypeError("create_model() got an unexpected keyword argument"),
    ],
)
def test_other_errors_fail_with_their_own_class(online, monkeypatch, error):
    monkeypatch.setattr(timm, "create_model", _raise(error))
    with pytest.raises(type(error)) as raised:
        features._from_timm("vit_small_patch14_dinov2.lvd142m")
    assert not isinstance(raised.value, features.WeightsUnreachable)
    monkeypatch.setattr(torch.hub, "load", _raise(error))
    with pytest.raises(type(error)) as raised:
        features._from_torch_hub("facebookresearch/dinov2", "dinov2_vits14")
    assert not isinstance(raised.value, features.WeightsUnreachable)
    # load_frontier does not fold them into "weights unreachable" either
    with pytest.raises(type(error)):
        features.load_frontier("dinov2_vits14")


def test_load_frontier_lists_every_unreachable_source(online, monkeypatch):
    monkeypatch.setattr(timm, "create_model", _raise(ConnectionError("hf down")))
    monkeypatch.setattr(torch.hub, "load", _raise(urllib.error.URLError("github down")))
    with pytest.raises(features.WeightsUnreachable, match=r"^weights unreachable: .*hf down.*github down"):
        features.load_frontier("dinov2_vits14")
