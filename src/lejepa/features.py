"""Frozen backbone features for the probes: extraction, on-disk cache, and the encoders probed.

Features are extracted once per (encoder, dataset, split) with the evaluation transform
(resize + center crop at the encoder's resolution) and cached as
``features/<run>/<dataset>/<split>.pt``: a dict with ``features`` (N, F) float32,
``labels`` (N,) int64, ``status`` ("ok" or "weights unreachable: <source>") and a ``key``
saying what produced them (checkpoint sha256, dataset, split, resolution).

Three kinds of encoders are probed:

- a pretrained LeJEPA run: ``lejepa.models.load_encoder(runs/<run>/final.pt)``;
- a randomly initialised baseline with the same architecture (``random_init_encoder``);
- a frontier model pretrained elsewhere (DINOv2 ViT-S/14, DINOv3 ViT-S/16, I-JEPA ViT-H/14;
  ``load_frontier``), whose weights come from the Hugging Face hub through timm or from
  torch hub. Without network access and without a local copy it raises
  ``WeightsUnreachable``; the workflow records that instead of a number. With
  HF_HUB_OFFLINE=1 in the environment nothing is downloaded (local copies only).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lejepa.data.format import sha256_of
from lejepa.data.sources import host_unreachable
from lejepa.devices import resolve_device
from lejepa.io import atomic_path

# Frontier transfer baselines of tables 2, 3 and 5: weight sources tried in order.
FRONTIER_MODELS = {
    "dinov2_vits14": {
        "title": "DINOv2 ViT-S/14 (LVD-142M)",
        "timm": "vit_small_patch14_dinov2.lvd142m",
        "hub": ("facebookresearch/dinov2", "dinov2_vits14"),
        "resolution": 224,
    },
    "dinov3_vits16": {
        "title": "DINOv3 ViT-S/16 (LVD-1689M)",
        "timm": "vit_small_patch16_dinov3.lvd1689m",
        "hub": None,  # facebookresearch/dinov3 on torch hub needs a signed download URL
        "resolution": 224,
    },
    "ijepa_vith14_in1k": {
        "title": "I-JEPA ViT-H/14 (IN-1k)",
        "timm": "vit_huge_patch14_gap_224.in1k_ijepa",
        "hub": None,
        "resolution": 224,
    },
    "ijepa_vith14_in22k": {
        "title": "I-JEPA ViT-H/14 (IN-22k)",
        "timm": "vit_huge_patch14_gap_224.in22k_ijepa",
        "hub": None,
        "resolution": 224,
    },
}

FEATURE_FILE_KEYS = ("features", "labels", "status", "key")


class WeightsUnreachable(RuntimeError):
    """Pretrained weights could not be loaded from any source (no network, no local copy).

    Raised only for errors that mean "could not fetch or find the weights" (see
    ``unreachable_errors``); a wrong model name or a bug in a loader raises its own error."""


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean the weights could not be reached: OSError (sockets,
    urllib's URLError and HTTPError, missing files, and huggingface_hub's HTTP, offline
    and not-in-cache errors, which all derive from it) and the transport errors (connect,
    timeout) of the HTTP client huggingface_hub uses, which do not."""
    classes: list[type[BaseException]] = [OSError]
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        classes.append(module.TransportError)
    return tuple(classes)


# ---------------------------------------------------------------------------------------
# Extraction and cache
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def extract(model: torch.nn.Module, dataset, *, batch_size: int = 256, num_workers: int = 0, device=None,
            progress: bool = True, desc: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` in eval mode over ``dataset`` (image tensor, label) in order.

    ``model(x)`` may return the features (B, F) or a tuple whose first entry they are
    (a LeJEPA ``Encoder`` returns (features, embedding)). Returns (features (N, F) float32
    on CPU, labels (N,) int64). Torch's thread count is the caller's.
    """
    device = torch.device(device if device is not None else resolve_device("auto"))
    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    features, labels = [], []
    for images, batch_labels in tqdm(loader, desc=desc, disable=not progress, unit="batch"):
        output = model(images.to(device, non_blocking=True))
        output = output[0] if isinstance(output, (tuple, list)) else output
        features.append(output.float().cpu())
        labels.append(torch.as_tensor(batch_labels, dtype=torch.long))
    features, labels = torch.cat(features), torch.cat(labels)
    if not torch.isfinite(features).all():
        raise ValueError(f"{desc}: the model produced NaN or inf features")
    return features, labels


def save_features(path, *, features, labels, key: dict, status: str = "ok", info: dict | None = None) -> None:
    """Write a feature file atomically (see the module docstring for its layout); ``info``
    holds what does not identify the features (wall time, device)."""
    data = {"features": features, "labels": labels, "status": status, "key": dict(key), "info": dict(info or {})}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def save_unreachable(path, *, reason: str, key: dict) -> None:
    """A feature file that records why there are no features (frontier weights unreachable)."""
    status = reason if reason.startswith("weights unreachable") else f"weights unreachable: {reason}"
    save_features(path, features=None, labels=None, key=key, status=status)


def load_features(path) -> dict:
    """Read a feature file, checking its layout; errors name the file."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"cannot read feature file {path} ({type(error).__name__}: {first_line}): truncated or corrupted? "
            f"Delete it and rerun; the extract_features rule (lejepa.features.cached_features) extracts it again"
        ) from error
    if not isinstance(data, dict) or set(FEATURE_FILE_KEYS) - set(data):
        raise ValueError(f"{path} is not a feature file (needs keys {FEATURE_FILE_KEYS})")
    data.setdefault("info", {})
    if data["status"] == "ok":
        features, labels = data["features"], data["labels"]
        if features.ndim != 2 or labels.shape != (features.shape[0],):
            raise ValueError(
                f"{path}: features {tuple(features.shape)} and labels {tuple(labels.shape)} do not match"
            )
    return data


def cached_features(path, *, model, dataset, key: dict, info: dict | None = None, **extract_kwargs) -> dict:
    """Features of ``dataset`` under ``model``, read from ``path`` when it holds the same
    ``key`` (e.g. checkpoint sha256, dataset, split, resolution), else extracted and saved
    with ``info`` (plus the extraction's wall time)."""
    path = Path(path)
    if path.exists():
        try:
            data = load_features(path)
        except ValueError as error:  # a truncated or corrupted cache is extracted again
            logging.getLogger("lejepa.features").warning("%s; extracting it again", error)
            data = None
        if data is not None and data["key"] == key and data["status"] == "ok":
            return data
    start = time.perf_counter()
    features, labels = extract(model, dataset, **extract_kwargs)
    info = {**(info or {}), "seconds": time.perf_counter() - start, "num_images": len(labels)}
    save_features(path, features=features, labels=labels, key=key, info=info)
    return load_features(path)


# ---------------------------------------------------------------------------------------
# The encoders probed
# ---------------------------------------------------------------------------------------


def random_init_encoder(run_config: dict, *, seed: int = 0) -> torch.nn.Module:
    """The untrained baseline: the encoder of ``run_config`` initialised with ``seed``."""
    from lejepa.models import encoder_from_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return encoder_from_config(run_config).eval()


def probed_backbone(spec: dict, *, checkpoint=None) -> tuple[torch.nn.Module, dict]:
    """The backbone a probe evaluates -> (module mapping images to features (B, F), info).

    ``spec["kind"]`` is one of
      "pretrained":  the LeJEPA encoder of ``checkpoint`` (runs/<run>/final.pt);
      "random_init": ``random_init_encoder(spec["run_config"], seed=spec["seed"])``;
      "frontier":    ``load_frontier(spec["name"])`` at ``spec["resolution"]`` px (may raise
                     ``WeightsUnreachable``).
    ``info``: kind, resolution (the side the images are resized and cropped to), and where
    known checkpoint / checkpoint_sha256, pretrain_dataset, scale, backbone, title, source.
    """
    kind = spec.get("kind")
    if kind == "pretrained":
        if checkpoint is None:
            raise ValueError("probed_backbone: a pretrained encoder needs its checkpoint path")
        from lejepa.models import load_encoder

        encoder, run_config = load_encoder(checkpoint)
        return encoder.backbone, {
            "kind": kind,
            "resolution": int(run_config["global_size"]),
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_of(checkpoint),
            "pretrain_dataset": run_config["dataset"],
            "scale": run_config.get("scale"),
            "backbone": run_config["backbone"],
        }
    if kind == "random_init":
        run_config = spec["run_config"]
        encoder = random_init_encoder(run_config, seed=spec["seed"])
        return encoder.backbone, {
            "kind": kind,
            "resolution": int(run_config["global_size"]),
            "seed": spec["seed"],
            "like": spec.get("like"),
            "pretrain_dataset": None,
            "scale": run_config.get("scale"),
            "backbone": run_config["backbone"],
        }
    if kind == "frontier":
        model, info = load_frontier(spec["name"])
        return model, {**info, "kind": kind, "resolution": int(spec["resolution"]), "pretrain_dataset": "external"}
    raise ValueError(f"probed_backbone: unknown kind {kind!r}; expected pretrained, random_init or frontier")


def _reachable(host: str, *, timeout: float = 5.0) -> str | None:
    """None when a TCP connection to host:443 opens, else the reason it does not.
    HF_HUB_OFFLINE=1 in the environment means: never download (local copies only)."""
    import huggingface_hub.constants

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    return host_unreachable(host, timeout=timeout)


@contextlib.contextmanager
def _hf_offline():
    """Make huggingface_hub use its local cache only (no retries against a dead network)."""
    import huggingface_hub.constants as constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _hf_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(
        isinstance(try_to_load_from_cache(repo_id, filename), str)
        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
    )


def _from_timm(model_name: str) -> torch.nn.Module:
    import timm

    pretrained_cfg = timm.models.get_pretrained_cfg(model_name)
    if pretrained_cfg is None:  # a typo'd name, not a network problem
        raise ValueError(f"timm knows no pretrained model {model_name!r}")
    repo_id = pretrained_cfg.hf_hub_id or f"timm/{model_name}"
    offline = _reachable("huggingface.co")
    source = f"huggingface.co/{repo_id} via timm"
    if offline and not _hf_cached(repo_id):
        raise WeightsUnreachable(f"{source}: {offline}, and no copy in the local cache")
    try:
        with _hf_offline() if offline else contextlib.nullcontext():
            return timm.create_model(model_name, pretrained=True, num_classes=0)
    except unreachable_errors() as error:  # anything else (a bad name, a loader bug) propagates
        raise WeightsUnreachable(f"{source}: {type(error).__name__}: {error}") from error


def _from_torch_hub(repo: str, entry: str) -> torch.nn.Module:
    cached = (Path(torch.hub.get_dir()) / f"{repo.replace('/', '_')}_main").exists()
    offline = _reachable("github.com")
    source = f"torch.hub {repo}:{entry}"
    if offline and not cached:
        raise WeightsUnreachable(f"{source}: {offline}, and no copy in {torch.hub.get_dir()}")
    try:
        return torch.hub.load(repo, entry, source="github", skip_validation=True)
    except unreachable_errors() as error:  # anything else (a bad name, a loader bug) propagates
        raise WeightsUnreachable(f"{source}: {type(error).__name__}: {error}") from error


def load_frontier(name: str) -> tuple[torch.nn.Module, dict]:
    """A frontier backbone with pretrained weights -> (model mapping images to (B, F), info).

    ``name`` is a key of ``FRONTIER_MODELS``. Sources are tried in order (timm through the
    Hugging Face hub, then torch hub); when none can serve, raises ``WeightsUnreachable``
    whose message starts with "weights unreachable:" and lists every source and why.
    ``info``: title, source, resolution.
    """
    if name not in FRONTIER_MODELS:
        raise ValueError(f"unknown frontier model {name!r}; known: {sorted(FRONTIER_MODELS)}")
    spec = FRONTIER_MODELS[name]
    attempts = [(f"timm {spec['timm']}", lambda: _from_timm(spec["timm"]))]
    if spec["hub"]:
        attempts.append((f"torch.hub {':'.join(spec['hub'])}", lambda: _from_torch_hub(*spec["hub"])))
    reasons = []
    for source, load in attempts:
        try:
            model = load()
        except WeightsUnreachable as error:
            reasons.append(str(error))
            continue
        return model.eval(), {"title": spec["title"], "source": source, "resolution": spec["resolution"]}
    raise WeightsUnreachable("weights unreachable: " + "; ".join(reasons))
