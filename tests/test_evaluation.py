"""lejepa.evaluation: one probe of one encoder on one dataset -> the result record.

References: a brute-force numpy kNN on the few-shot subsets read straight from the npz,
numpy's mean and std (ddof=1) over the seeds.
"""

import numpy as np
import pytest
import torch

from lejepa import features, probe
from lejepa.evaluation import checkpoint_input, probe_result

NUM_CLASSES = 3


def brute_force_knn_accuracy(train_x, train_y, test_x, test_y, *, k, temperature):
    train = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    predictions = []
    for query in test_x:
        similarity = train @ (query / np.linalg.norm(query))
        votes = np.zeros(NUM_CLASSES)
        for j in np.argsort(-similarity)[:k]:
            votes[train_y[j]] += np.exp(similarity[j] / temperature)
        predictions.append(votes.argmax())
    return 100.0 * np.mean(np.array(predictions) == test_y)


@pytest.fixture
def feature_files(tmp_path):
    """Cached features of a pretrained encoder (train 30, test 12; overlapping Gaussian classes),
    the labels' split file and a 2-shot file for seeds 0 and 1."""
    rng = np.random.default_rng(0)
    means = rng.normal(size=(NUM_CLASSES, 8))
    info = {"kind": "pretrained", "resolution": 16, "checkpoint": "runs/r/final.pt", "checkpoint_sha256": "ab",
            "pretrain_dataset": "other", "scale": "tiny"}  # fmt: skip
    arrays = {}
    for split, n in (("train", 30), ("test", 12)):
        labels = np.arange(n) % NUM_CLASSES
        x = (means[labels] + rng.normal(size=(n, 8))).astype(np.float32)
        arrays[split] = (x, labels)
        features.save_features(tmp_path / f"{split}.pt", features=torch.from_numpy(x), labels=torch.from_numpy(labels),
                               key={"split": split}, info=info)  # fmt: skip
    np.savez(tmp_path / "labels.npz", labels=arrays["train"][1])
    probe.write_few_shot_file(tmp_path / "labels.npz", tmp_path / "2shot.npz", shots=2, seeds=[0, 1])
    return tmp_path, arrays


def test_few_shot_knn_is_the_mean_and_std_of_brute_force_knn_per_seed(feature_files):
    folder, arrays = feature_files
    settings = {"device": "auto", "seeds": [0, 1], "k": 3, "temperature": 0.07}
    result = probe_result(
        "knn_2shot", run="r", dataset="toy", dataset_label="Toy", encoder={"kind": "pretrained"}, settings=settings,
        feature_files={"train": str(folder / "train.pt"), "test": str(folder / "test.pt")},
        few_shot_file=str(folder / "2shot.npz"),
    )  # fmt: skip

    (train_x, train_y), (test_x, test_y) = arrays["train"], arrays["test"]
    expected = []
    with np.load(folder / "2shot.npz") as subsets:
        for seed in (0, 1):
            idx = subsets[f"seed_{seed}"]
            assert len(idx) == 2 * NUM_CLASSES
            expected.append(brute_force_knn_accuracy(train_x[idx], train_y[idx], test_x, test_y, k=3, temperature=0.07))
    assert result["status"] == "ok" and result["method"] == "knn" and result["shots"] == 2
    assert result["accuracies"] == pytest.approx(expected)
    assert result["accuracy"] == pytest.approx(np.mean(expected))
    assert result["std"] == pytest.approx(np.std(expected, ddof=1))
    assert result["num_train"] == 2 * NUM_CLASSES and result["num_test"] == 12
    assert result["transfer"] is True and result["scale"] == "tiny" and result["checkpoint_sha256"] == "ab"
    assert result["classes_with_fewer_shots"] == {}
    assert result["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert list(result)[:9] == ["run", "run_kind", "probe", "method", "dataset", "dataset_label", "shots", "seeds",
                                "few_shot_indices"]  # fmt: skip


def test_feature_files_without_features_give_their_status_and_no_number(tmp_path):
    reason = "weights unreachable: no network (test)"
    for split in ("train", "test"):
        features.save_unreachable(tmp_path / f"{split}.pt", reason=reason, key={"split": split})
    result = probe_result(
        "linear", run="dinov2_vits14", dataset="toy", dataset_label="Toy", encoder={"kind": "frontier"},
        settings={"device": "cpu", "seeds": [0]},
        feature_files={"train": str(tmp_path / "train.pt"), "test": str(tmp_path / "test.pt")},
    )  # fmt: skip
    assert result["status"] == reason and result["accuracy"] is None and result["accuracies"] == []
    assert "checkpoint" not in result and result["wall_time_s"] >= 0


def test_checkpoint_input_is_a_path_or_none():
    assert checkpoint_input("runs/r/final.pt") == "runs/r/final.pt"
    assert checkpoint_input(["runs/r/final.pt"]) == "runs/r/final.pt"
    assert checkpoint_input([]) is None and checkpoint_input(None) is None
