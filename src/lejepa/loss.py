"""The LeJEPA loss (Balestriero & LeCun, arXiv 2511.08544, section 5 / algorithm 1).

    loss = (1 - lam) * prediction + lam * SIGReg

prediction: every view's embedding predicts the mean of the centre views'
embeddings, mu_n = mean over the centre views of z_{n,v}:

    prediction = mean over views v, samples n, dims k of (z_{n,v,k} - mu_{n,k})^2

The centre views are the global ones (the loss's ``global_z``). Algorithm 2 of
the paper says "for non-ViT architectures (e.g., ResNet), set global_views =
all_views": the training setting ``centers`` (auto | global | all, resolved by
``lejepa.families.centers_for``) makes that choice, and lejepa.train passes every
view as ``global_z`` when it is ``all``.

This averages over the K embedding dimensions, as the official minimal
implementation does (the paper's lambda was tuned with it); the paper's
formula writes the squared norm, i.e. K times this value. No stop-gradient.

SIGReg is computed on every view (global and local) with the same directions
(those of ``step``) and averaged over views.

Under DDP each process passes its shard of the batch: SIGReg is that of the
global batch (see lejepa.sigreg) and the prediction term is the shard's
mean, which DDP's gradient averaging turns into the global mean when the
shards have equal sizes (drop_last=True).
"""

from __future__ import annotations

from torch import Tensor, nn

from lejepa.sigreg import SIGReg
from lejepa.stats import check_samples

__all__ = ["LeJEPALoss", "prediction_loss"]


def prediction_loss(*, global_z: Tensor, all_z: Tensor) -> Tensor:
    """Returns the prediction term: every view predicts the mean of the global views.

    Args:
        global_z:
            Embeddings of the global views, (Vg, N, K).
        all_z:
            Embeddings of every view, the global ones included, (V, N, K).

    Returns:
        The mean over views, samples and dimensions of (all_z - mean of global_z over views)^2,
        a scalar tensor.
    """
    centers = global_z.mean(dim=0)  # (N, K)
    return ((all_z - centers) ** 2).mean()


class LeJEPALoss(nn.Module):
    """(1 - lam) * prediction + lam * SIGReg averaged over views.

    Attributes:
        lam:
            Trade-off lambda in [0, 1] (paper default 0.05).
        sigreg:
            A ``SIGReg`` module (default ``SIGReg()``).

    Examples:

        >>> loss_fn = LeJEPALoss(lam=0.05)
        >>> # embeddings of Vg global and V - Vg local views of the same N images
        >>> terms = loss_fn(global_z, all_z, step=step)  # (Vg, N, K), (V, N, K)
        >>> terms["loss"].backward()
    """

    def __init__(self, *, lam: float = 0.05, sigreg: SIGReg | None = None) -> None:
        super().__init__()
        if not (isinstance(lam, (int, float)) and 0.0 <= lam <= 1.0):
            raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
        self.lam = float(lam)
        self.sigreg = SIGReg() if sigreg is None else sigreg

    def extra_repr(self) -> str:
        return f"lam={self.lam}"

    def forward(
        self, global_z: Tensor, all_z: Tensor, *, step: int, predicted_z: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Returns the LeJEPA loss and its two terms.

        Args:
            global_z:
                Embeddings of the global views, (Vg, N, K).
            all_z:
                Embeddings of every view, the global ones included, (V, N, K).
            step:
                The training step; it seeds SIGReg's directions.
            predicted_z:
                A predictor head's output for every view, (V, N, K), or None. When given, the
                prediction term compares it (not all_z) with the centres; SIGReg stays on all_z.

        Returns:
            dict(loss, prediction, sigreg), each a scalar tensor.
        """
        check_samples(global_z, name="global_z", ndims=(3,), expected="(Vg, N, K)")
        check_samples(all_z, name="all_z", ndims=(3,), expected="(V, N, K)")
        if global_z.shape[1:] != all_z.shape[1:]:
            raise ValueError(
                f"global_z (Vg, N, K) and all_z (V, N, K) must agree on N and K, "
                f"got global_z {tuple(global_z.shape)} and all_z {tuple(all_z.shape)}"
            )
        if predicted_z is not None and predicted_z.shape != all_z.shape:
            raise ValueError(
                f"predicted_z must have all_z's shape {tuple(all_z.shape)}, got {tuple(predicted_z.shape)}"
            )
        prediction = prediction_loss(global_z=global_z, all_z=all_z if predicted_z is None else predicted_z)
        sigreg = self.sigreg(all_z, step=step)
        loss = (1 - self.lam) * prediction + self.lam * sigreg
        return {"loss": loss, "prediction": prediction, "sigreg": sigreg}
