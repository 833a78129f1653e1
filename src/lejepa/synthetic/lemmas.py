"""Figures 3, 17 and 18: why embeddings should be isotropic (lemmas 1 and 2 of the paper).

Every experiment compares two 2-D Gaussian embeddings of equal total variance:

- isotropic:   z ~ N(0, I)                       (eigenvalues 1, 1)
- anisotropic: z ~ N(0, R diag(l1, l2) R^T)      (l1 + l2 = 2, eigenvectors rotated by
  ``rotation_deg`` from the coordinate axes)

and a downstream task defined on the embedding through the true parameter w = (1, 0).
With the default 45 degree rotation, w^T Sigma w = 1 for both embeddings, so the projection
u = w^T z that carries the label has the same N(0, 1) law in both cases: the tasks are
equally hard, only the geometry of the embedding differs.

Both embeddings are drawn from the same standard normal numbers (z = g Sigma^{1/2}), so
the comparison is paired.

- Lemma 2 (variance): unregularised least squares has Var(beta_hat | X) = s^2 (X^T X)^{-1};
  for a Gaussian design E[(X^T X)^{-1}] = Sigma^{-1} / (N - d - 1), so the total variance
  s^2 tr(Sigma^{-1}) / (N - d - 1) is smallest for the isotropic embedding (figures 3, 17).
- Lemma 1 (bias): ridge regression E[beta_hat] -> (Sigma + lam I)^{-1} Sigma w as N grows;
  for an anisotropic Sigma this rotates the estimate away from w, so the cosine to the true
  parameter drops below 1 when lam > 0 (figure 18).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lejepa.plots import use_paper_style

EMBEDDINGS = ("isotropic", "anisotropic")
EMBEDDING_COLORS = {"isotropic": "tab:red", "anisotropic": "tab:blue"}  # as in the paper's figure 17
TRUE_PARAMETER = np.array([1.0, 0.0])
TASKS = ("classification", "linear regression", "nonlinear regression")


# ----------------------------------------------------------------------------------------
# Embeddings and tasks
# ----------------------------------------------------------------------------------------


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise ValueError(f"setting {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def embedding_covariance(embedding: str, *, anisotropic_eigenvalues, rotation_deg: float) -> np.ndarray:
    """Covariance (2, 2) of the ``"isotropic"`` or ``"anisotropic"`` embedding; both have the same trace."""
    eigenvalues = np.asarray(anisotropic_eigenvalues, dtype=float)
    if eigenvalues.shape != (2,) or np.any(eigenvalues <= 0):
        raise ValueError(
            f"setting 'anisotropic_eigenvalues' must be two positive numbers, got {anisotropic_eigenvalues!r}"
        )
    if embedding == "isotropic":
        return np.eye(2) * eigenvalues.mean()
    if embedding == "anisotropic":
        angle = np.deg2rad(rotation_deg)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return rotation @ np.diag(eigenvalues) @ rotation.T
    raise ValueError(f"unknown embedding {embedding!r}; expected one of {EMBEDDINGS}")


def _matrix_square_root(covariance: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return eigenvectors @ np.diag(np.sqrt(eigenvalues)) @ eigenvectors.T


def sample_embeddings(standard_normal: np.ndarray, *, anisotropic_eigenvalues, rotation_deg: float) -> dict:
    """Map the same standard normal draws (..., N, 2) to both embeddings."""
    return {
        embedding: standard_normal
        @ _matrix_square_root(
            embedding_covariance(embedding, anisotropic_eigenvalues=anisotropic_eigenvalues, rotation_deg=rotation_deg)
        ).T
        for embedding in EMBEDDINGS
    }


def task_targets(task: str, z: np.ndarray, noise: np.ndarray, *, noise_std: float, frequency: float) -> np.ndarray:
    """Targets of a downstream task on embeddings z (..., N, 2); ``noise`` is standard normal (..., N)."""
    u = z @ TRUE_PARAMETER  # (..., N)
    if task == "classification":  # linearly separable classes, labels in {-1, +1}
        return np.where(u >= 0, 1.0, -1.0)
    if task == "linear regression":
        return u + noise_std * noise
    if task == "nonlinear regression":  # smooth target
        return np.sin(frequency * u) + noise_std * noise
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def ridge_fit(x: np.ndarray, y: np.ndarray, *, ridge: float = 0.0) -> np.ndarray:
    """argmin_beta (1/N) ||y - x beta||^2 + ridge ||beta||^2 for x (..., N, D), y (..., N) -> (..., D)."""
    n, dim = x.shape[-2:]
    gram = np.swapaxes(x, -1, -2) @ x / n  # (..., D, D)
    moment = np.einsum("...nd,...n->...d", x, y) / n  # (..., D)
    return np.linalg.solve(gram + ridge * np.eye(dim), moment[..., None])[..., 0]


def logistic_fit(x: np.ndarray, labels: np.ndarray, *, max_iter: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Unpenalised logistic regression with intercept by Newton's method.

    x (N, D), labels (N,) in {0, 1} -> (D + 1,) = (weights..., intercept). A vanishing ridge
    (1e-8) keeps the Newton step defined if a training set happens to be separable.
    """
    design = np.column_stack([x, np.ones(len(x))])  # (N, D+1)
    theta = np.zeros(design.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (p - labels) + 1e-8 * theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-8 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < tol:
            break
    return theta


# ----------------------------------------------------------------------------------------
# Figure 3: logistic regression decision boundaries over resampled training sets
# ----------------------------------------------------------------------------------------


def compute_fig3(
    *,
    n_train: int = 100,
    n_resamples: int = 100,
    anisotropic_eigenvalues=(1.9, 0.1),
    rotation_deg: float = 45.0,
    label_sharpness: float = 3.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Fit a logistic regression on ``n_resamples`` training sets of ``n_train`` points.

    Labels: y ~ Bernoulli(sigmoid(label_sharpness * w^T z)), w = (1, 0), so the true
    decision boundary is the line w^T z = 0 in both embeddings.

    Returns rows with ``role``: ``fit`` (one fitted boundary w1 z1 + w2 z2 + intercept = 0
    per resample), ``truth`` (the true boundary) and ``sample`` (the training points of
    the first resample, x1, x2, label, for display).
    """
    n_train = _check_positive_int("n_train", n_train, minimum=4)
    n_resamples = _check_positive_int("n_resamples", n_resamples, minimum=2)
    if label_sharpness <= 0:
        raise ValueError(f"setting 'label_sharpness' must be > 0, got {label_sharpness!r}")
    rng = np.random.default_rng(seed)
    standard_normal = rng.standard_normal((n_resamples, n_train, 2))
    label_uniforms = rng.uniform(size=(n_resamples, n_train))
    embeddings = sample_embeddings(
        standard_normal, anisotropic_eigenvalues=anisotropic_eigenvalues, rotation_deg=rotation_deg
    )

    rows = []
    for embedding, z in embeddings.items():
        probability = 1.0 / (1.0 + np.exp(-label_sharpness * (z @ TRUE_PARAMETER)))
        labels = (label_uniforms < probability).astype(float)  # (R, N)
        for resample in range(n_resamples):
            w1, w2, intercept = logistic_fit(z[resample], labels[resample])
            rows.append(dict(embedding=embedding, role="fit", resample=resample, w1=w1, w2=w2, intercept=intercept))
        true_w = label_sharpness * TRUE_PARAMETER
        rows.append(dict(embedding=embedding, role="truth", w1=true_w[0], w2=true_w[1], intercept=0.0))
        for (x1, x2), label in zip(z[0], labels[0]):
            rows.append(dict(embedding=embedding, role="sample", resample=0, x1=x1, x2=x2, label=int(label)))
    columns = ["embedding", "role", "resample", "w1", "w2", "intercept", "x1", "x2", "label"]
    return pd.DataFrame(rows, columns=columns)


def boundary_angles_deg(fits: pd.DataFrame) -> np.ndarray:
    """Orientation (degrees, in (-90, 90]) of each fitted boundary's normal vector (w1, w2)."""
    angle = np.rad2deg(np.arctan2(fits["w2"].to_numpy(), fits["w1"].to_numpy()))
    return (angle + 90.0) % 180.0 - 90.0


def _boundary_segment(w1, w2, intercept, half_length=20.0):
    normal = np.array([w1, w2])
    point = -intercept * normal / normal.dot(normal)
    along = np.array([-w2, w1]) / np.linalg.norm(normal)
    ends = point + np.outer([-half_length, half_length], along)
    return ends[:, 0], ends[:, 1]


def draw_fig3(data: pd.DataFrame, *, limit: float = 3.5, **settings):
    import matplotlib.pyplot as plt

    use_paper_style()
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.3), sharex=True, sharey=True)
    for ax, embedding in zip(axes, EMBEDDINGS):
        rows = data[data["embedding"] == embedding]
        fits = rows[rows["role"] == "fit"]
        for fit in fits.itertuples():
            ax.plot(*_boundary_segment(fit.w1, fit.w2, fit.intercept), color="purple", alpha=0.15, lw=0.8)
        samples = rows[rows["role"] == "sample"]
        for label, color in ((0, "tab:orange"), (1, "tab:green")):
            points = samples[samples["label"] == label]
            ax.scatter(
                points["x1"],
                points["x2"],
                s=9,
                color=color,
                edgecolor="k",
                linewidth=0.3,
                zorder=3,
                label=f"class {label}",
            )
        truth = rows[rows["role"] == "truth"].iloc[0]
        ax.plot(
            *_boundary_segment(truth.w1, truth.w2, truth.intercept),
            color="k",
            ls="--",
            lw=1.2,
            zorder=4,
            label="true boundary",
        )
        spread = np.std(boundary_angles_deg(fits))
        ax.set_title(f"{embedding} embedding\nboundary angle s.d. {spread:.1f}°")
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.set_xlabel("$z_1$")
    axes[0].set_ylabel("$z_2$")
    axes[0].plot([], [], color="purple", alpha=0.6, label=f"fitted boundaries ({len(fits)} training sets)")
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.04)
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# ----------------------------------------------------------------------------------------
# Figure 17: distribution of fitted OLS parameters
# ----------------------------------------------------------------------------------------


def compute_fig17(
    *,
    n_train: int = 100,
    n_resamples: int = 1000,
    anisotropic_eigenvalues=(1.9, 0.1),
    rotation_deg: float = 45.0,
    noise_std: float = 0.5,
    frequency: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """OLS parameters (beta1, beta2) fitted on ``n_resamples`` training sets, per task and embedding.

    Tasks on u = w^T z: classification y = sign(u); linear regression y = u + noise_std * e;
    nonlinear regression y = sin(frequency * u) + noise_std * e.

    Rows with ``role == "population"`` hold the limit of OLS as N -> infinity, from Stein's
    lemma: Sigma^{-1} E[z f(u)] = w E[f'(u)] for u ~ N(0, w^T Sigma w), i.e.
    sqrt(2/pi) w / sqrt(w^T Sigma w) for sign and w frequency exp(-frequency^2 w^T Sigma w / 2)
    for the sine. It is the same point for both embeddings when w^T Sigma w is equal.
    """
    n_train = _check_positive_int("n_train", n_train, minimum=4)
    n_resamples = _check_positive_int("n_resamples", n_resamples, minimum=2)
    if noise_std < 0:
        raise ValueError(f"setting 'noise_std' must be >= 0, got {noise_std!r}")
    rng = np.random.default_rng(seed)
    standard_normal = rng.standard_normal((n_resamples, n_train, 2))
    noise = rng.standard_normal((n_resamples, n_train))
    embeddings = sample_embeddings(
        standard_normal, anisotropic_eigenvalues=anisotropic_eigenvalues, rotation_deg=rotation_deg
    )

    frames = []
    for task in TASKS:
        for embedding, z in embeddings.items():
            targets = task_targets(task, z, noise, noise_std=noise_std, frequency=frequency)
            beta = ridge_fit(z, targets)  # (R, 2)
            frames.append(
                pd.DataFrame(
                    dict(
                        task=task,
                        embedding=embedding,
                        role="fit",
                        resample=np.arange(n_resamples),
                        beta1=beta[:, 0],
                        beta2=beta[:, 1],
                    )
                )
            )
            covariance = embedding_covariance(
                embedding, anisotropic_eigenvalues=anisotropic_eigenvalues, rotation_deg=rotation_deg
            )
            u_variance = TRUE_PARAMETER @ covariance @ TRUE_PARAMETER
            if task == "classification":
                population = np.sqrt(2 / np.pi / u_variance) * TRUE_PARAMETER
            elif task == "linear regression":
                population = TRUE_PARAMETER
            else:
                population = frequency * np.exp(-(frequency**2) * u_variance / 2) * TRUE_PARAMETER
            frames.append(
                pd.DataFrame(
                    [dict(task=task, embedding=embedding, role="population", beta1=population[0], beta2=population[1])]
                )
            )
    return pd.DataFrame(
        pd.concat(frames, ignore_index=True), columns=["task", "embedding", "role", "resample", "beta1", "beta2"]
    )


def draw_fig17(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    use_paper_style()
    fig, axes = plt.subplots(len(TASKS), 3, figsize=(7.0, 6.8), gridspec_kw=dict(width_ratios=[1.15, 1, 1]))
    for row, task in enumerate(TASKS):
        rows = data[data["task"] == task]
        fits = rows[rows["role"] == "fit"]
        scatter_ax = axes[row, 0]
        summary = []
        for embedding in ("anisotropic", "isotropic"):  # the wider cloud first, underneath
            mine = fits[fits["embedding"] == embedding]
            scatter_ax.scatter(
                mine["beta1"], mine["beta2"], s=2, alpha=0.35, color=EMBEDDING_COLORS[embedding], linewidth=0
            )
            summary.append((embedding, mine["beta1"].var() + mine["beta2"].var()))
            for col, name in ((1, "beta1"), (2, "beta2")):
                axes[row, col].hist(
                    mine[name],
                    bins=40,
                    density=True,
                    histtype="stepfilled",
                    alpha=0.45,
                    color=EMBEDDING_COLORS[embedding],
                )
        for line, (embedding, total_variance) in enumerate(sorted(summary)):
            scatter_ax.text(
                0.03,
                0.97 - 0.1 * line,
                f"tr Var = {total_variance:.4f}",
                transform=scatter_ax.transAxes,
                va="top",
                fontsize=7,
                color=EMBEDDING_COLORS[embedding],
            )
        population = rows[rows["role"] == "population"].iloc[0]
        scatter_ax.scatter([population.beta1], [population.beta2], marker="*", s=60, color="k", zorder=5)
        for col, name in ((1, "beta1"), (2, "beta2")):
            axes[row, col].axvline(population[name], color="k", ls="--", lw=1)
            axes[row, col].set_xlabel(rf"$\hat\beta_{col}$")
            axes[row, col].set_ylabel("density")
        scatter_ax.set_aspect("equal", adjustable="datalim")
        scatter_ax.set_xlabel(r"$\hat\beta_1$")
        scatter_ax.set_ylabel(f"{task}\n" + r"$\hat\beta_2$")
    axes[0, 0].set_title("fitted parameters")
    axes[0, 1].set_title("marginal of $\\hat\\beta_1$")
    axes[0, 2].set_title("marginal of $\\hat\\beta_2$")
    handles = [Line2D([], [], marker="o", ls="", color=EMBEDDING_COLORS[e], label=f"{e} embedding") for e in EMBEDDINGS]
    handles.append(
        Line2D([], [], marker="*", ls="--", color="k", markersize=8, label="population OLS ($N\\to\\infty$)")
    )
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.03))
    fig.tight_layout(rect=(0, 0.04, 1, 1), h_pad=1.5)
    return fig


# ----------------------------------------------------------------------------------------
# Figure 18: ridge (Tikhonov) bias, accuracy and cosine to the true parameter
# ----------------------------------------------------------------------------------------


def population_ridge_cosine(covariance: np.ndarray, ridge: np.ndarray) -> np.ndarray:
    """Cosine between w and lim_N E[beta_ridge] = (Sigma + ridge I)^{-1} Sigma w (lemma 1), per ridge value."""
    limits = np.stack(
        [np.linalg.solve(covariance + lam * np.eye(2), covariance @ TRUE_PARAMETER) for lam in np.atleast_1d(ridge)]
    )
    return limits @ TRUE_PARAMETER / np.linalg.norm(limits, axis=1) / np.linalg.norm(TRUE_PARAMETER)


def compute_fig18(
    *,
    train_sizes=(100, 1000),
    n_resamples: int = 100,
    n_test: int = 10000,
    ridge_min: float = 1e-3,
    ridge_max: float = 1e2,
    n_ridge: int = 21,
    anisotropic_eigenvalues=(1.9, 0.1),
    rotation_deg: float = 45.0,
    noise_std: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Ridge fits on resampled training sets for a grid of Tikhonov strengths.

    Objective: (1/N) ||y - Z beta||^2 + ridge ||beta||^2. Tasks: classification (y = sign(u))
    scored by test accuracy of sign(z^T beta); linear regression (y = u + noise) scored by
    test R^2. For both, ``cosine`` is cos(beta_hat, w) averaged over resamples. Rows with
    ``source == "lemma 1"`` hold the N -> infinity cosine (Sigma + ridge I)^{-1} Sigma w vs w.
    Columns: task, embedding, source, n_train, ridge, metric, mean, std.
    """
    train_sizes = [_check_positive_int("train_sizes", n, minimum=4) for n in train_sizes]
    n_resamples = _check_positive_int("n_resamples", n_resamples, minimum=2)
    n_test = _check_positive_int("n_test", n_test, minimum=10)
    n_ridge = _check_positive_int("n_ridge", n_ridge, minimum=2)
    if not 0 < ridge_min < ridge_max:
        raise ValueError(
            "settings 'ridge_min', 'ridge_max' must satisfy 0 < ridge_min < ridge_max, "
            f"got {ridge_min!r}, {ridge_max!r}"
        )
    ridges = np.geomspace(ridge_min, ridge_max, n_ridge)
    rng = np.random.default_rng(seed)
    test = sample_embeddings(
        rng.standard_normal((n_test, 2)), anisotropic_eigenvalues=anisotropic_eigenvalues, rotation_deg=rotation_deg
    )
    test_noise = rng.standard_normal(n_test)

    rows = []
    for n_train in train_sizes:
        train = sample_embeddings(
            rng.standard_normal((n_resamples, n_train, 2)),
            anisotropic_eigenvalues=anisotropic_eigenvalues,
            rotation_deg=rotation_deg,
        )
        train_noise = rng.standard_normal((n_resamples, n_train))
        for task, score_name in (("classification", "accuracy"), ("linear regression", "r2")):
            for embedding in EMBEDDINGS:
                targets = task_targets(task, train[embedding], train_noise, noise_std=noise_std, frequency=1.0)
                test_targets = task_targets(task, test[embedding], test_noise, noise_std=noise_std, frequency=1.0)
                for ridge in ridges:
                    beta = ridge_fit(train[embedding], targets, ridge=ridge)  # (R, 2)
                    predictions = beta @ test[embedding].T  # (R, n_test)
                    if task == "classification":
                        score = np.mean(np.where(predictions >= 0, 1.0, -1.0) == test_targets, axis=1)
                    else:
                        score = 1 - np.mean((predictions - test_targets) ** 2, axis=1) / np.var(test_targets)
                    cosine = beta @ TRUE_PARAMETER / np.linalg.norm(beta, axis=1) / np.linalg.norm(TRUE_PARAMETER)
                    for metric, values in ((score_name, score), ("cosine", cosine)):
                        rows.append(
                            dict(
                                task=task,
                                embedding=embedding,
                                source="simulation",
                                n_train=n_train,
                                ridge=ridge,
                                metric=metric,
                                mean=values.mean(),
                                std=values.std(),
                            )
                        )
    for task in ("classification", "linear regression"):
        for embedding in EMBEDDINGS:
            covariance = embedding_covariance(
                embedding, anisotropic_eigenvalues=anisotropic_eigenvalues, rotation_deg=rotation_deg
            )
            for ridge, cosine in zip(ridges, population_ridge_cosine(covariance, ridges)):
                rows.append(
                    dict(
                        task=task,
                        embedding=embedding,
                        source="lemma 1",
                        n_train=np.nan,
                        ridge=ridge,
                        metric="cosine",
                        mean=cosine,
                        std=0.0,
                    )
                )
    return pd.DataFrame(rows, columns=["task", "embedding", "source", "n_train", "ridge", "metric", "mean", "std"])


def draw_fig18(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt

    use_paper_style()
    fig, axes = plt.subplots(2, 2, figsize=(6.8, 4.8), sharex=True)
    simulated = data[data["source"] == "simulation"]
    train_sizes = sorted(simulated["n_train"].unique())
    line_styles = ["-", "--", ":", "-."]
    for col, (task, score_name, score_label) in enumerate(
        (("classification", "accuracy", "test accuracy"), ("linear regression", "r2", "test $R^2$"))
    ):
        for row, metric in enumerate((score_name, "cosine")):
            ax = axes[row, col]
            for embedding in EMBEDDINGS:
                for n_train, style in zip(train_sizes, line_styles):
                    curve = simulated[
                        (simulated["task"] == task)
                        & (simulated["embedding"] == embedding)
                        & (simulated["n_train"] == n_train)
                        & (simulated["metric"] == metric)
                    ]
                    ax.plot(
                        curve["ridge"],
                        curve["mean"],
                        color=EMBEDDING_COLORS[embedding],
                        ls=style,
                        lw=1.4,
                        label=f"{embedding}, N = {int(n_train)}",
                    )
                    ax.fill_between(
                        curve["ridge"],
                        curve["mean"] - curve["std"],
                        curve["mean"] + curve["std"],
                        color=EMBEDDING_COLORS[embedding],
                        alpha=0.08,
                        lw=0,
                    )
                if metric == "cosine":
                    limit = data[
                        (data["source"] == "lemma 1") & (data["task"] == task) & (data["embedding"] == embedding)
                    ]
                    ax.plot(
                        limit["ridge"],
                        limit["mean"],
                        color="k",
                        lw=0.9,
                        ls=(0, (1, 1.5)),
                        label="lemma 1, $N\\to\\infty$" if embedding == "anisotropic" else None,
                    )
            ax.set_xscale("log")
            ax.set_ylabel(score_label if metric != "cosine" else r"cos($\hat\beta$, $\beta_{true}$)")
            if row == 0:
                ax.set_title(task)
            else:
                ax.set_xlabel(r"Tikhonov strength $\lambda$")
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
