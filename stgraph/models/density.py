"""Scores of embeddings against the training embeddings: how unusual is ``h`` for normal data?

A density here is a small object fitted on training embeddings ``[N, H]`` that scores new ones
(higher = more abnormal)::

    density = MahalanobisDensity().fit(train_h)          # train_h: Tensor [N, H]
    scores = density.score(test_h)                      # Tensor [M], in test_h's dtype
    state = density.state_dict();  MahalanobisDensity.from_state(state)

One implementation serves training and test paths alike: :meth:`score` computes in the dtype of
its input (float64 for the cross-fitted training scores, float32 for test embeddings).

:func:`cross_fitted_scores` scores each training video with a density fitted on the *other*
videos, so that quantiles of the training scores estimate the scores of new normal footage (alarm
thresholds), not of the very objects the density was fitted to.
"""
from __future__ import annotations

import math
from typing import Callable, ClassVar, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["EmbeddingDensity", "MahalanobisDensity", "KNNDensity", "GMMDensity",
           "cross_fitted_scores", "DENSITIES", "MAX_FOLDS", "make_density"]

#: Most folds :func:`cross_fitted_scores` makes (videos are grouped round-robin beyond this).
MAX_FOLDS = 10


class EmbeddingDensity:
    """Protocol: ``fit(h [N, H]) -> self``, ``score(h [M, H]) -> [M]``, ``state_dict()``,
    ``from_state(state)``. Higher scores mean more abnormal."""

    #: Fewest training embeddings :meth:`fit` accepts.
    min_samples: ClassVar[int] = 2

    def fit(self, h: Tensor) -> "EmbeddingDensity":  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: Mapping[str, Tensor]) -> "EmbeddingDensity":  # pragma: no cover
        raise NotImplementedError

    def _check_fit_input(self, h: Tensor) -> Tensor:
        h = torch.as_tensor(h)
        if h.dim() != 2 or h.shape[0] < self.min_samples:
            raise ValueError(f"{type(self).__name__} needs at least {self.min_samples} embeddings "
                             f"[N, H], got shape {tuple(h.shape)}")
        if not bool(torch.isfinite(h).all()):
            raise ValueError(f"{type(self).__name__}: training embeddings contain NaN or inf")
        return h


class MahalanobisDensity(EmbeddingDensity):
    """Mahalanobis distance to the training embeddings (mean and Ledoit-Wolf shrunk covariance).

    The covariance is shrunk towards a scaled identity (scikit-learn's ``LedoitWolf``), so it is
    invertible even with fewer embeddings than dimensions. ``mean_`` [H] and ``precision_`` [H, H]
    are kept in float64; :meth:`score` casts them to the input's dtype.

    Example:
        >>> d = MahalanobisDensity().fit(torch.randn(100, 4, dtype=torch.float64))
        >>> d.score(torch.zeros(1, 4)).shape
        torch.Size([1])
    """

    def fit(self, h: Tensor) -> "MahalanobisDensity":
        from sklearn.covariance import LedoitWolf

        h = self._check_fit_input(h)
        fit = LedoitWolf().fit(h.detach().cpu().to(torch.float64).numpy())
        self.mean_ = torch.from_numpy(fit.location_)
        self.precision_ = torch.from_numpy(fit.precision_)
        return self

    def score(self, h: Tensor) -> Tensor:
        """Distances [M] >= 0 of embeddings ``h`` [M, H], computed in ``h``'s dtype."""
        mean = self.mean_.to(h.device, h.dtype)
        precision = self.precision_.to(h.device, h.dtype)
        centred = h - mean
        return ((centred @ precision) * centred).sum(dim=-1).clamp_min(0).sqrt()

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean_, "precision": self.precision_}

    @classmethod
    def from_state(cls, state: Mapping[str, Tensor]) -> "MahalanobisDensity":
        density = cls()
        density.mean_ = state["mean"].to(torch.float64)
        density.precision_ = state["precision"].to(torch.float64)
        if density.precision_.shape != (density.mean_.numel(),) * 2:
            raise ValueError(f"Mahalanobis state: precision {tuple(density.precision_.shape)} does "
                             f"not match mean {tuple(density.mean_.shape)}")
        return density

    def __repr__(self) -> str:
        return "MahalanobisDensity()"


class KNNDensity(EmbeddingDensity):
    """Mean Euclidean distance to the ``k`` nearest training embeddings (AI-VAD's kNN score).

    Unlike a Gaussian, it follows a training set with several clusters (walkers going left and
    right, near and far). At most ``max_bank`` training embeddings are kept (a seeded random
    subset beyond that), which bounds memory, the saved state and the cost per query
    (``O(M x max_bank x H)``, in chunks of ``chunk`` queries).

    Args:
        k: neighbours averaged (the first one is the query itself only when it is a training
            embedding; cross-fitted training scores never are).
        max_bank: most training embeddings kept.
        seed: seeds the subset.
        chunk: queries per distance block (memory bound, does not change scores).

    Example:
        >>> d = KNNDensity(k=2).fit(torch.randn(50, 3, dtype=torch.float64))
        >>> d.score(torch.zeros(4, 3)).shape
        torch.Size([4])
    """

    def __init__(self, k: int = 5, max_bank: int = 20000, seed: int = 0, chunk: int = 2048):
        self.k = k
        self.max_bank = max_bank
        self.seed = seed
        self.chunk = chunk

    @property
    def min_samples(self) -> int:  # type: ignore[override]
        return max(2, int(self.k))

    def fit(self, h: Tensor) -> "KNNDensity":
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"KNNDensity: k must be an int >= 1, got {self.k!r}")
        h = self._check_fit_input(h).detach().cpu().to(torch.float64)
        if h.shape[0] > self.max_bank:
            generator = torch.Generator().manual_seed(int(self.seed))
            h = h[torch.randperm(h.shape[0], generator=generator)[: self.max_bank]]
        self.bank_ = h
        return self

    def score(self, h: Tensor) -> Tensor:
        """Mean distance [M] >= 0 of ``h`` [M, H] to its k nearest training embeddings."""
        bank = self.bank_.to(h.device, h.dtype)
        k = min(int(self.k), bank.shape[0])
        out = [torch.cdist(part, bank).topk(k, dim=1, largest=False).values.mean(dim=1)
               for part in h.split(max(1, int(self.chunk)))]
        return torch.cat(out) if out else h.new_zeros(0)

    def state_dict(self) -> dict[str, Tensor]:
        return {"bank": self.bank_, "k": torch.tensor(int(self.k))}

    @classmethod
    def from_state(cls, state: Mapping[str, Tensor]) -> "KNNDensity":
        density = cls(k=int(state["k"]))
        density.bank_ = state["bank"].to(torch.float64)
        if density.bank_.dim() != 2:
            raise ValueError(f"kNN state: bank must be [N, H], got {tuple(density.bank_.shape)}")
        return density

    def __repr__(self) -> str:
        return f"KNNDensity(k={self.k})"


class GMMDensity(EmbeddingDensity):
    """Negative log-likelihood under a Gaussian mixture (scikit-learn ``GaussianMixture``, full
    covariances, ``reg_covar`` added to each diagonal) fitted on the training embeddings.

    Scores are ``-log p(h)`` computed in torch from the saved weights, means and Cholesky factors
    of the precisions, in the input's dtype.

    Args:
        components: mixture components (fewer when there are fewer training embeddings).
        reg_covar: ridge on each covariance's diagonal.
        seed: seeds the k-means initialisation.

    Example:
        >>> d = GMMDensity(components=2).fit(torch.randn(60, 3, dtype=torch.float64))
        >>> d.score(torch.zeros(2, 3)).shape
        torch.Size([2])
    """

    def __init__(self, components: int = 8, reg_covar: float = 1e-3, seed: int = 0):
        self.components = components
        self.reg_covar = reg_covar
        self.seed = seed

    def fit(self, h: Tensor) -> "GMMDensity":
        from sklearn.mixture import GaussianMixture

        h = self._check_fit_input(h).detach().cpu().to(torch.float64).numpy()
        n = max(1, min(int(self.components), h.shape[0] // 2))
        gmm = GaussianMixture(n, covariance_type="full", reg_covar=float(self.reg_covar),
                              random_state=int(self.seed)).fit(h)
        self.log_weights_ = torch.from_numpy(gmm.weights_).log()
        self.means_ = torch.from_numpy(gmm.means_)
        self.precision_chol_ = torch.from_numpy(gmm.precisions_cholesky_)
        return self

    def score(self, h: Tensor) -> Tensor:
        """``-log p(h)`` [M] of embeddings ``h`` [M, H], in ``h``'s dtype."""
        means = self.means_.to(h.device, h.dtype)                 # [C, H]
        chol = self.precision_chol_.to(h.device, h.dtype)         # [C, H, H]
        # y[m, c] = (h_m - mu_c)^T L_c   (sklearn's log-likelihood with precision Cholesky L_c)
        y = torch.einsum("mh,chk->mck", h, chol) - torch.einsum("ch,chk->ck", means, chol)
        log_det = chol.diagonal(dim1=1, dim2=2).log().sum(dim=1)  # [C]
        width = h.shape[1]
        log_prob = (-0.5 * (width * math.log(2 * math.pi) + (y * y).sum(dim=2)) + log_det
                    + self.log_weights_.to(h.device, h.dtype))
        return -torch.logsumexp(log_prob, dim=1)

    def state_dict(self) -> dict[str, Tensor]:
        return {"log_weights": self.log_weights_, "means": self.means_,
                "precision_chol": self.precision_chol_}

    @classmethod
    def from_state(cls, state: Mapping[str, Tensor]) -> "GMMDensity":
        density = cls(components=int(state["means"].shape[0]))
        density.log_weights_ = state["log_weights"].to(torch.float64)
        density.means_ = state["means"].to(torch.float64)
        density.precision_chol_ = state["precision_chol"].to(torch.float64)
        c, width = density.means_.shape
        if density.precision_chol_.shape != (c, width, width) or density.log_weights_.shape != (c,):
            raise ValueError("GMM state: weights, means and precision factors do not match")
        return density

    def __repr__(self) -> str:
        return f"GMMDensity(components={self.components})"


#: Densities by the name an estimator's ``scoring`` parameter uses.
DENSITIES: dict[str, type[EmbeddingDensity]] = {"mahalanobis": MahalanobisDensity,
                                                "knn": KNNDensity, "gmm": GMMDensity}


def make_density(name: str) -> EmbeddingDensity:
    """An unfitted density by name (a key of :data:`DENSITIES`)."""
    if name not in DENSITIES:
        raise ValueError(f"unknown density {name!r}; choose one of {sorted(DENSITIES)}")
    return DENSITIES[name]()


def cross_fitted_scores(videos: Sequence[Tensor],
                        make: Callable[[], EmbeddingDensity] = MahalanobisDensity) -> Tensor:
    """Out-of-sample scores [N] of training embeddings (leave videos out), float64.

    A density fitted on some embeddings puts those same embeddings closer than new normal ones
    (measured on synthetic scenes with H = 256: in-sample Mahalanobis median 6.8 against 24.5 on
    a held-out normal video), so in-sample scores make alarm thresholds that most new objects
    exceed. Here each video is scored with the density of the other videos (at most
    :data:`MAX_FOLDS` folds, videos grouped round-robin); a single video is split into its first
    and second half. The result estimates the scores of a new normal video, slightly
    pessimistically (each fold's density sees fewer videos than the final one).

    Args:
        videos: embeddings [N_v, H] of each training video, objects in frame order.
        make: builds an unfitted density.

    Returns:
        float64 [sum N_v], the folds' scores concatenated (fold order, not video order).
    """
    videos = [torch.as_tensor(v).to(torch.float64) for v in videos]
    if not videos:
        raise ValueError("cross_fitted_scores needs at least one video")
    minimum = make().min_samples
    if len(videos) >= 2:
        n_folds = min(len(videos), MAX_FOLDS)
        folds = [torch.cat(videos[k::n_folds]) for k in range(n_folds)]
    else:
        half = len(videos[0]) // 2
        folds = [videos[0][:half], videos[0][half:]]
    rests = [torch.cat([f for j, f in enumerate(folds) if j != k]) for k in range(len(folds))]
    if min(len(fold) for fold in folds) < 1 or min(len(rest) for rest in rests) < minimum:
        everything = torch.cat(videos)  # too few embeddings to hold any out
        return make().fit(everything).score(everything)
    return torch.cat([make().fit(rest).score(fold) for fold, rest in zip(folds, rests)])

