"""Probes (lejepa.probe), feature extraction (lejepa.features) and the probe rules.

References are independent of the code under test: scikit-learn's LogisticRegression,
a brute-force numpy kNN, direct counting, per-image forward passes.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lejepa import features, probe

REPO = Path(__file__).resolve().parents[1]


def gaussian_classes(num_classes, dim, num_samples, *, separation, seed, sample_seed=None):
    """Features of Gaussian classes around random means drawn from ``seed`` (a fixed,
    overlapping feature set); ``sample_seed`` draws another sample of the same classes."""
    means = np.random.default_rng(seed).normal(size=(num_classes, dim)) * separation
    rng = np.random.default_rng([seed, 0 if sample_seed is None else sample_seed + 1])
    labels = rng.integers(0, num_classes, num_samples)
    return (means[labels] + rng.normal(size=(num_samples, dim))).astype(np.float32), labels


# ---------------------------------------------------------------------------------------
# Linear probe
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_linear_equals_sklearn_at_a_fixed_strength(digits, C):
    """Our objective is sklearn's with C = 1 / (l2 * N): same accuracy and coefficients."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, train_y, test_x, test_y = digits
    scaler = StandardScaler().fit(train_x)
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(scaler.transform(train_x), train_y)
    expected = 100 * reference.score(scaler.transform(test_x), test_y)

    ours = probe.linear(train_x, train_y, test_x, test_y, l2=1 / (C * len(train_y)), device="cpu")
    assert ours["l2_selection"] == "fixed"
    assert abs(ours["accuracy"] - expected) <= 1.0
    assert abs(ours["train_accuracy"] - 100 * reference.score(scaler.transform(train_x), train_y)) <= 0.5


def test_linear_with_chosen_l2_matches_sklearn_cross_validated():
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    train_x, train_y = gaussian_classes(10, 32, 2000, separation=0.5, seed=1)
    test_x, test_y = gaussian_classes(10, 32, 4000, separation=0.5, seed=1, sample_seed=1)

    scaler = StandardScaler().fit(train_x)
    grid = np.asarray(probe.DEFAULT_L2_GRID)
    reference = LogisticRegressionCV(Cs=1 / (grid * 0.8 * len(train_y)), cv=5, tol=1e-8, max_iter=5000)
    reference.fit(scaler.transform(train_x), train_y)
    expected = 100 * reference.score(scaler.transform(test_x), test_y)

    ours = probe.linear(train_x, train_y, test_x, test_y, device="cpu")
    assert ours["l2_selection"] == "5-fold cross-validation"
    assert 30 < expected < 95  # a feature set where the regularisation matters
    assert abs(ours["accuracy"] - expected) <= 1.0, (ours["accuracy"], expected, ours["l2"])


def test_linear_reaches_100_percent_on_linearly_separable_features():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, 600)
    x = rng.normal(size=(600, 20)) * 0.3
    x[np.arange(600), labels] += 3.0  # class c lives on its own axis: separable with margin
    result = probe.linear(x[:400], labels[:400], x[400:], labels[400:], device="cpu")
    assert result["accuracy"] == 100.0
    assert result["train_accuracy"] == 100.0


def test_linear_uses_val_split_and_falls_back_with_one_shot(digits):
    train_x, train_y, test_x, test_y = digits
    with_val = probe.linear(train_x[:600], train_y[:600], test_x, test_y,
                            val_x=train_x[600:], val_y=train_y[600:], device="cpu")
    assert with_val["l2_selection"] == "val" and with_val["num_train"] == 600

    one_shot = probe.few_shot_indices(train_y, shots=1, seed=0)
    result = probe.linear(train_x[one_shot], train_y[one_shot], test_x, test_y, device="cpu")
    assert result["l2_selection"].startswith("fallback") and result["l2"] == probe.FALLBACK_L2
    assert result["accuracy"] > 30  # 10 labelled digits already beat chance (10%) by far


def test_linear_matches_sklearn_holdout_protocol_on_correlated_features():
    """Correlated, badly scaled features (the case the preconditioner is for): our probe's
    test accuracy is within 0.5 points of scikit-learn choosing C on the same kind of
    holdout from the same grid (patience 3) and refitting on all of train."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(11)
    mixing = rng.normal(size=(24, 24)) * np.logspace(0, -2, 24)  # spread-out principal variances
    raw_train, train_y = gaussian_classes(6, 24, 3000, separation=0.35, seed=12)
    raw_test, test_y = gaussian_classes(6, 24, 3000, separation=0.35, seed=12, sample_seed=1)
    train_x, test_x = raw_train @ mixing * 5.0 + 3.0, raw_test @ mixing * 5.0 + 3.0

    scaler = StandardScaler().fit(train_x)
    fit_z, held_z, fit_y, held_y = train_test_split(
        scaler.transform(train_x), train_y, test_size=0.2, stratify=train_y, random_state=0
    )
    best, best_l2, since_best = -1.0, None, 0
    for l2 in sorted(probe.DEFAULT_L2_GRID, reverse=True):  # strong to weak, stop after 3 without gain
        model = LogisticRegression(C=1 / (l2 * len(fit_y)), tol=1e-8, max_iter=5000).fit(fit_z, fit_y)
        accuracy = model.score(held_z, held_y)
        best, best_l2, since_best = (accuracy, l2, 0) if accuracy > best else (best, best_l2, since_best + 1)
        if since_best == 3:
            break
    reference = LogisticRegression(C=1 / (best_l2 * len(fit_y)), tol=1e-8, max_iter=5000)
    expected = 100 * reference.fit(scaler.transform(train_x), train_y).score(scaler.transform(test_x), test_y)

    ours = probe.linear(train_x, train_y, test_x, test_y, max_cv_samples=1000, device="cpu")
    assert ours["l2_selection"] == "holdout"
    assert 40 < expected < 90  # neither trivial nor hopeless
    assert abs(ours["accuracy"] - expected) <= 0.5, (ours["accuracy"], expected, ours["l2"], best_l2)


def test_linear_on_splits_uses_val_only_with_all_training_samples(digits):
    """The workflow's rule (config/probe.yaml): L2 on val when the dataset has one and the probe
    uses all of train; a few-shot subset chooses on a held-out part of itself."""
    train_x, train_y, test_x, test_y = digits
    train, test, val = (train_x[:600], train_y[:600]), (test_x, test_y), (train_x[600:], train_y[600:])
    everything = probe.linear_on_splits(train, test, val=val, device="cpu")
    direct = probe.linear(*train, *test, val_x=val[0], val_y=val[1], device="cpu")
    assert everything["l2_selection"] == "val" and everything["num_train"] == 600
    assert everything["accuracy"] == direct["accuracy"] and everything["l2"] == direct["l2"]

    subset = probe.few_shot_indices(train[1], shots=5, seed=0)
    few = probe.linear_on_splits(train, test, val=val, train_indices=subset, seed=0, device="cpu")
    assert few["num_train"] == 50 and few["l2_selection"] == "5-fold cross-validation"
    expected = probe.linear(train_x[subset], train_y[subset], *test, seed=0, device="cpu")
    assert few["accuracy"] == expected["accuracy"]
    assert probe.linear_on_splits(train, test, device="cpu")["l2_selection"] == "5-fold cross-validation"


def test_linear_takes_torch_tensors_and_rejects_bad_input(digits):
    train_x, train_y, test_x, test_y = digits
    from_numpy = probe.linear(train_x, train_y, test_x, test_y, l2=1e-3, device="cpu")
    from_torch = probe.linear(*(torch.as_tensor(a) for a in digits), l2=1e-3)
    assert from_torch["accuracy"] == pytest.approx(from_numpy["accuracy"])
    with pytest.raises(ValueError, match="train_y"):
        probe.linear(train_x, train_y[:-1], test_x, test_y)
    with pytest.raises(ValueError, match="features"):
        probe.linear(train_x, train_y, test_x[:, :10], test_y)
    bad = train_x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        probe.linear(bad, train_y, test_x, test_y)


# ---------------------------------------------------------------------------------------
# kNN probe
# ---------------------------------------------------------------------------------------


def brute_force_knn_votes(train_x, train_y, test_x, *, k, temperature, num_classes):
    train = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    votes = np.zeros((len(test_x), num_classes))
    for i, query in enumerate(test_x):
        similarity = train @ (query / np.linalg.norm(query))
        for j in np.argsort(-similarity)[:k]:
            votes[i, train_y[j]] += np.exp(similarity[j] / temperature)
    return votes


def test_knn_equals_brute_force_numpy():
    train_x, train_y = gaussian_classes(6, 16, 300, separation=0.7, seed=4)
    test_x, test_y = gaussian_classes(6, 16, 53, separation=0.7, seed=4, sample_seed=1)
    expected = brute_force_knn_votes(train_x, train_y, test_x, k=20, temperature=0.07, num_classes=6)

    votes = probe.knn_votes(train_x, train_y, test_x, k=20, temperature=0.07, chunk_size=7, device="cpu")
    np.testing.assert_allclose(votes.numpy(), expected, rtol=1e-4)
    result = probe.knn(train_x, train_y, test_x, test_y, k=20, temperature=0.07, chunk_size=7, device="cpu")
    assert result["accuracy"] == pytest.approx(100 * np.mean(expected.argmax(1) == test_y))
    top5 = np.argsort(-expected, axis=1)[:, :5]
    assert result["top5"] == pytest.approx(100 * np.mean((top5 == test_y[:, None]).any(1)))


def test_knn_with_k_above_the_training_set_uses_every_sample():
    train_x, train_y = gaussian_classes(3, 8, 12, separation=1.0, seed=6)
    test_x, test_y = gaussian_classes(3, 8, 10, separation=1.0, seed=6, sample_seed=1)
    votes = probe.knn_votes(train_x, train_y, test_x, k=50, temperature=0.1, device="cpu")
    expected = brute_force_knn_votes(train_x, train_y, test_x, k=12, temperature=0.1, num_classes=3)
    np.testing.assert_allclose(votes.numpy(), expected, rtol=1e-4)
    assert probe.knn(train_x, train_y, test_x, test_y, k=50, device="cpu")["k"] == 12
    with pytest.raises(ValueError, match="k must be"):
        probe.knn(train_x, train_y, test_x, test_y, k=0)


# ---------------------------------------------------------------------------------------
# Few-shot subsets
# ---------------------------------------------------------------------------------------


def test_few_shot_gives_exactly_k_per_class_reproducibly():
    labels = np.random.default_rng(8).integers(0, 7, 500)
    for shots in (1, 5, 10):
        indices = probe.few_shot_indices(labels, shots=shots, seed=3)
        assert len(np.unique(indices)) == len(indices) == 7 * shots
        assert np.all(np.bincount(labels[indices], minlength=7) == shots)
        np.testing.assert_array_equal(indices, probe.few_shot_indices(labels, shots=shots, seed=3))
    assert not np.array_equal(probe.few_shot_indices(labels, shots=5, seed=0),
                              probe.few_shot_indices(labels, shots=5, seed=1))
    # the 1-shot subset of a seed is inside its 5-shot subset
    assert set(probe.few_shot_indices(labels, shots=1, seed=2)) <= set(probe.few_shot_indices(labels, shots=5, seed=2))
    np.testing.assert_array_equal(probe.few_shot_indices(labels, shots="all", seed=0), np.arange(500))


def test_few_shot_indices_never_reach_the_test_split():
    train_ids, test_ids = np.arange(0, 300), np.arange(300, 400)  # ids of one pool of samples
    train_labels = np.random.default_rng(9).integers(0, 4, 300)
    for seed in range(5):
        indices = probe.few_shot_indices(train_labels, shots=10, seed=seed)
        assert indices.min() >= 0 and indices.max() < len(train_labels)
        assert not set(train_ids[indices]) & set(test_ids)


def test_few_shot_takes_all_samples_of_a_small_class_and_warns():
    labels = np.array([0] * 20 + [1] * 3 + [2] * 20)
    with pytest.warns(UserWarning, match=r"fewer than 5 samples.*\{1: 3\}"):
        indices = probe.few_shot_indices(labels, shots=5, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[indices]), [5, 3, 5])
    for bad in (0, -1, 2.5, "ten", True):
        with pytest.raises(ValueError, match="shots"):
            probe.few_shot_indices(labels, shots=bad, seed=0)


def test_few_shot_file_round_trip(tmp_path):
    labels = np.array([0] * 8 + [1] * 2 + [2] * 8)
    np.savez(tmp_path / "train.npz", labels=labels)
    probe.write_few_shot_file(tmp_path / "train.npz", tmp_path / "4shot.npz", shots=4, seeds=[0, 7],
                              log=tmp_path / "log.txt")
    for seed in (0, 7):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_array_equal(probe.read_few_shot_file(tmp_path / "4shot.npz", seed=seed),
                                          probe.few_shot_indices(labels, shots=4, seed=seed))
    assert "fewer than 4" in (tmp_path / "log.txt").read_text()
    with pytest.raises(ValueError, match="seed 1"):
        probe.read_few_shot_file(tmp_path / "4shot.npz", seed=1)


# ---------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------


def test_fine_tuning_beats_a_frozen_probe_on_poor_features():
    """Noise images whose label compares two quadrants of the red channel; the backbone is
    a random conv net squeezed into 2 features, so frozen features carry little of it."""
    torch.manual_seed(0)
    images = torch.randn(800, 3, 8, 8)
    labels = (images[:, 0, :4, :4].mean((1, 2)) > images[:, 0, 4:, 4:].mean((1, 2))).long()
    backbone = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 2),
    )
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    train = torch.utils.data.TensorDataset(images[:401], labels[:401])  # 401: a last batch of 1
    test = torch.utils.data.TensorDataset(images[400:], labels[400:])

    with torch.no_grad():
        frozen_features = backbone.eval()(images)
    frozen = probe.linear(frozen_features[:401], labels[:401], frozen_features[400:], labels[400:], device="cpu")
    tuned = probe.fine_tune(backbone, train, test, num_classes=2, epochs=30, batch_size=50,
                            lr=3e-3, head_lr=3e-3, weight_decay=0.0, device="cpu")
    assert frozen["accuracy"] < 65  # the frozen features are poor by construction
    assert tuned["accuracy"] > frozen["accuracy"] + 20, (tuned, frozen["accuracy"])
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())  # caller's model untouched


# ---------------------------------------------------------------------------------------
# Feature extraction
# ---------------------------------------------------------------------------------------


def write_split(root, split, images, labels):
    """One split in the /work/shared/datasets format: jpeg bytes, offsets, labels."""
    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    np.savez(root / f"{split}.npz", jpeg=np.concatenate(blobs), offsets=offsets, labels=np.asarray(labels, np.int64))


def make_dataset(root, *, num_classes=3, sizes=(("train", 30), ("test", 15)), side=20, seed=0):
    """Tiny image dataset: class c has a bright square in corner c on noise."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in sizes:
        labels = np.arange(n) % num_classes
        images = rng.integers(0, 90, size=(n, side, side, 3), dtype=np.uint8)
        for image, c in zip(images, labels):
            y, x = divmod(int(c), 2)
            image[y * side // 2 : (y + 1) * side // 2, x * side // 2 : (x + 1) * side // 2] += 150
        write_split(root, split, images, labels)
    meta = {
        "name": root.name,
        "classes": [f"class{c}" for c in range(num_classes)],
        "splits": dict(sizes),
        "sha256": {f"{s}.npz": hashlib.sha256((root / f"{s}.npz").read_bytes()).hexdigest() for s, _ in sizes},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_extract_matches_per_image_forward_and_cache_reuses(tmp_path):
    import timm

    from lejepa.data import EncodedImages
    from lejepa.views import eval_transform

    root = make_dataset(tmp_path / "toy")
    dataset = EncodedImages(root, "test", transform=eval_transform(16))
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=0).eval()

    feats, labels = features.extract(model, dataset, batch_size=4, device="cpu", progress=False)
    with torch.no_grad():
        expected = torch.cat([model(dataset[i][0][None]) for i in range(len(dataset))])
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels.numpy(), np.arange(15) % 3)

    key = {"run": "toy", "split": "test", "resolution": 16}
    path = tmp_path / "features" / "toy" / "toy" / "test.pt"
    first = features.cached_features(path, model=model, dataset=dataset, key=key, device="cpu", progress=False)
    assert first["status"] == "ok" and path.exists() and not list(path.parent.glob(".*tmp*"))

    class MustNotRun(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("features were recomputed despite a matching cache")

    again = features.cached_features(path, model=MustNotRun(), dataset=dataset, key=key, progress=False)
    torch.testing.assert_close(again["features"], first["features"])
    with pytest.raises(AssertionError, match="recomputed"):  # another key: extracted again
        features.cached_features(path, model=MustNotRun(), dataset=dataset, key={**key, "resolution": 8},
                                 progress=False)


def test_load_features_names_a_broken_file(tmp_path):
    broken = tmp_path / "train.pt"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="train.pt"):
        features.load_features(broken)
    torch.save({"features": torch.zeros(2, 3)}, broken)
    with pytest.raises(ValueError, match="not a feature file"):
        features.load_features(broken)


def test_frontier_without_network_says_weights_unreachable(monkeypatch):
    monkeypatch.setattr(features, "_reachable", lambda host, timeout=5.0: f"{host} unreachable (test)")
    monkeypatch.setattr(features, "_hf_cached", lambda repo_id: False)
    with pytest.raises(features.WeightsUnreachable, match=r"^weights unreachable: .*dinov2.*torch.hub"):
        features.load_frontier("dinov2_vits14")
    with pytest.raises(ValueError, match="unknown frontier"):
        features.load_frontier("dinov9")


def test_random_init_backbone_is_seeded():
    config = {"backbone": "test_resnet", "projector": "32-8", "small_stem": "none", "global_size": 16}
    spec = {"kind": "random_init", "seed": 3, "run_config": config}
    a, info = features.probed_backbone(spec)
    b, _ = features.probed_backbone(spec)
    c, _ = features.probed_backbone({**spec, "seed": 4})
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    assert info["resolution"] == 16 and info["kind"] == "random_init"


# ---------------------------------------------------------------------------------------
# The probe rules, end to end (a tiny workflow in a temporary directory)
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_probe_rules_end_to_end(tmp_path):
    from lejepa.models import Encoder

    make_dataset(tmp_path / "data" / "toy", sizes=(("train", 24), ("test", 12)))
    settings = {
        "projector": "32-8", "small_stem": "none", "n_global": 2, "n_local": 0, "global_size": 16,
        "local_size": 8, "global_scale": [0.3, 1.0], "local_scale": [0.05, 0.3], "batch_size": 8, "epochs": 1,
        "max_steps_per_epoch": 1, "warmup_epochs": 0, "lr": 1e-3, "weight_decay": 0.0, "lam": 0.05,
        "num_slices": 8, "t_max": 3.0, "knots": 17, "centers": "global", "seed": 0,
    }
    run_config = {**settings, "dataset": "toy", "backbone": "test_resnet", "run": "toy_run", "scale": "tiny"}
    (tmp_path / "runs" / "toy_run").mkdir(parents=True)
    torch.manual_seed(1)
    encoder = Encoder("test_resnet", projector="32-8")
    torch.save({"config": run_config, "encoder": encoder.state_dict()}, tmp_path / "runs" / "toy_run" / "final.pt")
    config = {
        "data": {"root": "data"},
        "resources": {"probe": {"threads": 1, "mem_mb": 1000, "runtime": 5}},
        "pretrain": {"scales": {"tiny": {"settings": settings}},
                     "runs": {"toy_run": {"dataset": "toy", "backbone": "test_resnet", "scale": "tiny"}}},
        "probe": {
            "random_init": {"random_toy": {"like": "toy_run"}},
            "frontier": ["dinov2_vits14"],
            "features": {"workers": 0},
            "few_shot": {"seeds": [0, 1]},
            "finetune": {"epochs": 1, "batch_size": 4, "workers": 0},
        },
    }
    (tmp_path / "config.yaml").write_text(json.dumps(config))
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""
        from snakemake.utils import validate
        configfile: "config.yaml"
        validate(config["probe"], "{REPO}/workflow/schemas/probe.schema.yaml")
        include: "{REPO}/workflow/rules/common.smk"
        include: "{REPO}/workflow/rules/probe.smk"
    """))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    targets = ["results/toy_run/linear/toy.json", "results/toy_run/knn_2shot/toy.json",
               "results/random_toy/finetune_2shot/toy.json", "results/dinov2_vits14/linear/toy.json"]
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *targets, "--quiet", "rules"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    logs = "\n".join(f"{p}:\n{p.read_text()}" for p in (tmp_path / "logs").rglob("*.log")) if done.returncode else ""
    assert done.returncode == 0, done.stderr[-3000:] + logs[-5000:]

    results = {t: json.loads((tmp_path / t).read_text()) for t in targets}
    linear = results["results/toy_run/linear/toy.json"]
    assert linear["status"] == "ok" and 0 <= linear["accuracy"] <= 100 and linear["std"] == 0.0
    assert linear["checkpoint_sha256"] == hashlib.sha256((tmp_path / "runs/toy_run/final.pt").read_bytes()).hexdigest()
    assert linear["scale"] == "tiny" and linear["transfer"] is False and linear["wall_time_s"] > 0
    few = results["results/toy_run/knn_2shot/toy.json"]
    assert few["shots"] == 2 and few["seeds"] == [0, 1] and len(few["accuracies"]) == 2
    assert few["few_shot_indices"] == "fewshot/toy/2shot.npz" and all(e["num_train"] == 6 for e in few["per_seed"])
    tuned = results["results/random_toy/finetune_2shot/toy.json"]
    assert tuned["status"] == "ok" and tuned["run_kind"] == "random_init" and len(tuned["accuracies"]) == 2
    frontier = results["results/dinov2_vits14/linear/toy.json"]
    assert frontier["status"].startswith("weights unreachable") and frontier["accuracy"] is None


def test_readme_probe_speed_matches_the_committed_bench_row():
    """README's probe-speed sentence, recomputed from the last row of bench/results/probe.jsonl."""
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    row = json.loads((repo / "bench" / "results" / "probe.jsonl").read_text().splitlines()[-1])
    readme = " ".join((repo / "README.md").read_text().split())
    expected = (
        f"ours {row['median_s']['ours']:.1f} s, scikit-learn {row['median_s']['sklearn']:.1f} s "
        f"(ratio {row['ratio_vs_sklearn']:.2f}; CPU time {row['cpu_ratio_vs_sklearn']:.2f}), "
        f"top-1 {row['accuracy']['ours']:.2f} % against {row['accuracy']['sklearn']:.2f} %"
    )
    assert expected in readme and f"the median of {row['repeats']} alternating runs" in readme
    assert row["ratio_vs_sklearn"] <= 0.2 and abs(row["accuracy_gap"]) <= 0.5  # issue 14's goal
