"""Evaluation probes: frozen linear, kNN, few-shot sampling and full fine-tuning.

The paper's claims are all probe numbers (section 6): a linear probe on frozen backbone
features (tables 1, 4, 5, 7, figures 8-11), few-shot probes with k labelled samples per
class (tables 2, 3) and full fine-tuning of backbone + linear head (table 3).

Every function takes numpy arrays or torch tensors and returns a plain dict. Accuracies
are top-1 in percent (0-100), as in the paper's tables.

    from lejepa import probe
    probe.linear(train_x, train_y, test_x, test_y)["accuracy"]
    probe.knn(train_x, train_y, test_x, test_y, k=20, temperature=0.07)["accuracy"]
    idx = probe.few_shot_indices(train_y, shots=10, seed=0)
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F

# Names and few-shot subsets need no torch (the workflow plans with them): lejepa.probe_spec.
from lejepa.probe_spec import (  # noqa: F401  (re-exported)
    PROBE_PATTERN,
    few_shot_indices,
    parse_probe_name,
    read_few_shot_file,
    write_few_shot_file,
)
from lejepa.progress import ProgressClock

# Progress of the L2 search and of fine-tuning (INFO; a workflow job's log shows it).
log = logging.getLogger(__name__)

# L2 strengths tried by the linear probe, strongest first (see ``linear`` for the scale).
DEFAULT_L2_GRID = tuple(10.0 ** e for e in np.arange(0.0, -6.5, -0.5))
# Used when a training set is too small to hold anything out (e.g. one shot per class).
FALLBACK_L2 = 1e-3

def _default_device(*arrays) -> torch.device:
    for a in arrays:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _as_tensor(x, *, dtype, device, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if dtype.is_floating_point and not torch.isfinite(x.float()).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return x.to(device=device, dtype=dtype)


def _check_pair(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name}_x must be 2-D (num_samples, num_features), got shape {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}_y must be 1-D with one label per row of {name}_x ({x.shape[0]}), got shape {tuple(y.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name}_x is empty")
    if (y < 0).any():
        raise ValueError(f"{name}_y holds negative labels; expected 0-based class indices")


def _accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (predictions == labels).double().mean().item()


# ---------------------------------------------------------------------------------------
# Linear probe
# ---------------------------------------------------------------------------------------


def _standardise(train_x: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Zero mean, unit variance per feature, with statistics of the training features only."""
    mean = train_x.mean(dim=0)
    std = train_x.std(dim=0, correction=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # constant features stay 0
    return [(x - mean) / std for x in (train_x, *others)]


def _stratified_folds(labels: np.ndarray, *, num_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, held-out) index pairs: every class's samples, in a seeded random order, are dealt
    into ``num_folds`` chunks; fold i holds out chunk i. A class with one sample is never held
    out; folds that hold nothing out are dropped (few shots give fewer folds)."""
    rng = np.random.default_rng(seed)
    chunks = [[] for _ in range(num_folds)]
    always_fit = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) == 1:
            always_fit.append(members)
            continue
        for fold, chunk in enumerate(np.array_split(members, num_folds)):
            chunks[fold].append(chunk)
    everything = np.arange(len(labels))
    folds = []
    for fold_chunks in chunks:
        held_out = np.sort(np.concatenate(fold_chunks)) if fold_chunks else np.array([], dtype=np.int64)
        if len(held_out):
            folds.append((np.setdiff1d(everything, held_out), held_out))
    return folds


def _principal_axes(train_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvectors (F, F) and eigenvalues (F,) of the covariance of standardised features.

    Rotating features onto these axes changes neither the logits' expressiveness nor the
    penalty (||U^T W|| = ||W||), so the probe solves the same problem in coordinates where
    the loss's curvature is nearly diagonal (``_fit_logistic`` preconditions with it)."""
    covariance = (train_z.T.double() @ train_z.double()) / train_z.shape[0]  # (F, F)
    variances, axes = torch.linalg.eigh(covariance)
    return axes.to(train_z.dtype), variances.clamp_min(0.0).to(train_z.dtype)


def _loss_and_gradient(x, y, weight, bias, *, l2: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean cross-entropy + l2 / 2 * ||weight||^2 and its gradients, in closed form.

    d loss / d logits = (softmax - one_hot(y)) / N; the weight's gradient is formed as
    (residual^T x)^T, which reads x row by row: autograd's x^T @ residual is several times
    slower on a CPU for these skinny shapes, and this product is most of a probe's time."""
    # x: (N, F), y: (N,), weight: (F, C), bias: (C,) -> loss (), gradients (F, C) and (C,)
    log_p = torch.log_softmax(x @ weight + bias, dim=1)  # (N, C)
    loss = -log_p.gather(1, y[:, None]).mean() + 0.5 * l2 * weight.pow(2).sum()
    residual = log_p.exp_()  # (N, C), softmax
    residual[torch.arange(len(y), device=y.device), y] -= 1.0
    residual /= len(y)
    return loss, (residual.T @ x).T + l2 * weight, residual.sum(dim=0)


def _fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    num_classes: int,
    l2: float,
    variances: torch.Tensor,
    max_iter: int,
    tolerance_grad: float = 1e-5,
    init=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise mean cross-entropy + l2 / 2 * ||W||^2 (bias unpenalised) with full-batch L-BFGS.

    ``x`` (N, F) holds features on their principal axes, with ``variances`` (F,) along them.
    The loss's Hessian is then close to diag(variances) x (softmax covariance, about
    1 / num_classes) + l2, so L-BFGS runs on V = W / r with r = (variances / num_classes
    + l2)^(-1/2): a nearly isotropic problem that converges in tens of evaluations instead of
    hundreds. It stops when the largest gradient entry in V falls below ``tolerance_grad``
    or after ``max_iter`` iterations. ``init`` (weight, bias) warm-starts it.
    """
    # x: (N, F), y: (N,) -> weight (F, C), bias (C,)
    scale = (variances / num_classes + l2).rsqrt()[:, None]  # (F, 1)
    bias_scale = float(num_classes) ** 0.5  # the bias's curvature is about 1 / num_classes
    if init is None:
        v = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, device=x.device)
        u = torch.zeros(num_classes, dtype=x.dtype, device=x.device)
    else:
        v, u = init[0].detach() / scale, init[1].detach() / bias_scale
    optimizer = torch.optim.LBFGS(
        [v, u],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=tolerance_grad,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    @torch.no_grad()
    def closure():  # L-BFGS reads the gradients from .grad; chain rule through W = V * r, b = u * s
        loss, weight_gradient, bias_gradient = _loss_and_gradient(x, y, v * scale, u * bias_scale, l2=l2)
        v.grad, u.grad = (weight_gradient * scale).contiguous(), bias_gradient * bias_scale
        return loss

    optimizer.step(closure)
    return v * scale, u * bias_scale


def _predict_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return (x @ weight + bias).argmax(dim=1)


def _choose_l2(folds, *, num_classes, variances, l2_grid, patience, max_iter) -> tuple[float, dict, tuple]:
    """Walk ``l2_grid`` from strong to weak (warm starts per fold) and return the strength with
    the best pooled held-out accuracy (ties: the stronger), {strength: accuracy %} and the
    folds' mean (weight, bias) at that strength (a warm start for the final fit).
    Logs each strength's accuracy and the time left for the rest of the grid (at most: the
    walk may stop early)."""
    params = [None] * len(folds)
    selection_accuracy, best, chosen, chosen_params, since_best = {}, -1.0, None, None, 0
    grid = sorted(l2_grid, reverse=True)
    clock = ProgressClock(len(grid))
    for tried, strength in enumerate(grid, start=1):
        correct = total = 0
        for i, (fit_z, fit_y, held_z, held_y) in enumerate(folds):
            params[i] = _fit_logistic(fit_z, fit_y, num_classes=num_classes, l2=strength, variances=variances,
                                      max_iter=max_iter, init=params[i])
            correct += (_predict_linear(held_z, *params[i]) == held_y).sum().item()
            total += len(held_y)
        selection_accuracy[float(strength)] = 100.0 * correct / total
        if selection_accuracy[float(strength)] > best:
            best, chosen, since_best = selection_accuracy[float(strength)], float(strength), 0
            chosen_params = tuple(torch.stack(p).mean(dim=0) for p in zip(*params))
        else:
            since_best += 1
        log.info(
            "L2 search: l2 %.3g held-out accuracy %.2f%% (best %.2f%% at l2 %.3g); strength %s at most",
            strength, selection_accuracy[float(strength)], best, chosen, clock.done(tried),
        )  # fmt: skip
        if since_best == patience:  # weaker penalties only overfit more from here on
            break
    return chosen, selection_accuracy, chosen_params


def linear(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    val_x=None,
    val_y=None,
    seed: int = 0,
    l2: float | None = None,
    l2_grid=DEFAULT_L2_GRID,
    folds: int = 5,
    max_cv_samples: int = 10_000,
    patience: int = 3,
    max_iter: int = 200,
    device=None,
) -> dict:
    """Frozen linear probe: multinomial logistic regression on standardised features.

    Objective: mean cross-entropy + l2 / 2 * ||W||^2 (bias unpenalised), solved by full-batch
    L-BFGS on ``device`` (default: the inputs' device, else CUDA when available), on the
    features' principal axes with a diagonal preconditioner (``_fit_logistic``; a rotation,
    so the solution is the same). This is scikit-learn's ``LogisticRegression(C=1 / (l2 *
    num_train))``; the result gives that C.

    The L2 strength is chosen over ``l2_grid`` by accuracy on ``val_x, val_y`` when given,
    otherwise by stratified ``folds``-fold cross-validation on the training set (seeded by
    ``seed``), or, above ``max_cv_samples`` training samples, on its first fold only (a
    1 / ``folds`` holdout, large enough to be precise and ``folds`` times cheaper). The grid is
    walked from strong to weak with warm starts, ties go to the stronger penalty, and the
    walk stops after ``patience`` strengths without improvement. The probe is then refit on
    all of the training set with the same C (l2 scaled by fit size / training size, as
    scikit-learn's cross-validation does), warm-started from the held-out fits at that
    strength. When no class has two training samples (one shot per class) nothing can be
    held out and ``FALLBACK_L2`` is used. Pass ``l2`` to skip the search; ``l2_selection``
    in the result says which rule applied. ``linear_on_splits`` applies the workflow's rule
    for when a val split is used.

    Returns a dict: accuracy (top-1 %, test), train_accuracy, l2 (of the final fit), C,
    l2_selection, selection_accuracy ({grid strength: held-out accuracy %}), num_train,
    num_test, num_classes, device.
    """
    device = torch.device(device) if device is not None else _default_device(train_x, test_x)
    train_x = _as_tensor(train_x, dtype=torch.float32, device=device, name="train_x")
    test_x = _as_tensor(test_x, dtype=torch.float32, device=device, name="test_x")
    train_y = _as_tensor(train_y, dtype=torch.long, device=device, name="train_y")
    test_y = _as_tensor(test_y, dtype=torch.long, device=device, name="test_y")
    _check_pair(train_x, train_y, "train")
    _check_pair(test_x, test_y, "test")
    if test_x.shape[1] != train_x.shape[1]:
        raise ValueError(f"test_x has {test_x.shape[1]} features, train_x has {train_x.shape[1]}")
    if (val_x is None) != (val_y is None):
        raise ValueError("give both val_x and val_y, or neither")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    num_train = train_x.shape[0]

    others = [test_x]
    if val_x is not None:
        val_x = _as_tensor(val_x, dtype=torch.float32, device=device, name="val_x")
        val_y = _as_tensor(val_y, dtype=torch.long, device=device, name="val_y")
        _check_pair(val_x, val_y, "val")
        if val_x.shape[1] != train_x.shape[1]:
            raise ValueError(f"val_x has {val_x.shape[1]} features, train_x has {train_x.shape[1]}")
        num_classes = max(num_classes, int(val_y.max()) + 1)
        others.append(val_x)
    train_z, *others_z = _standardise(train_x, *others)
    axes, variances = _principal_axes(train_z)
    train_z, test_z, *val_z = (z @ axes for z in (train_z, *others_z))  # (N, F) on the principal axes

    if val_x is not None:
        selection_folds = [(train_z, train_y, val_z[0], val_y)]
        selection = "val"
    else:
        index_folds = _stratified_folds(train_y.cpu().numpy(), num_folds=folds, seed=seed)
        if num_train > max_cv_samples:
            index_folds = index_folds[:1]
        selection_folds = [
            (train_z[fit], train_y[fit], train_z[held], train_y[held])
            for fit, held in ((torch.as_tensor(f, device=device), torch.as_tensor(h, device=device))
                              for f, h in index_folds)
        ]
        if not selection_folds:
            selection = "fallback (too few samples to hold out)"
        else:
            selection = f"{len(selection_folds)}-fold cross-validation" if len(selection_folds) > 1 else "holdout"

    selection_accuracy, init = {}, None
    if l2 is not None:
        selection = "fixed"
    elif not selection_folds:
        l2 = FALLBACK_L2
    else:
        chosen, selection_accuracy, init = _choose_l2(
            selection_folds, num_classes=num_classes, variances=variances, l2_grid=l2_grid, patience=patience,
            max_iter=max_iter,
        )  # fmt: skip
        mean_fit_size = np.mean([len(fold[1]) for fold in selection_folds])
        l2 = chosen * mean_fit_size / num_train  # the same C = 1 / (l2 * n) on all the training set

    weight, bias = _fit_logistic(train_z, train_y, num_classes=num_classes, l2=l2, variances=variances,
                                 max_iter=max_iter, init=init)
    return {
        "accuracy": _accuracy(_predict_linear(test_z, weight, bias), test_y),
        "train_accuracy": _accuracy(_predict_linear(train_z, weight, bias), train_y),
        "l2": float(l2),
        "C": 1.0 / (float(l2) * num_train),
        "l2_selection": selection,
        "selection_accuracy": selection_accuracy,
        "num_train": int(num_train),
        "num_test": int(test_x.shape[0]),
        "num_classes": num_classes,
        "device": str(device),
    }


def linear_on_splits(train, test, *, val=None, train_indices=None, seed: int = 0, device=None, **options) -> dict:
    """The linear probe of a dataset's splits, each (features, labels): the workflow's protocol.

    Fits on ``train``, or on its rows ``train_indices`` (a few-shot subset), and tests on
    ``test``. The L2 strength is chosen on ``val`` when the dataset has one and the probe uses
    all of train, else on a held-out part of train (``linear``'s folds, seeded by ``seed``), as
    config/probe.yaml documents. Both the probe rule (lejepa.evaluation) and the recipe bench
    (lejepa.recipe) call this, so their numbers come from one path. ``options`` are
    ``linear``'s (l2_grid, folds, max_cv_samples, patience, max_iter, l2). Returns ``linear``'s
    dict.
    """
    train_x, train_y = train
    if train_indices is not None:
        index = np.asarray(train_indices, dtype=np.int64)  # indexes numpy arrays and torch tensors alike
        train_x, train_y = train_x[index], train_y[index]
    use_val = val is not None and train_indices is None
    return linear(
        train_x, train_y, *test,
        val_x=val[0] if use_val else None, val_y=val[1] if use_val else None,
        seed=seed, device=device, **options,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# kNN probe
# ---------------------------------------------------------------------------------------


def knn_votes(train_x, train_y, test_x, *, k: int = 20, temperature: float = 0.07, num_classes=None,
              chunk_size: int = 1024, device=None) -> torch.Tensor:
    """Temperature-weighted kNN votes as in DINO's ``eval_knn`` (Caron et al., 2021).

    Features are L2-normalised; each test sample's ``k`` most cosine-similar training
    samples vote for their label with weight exp(similarity / temperature).
    Returns votes of shape (num_test, num_classes), computed ``chunk_size`` test rows at a time.
    """
    device = torch.device(device) if device is not None else _default_device(train_x, test_x)
    train_x = F.normalize(_as_tensor(train_x, dtype=torch.float32, device=device, name="train_x"), dim=1)
    test_x = F.normalize(_as_tensor(test_x, dtype=torch.float32, device=device, name="test_x"), dim=1)
    train_y = _as_tensor(train_y, dtype=torch.long, device=device, name="train_y")
    _check_pair(train_x, train_y, "train")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    num_classes = int(train_y.max()) + 1 if num_classes is None else num_classes
    k = min(k, train_x.shape[0])

    votes = []
    for start in range(0, test_x.shape[0], chunk_size):
        similarity = test_x[start : start + chunk_size] @ train_x.T  # (B, N_train)
        top_similarity, top_index = similarity.topk(k, dim=1)  # (B, k)
        weights = (top_similarity / temperature).exp()
        chunk_votes = torch.zeros(top_index.shape[0], num_classes, device=device)
        chunk_votes.scatter_add_(1, train_y[top_index], weights)  # (B, C)
        votes.append(chunk_votes)
    return torch.cat(votes)


def knn(train_x, train_y, test_x, test_y, *, k: int = 20, temperature: float = 0.07,
        chunk_size: int = 1024, device=None) -> dict:
    """kNN probe (cosine similarity, k = 20, temperature 0.07: DINO's defaults).

    Returns a dict: accuracy (top-1 %), top5 (%, when there are at least 5 classes),
    k, temperature, num_train, num_test.
    """
    device = torch.device(device) if device is not None else _default_device(train_x, test_x)
    train_y = _as_tensor(train_y, dtype=torch.long, device=device, name="train_y")
    test_y = _as_tensor(test_y, dtype=torch.long, device=device, name="test_y")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    votes = knn_votes(train_x, train_y, test_x, k=k, temperature=temperature, num_classes=num_classes,
                      chunk_size=chunk_size, device=device)
    if votes.shape[0] != test_y.shape[0]:
        raise ValueError(f"test_y has {test_y.shape[0]} labels for {votes.shape[0]} rows of test_x")
    result = {
        "accuracy": _accuracy(votes.argmax(dim=1), test_y),
        "k": min(k, len(train_y)),
        "temperature": float(temperature),
        "num_train": len(train_y),
        "num_test": len(test_y),
    }
    if num_classes >= 5:
        top5 = votes.topk(5, dim=1).indices
        result["top5"] = 100.0 * (top5 == test_y[:, None]).any(dim=1).double().mean().item()
    return result


# ---------------------------------------------------------------------------------------
# Full fine-tuning
# ---------------------------------------------------------------------------------------


def _evaluate(model: torch.nn.Module, dataset, *, batch_size: int, num_workers: int, device) -> float:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    correct, total = 0, 0
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            predictions = model(images.to(device)).argmax(dim=1).cpu()
            correct += (predictions == torch.as_tensor(labels)).sum().item()
            total += len(predictions)
    return 100.0 * correct / total


def fine_tune(
    backbone: torch.nn.Module,
    train_set,
    test_set,
    *,
    num_classes: int,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-4,
    head_lr: float = 1e-3,
    weight_decay: float = 0.05,
    seed: int = 0,
    num_workers: int = 0,
    device=None,
) -> dict:
    """Full fine-tuning of ``backbone`` + a new linear head (table 3's "full fine-tuning").

    ``backbone`` maps images (B, 3, H, W) to features (B, F) (e.g. a timm model with
    ``num_classes=0``); it is deep-copied, the caller's module is left untouched.
    ``train_set`` / ``test_set`` are datasets of (image tensor, label), e.g. a
    ``torch.utils.data.Subset`` of the few-shot indices (augment through the dataset's
    transform). AdamW (backbone ``lr``, head ``head_lr``, ``weight_decay`` on both), cosine
    decay over ``epochs`` epochs, cross-entropy, batches shuffled by ``seed``.

    Returns a dict: accuracy (top-1 % on test_set), train_loss (last epoch's mean),
    epochs, num_train, num_test.
    """
    if len(train_set) == 0:
        raise ValueError("fine_tune: train_set is empty")
    if epochs < 1:
        raise ValueError(f"fine_tune: epochs must be >= 1, got {epochs}")
    device = torch.device(device) if device is not None else _default_device()
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        num_workers=num_workers,
        drop_last=len(train_set) % batch_size == 1 and len(train_set) > 1,  # BatchNorm needs 2 samples
    )

    backbone = copy.deepcopy(backbone).to(device)
    backbone.eval()
    with torch.no_grad():
        feature_dim = backbone(train_set[0][0][None].to(device)).shape[1]
    head = torch.nn.Linear(feature_dim, num_classes).to(device)
    model = torch.nn.Sequential(backbone, head)
    optimizer = torch.optim.AdamW(
        [{"params": backbone.parameters(), "lr": lr}, {"params": head.parameters(), "lr": head_lr}],
        weight_decay=weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))

    clock = ProgressClock(epochs)
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for images, labels in loader:
            loss = F.cross_entropy(model(images.to(device)), torch.as_tensor(labels).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        log.info("fine-tune epoch %d/%d: train loss %.4f; epoch %s", epoch, epochs, np.mean(losses), clock.done(epoch))

    return {
        "accuracy": _evaluate(model, test_set, batch_size=max(batch_size, 256), num_workers=num_workers,
                              device=device),
        "train_loss": float(np.mean(losses)),
        "epochs": epochs,
        "num_train": len(train_set),
        "num_test": len(test_set),
    }

