"""SSRL (weakly supervised, ``consumes = "snippets"``) and the linear MIL baseline.

Li et al., "Scale-aware spatio-temporal relation learning for video anomaly detection" (ECCV
2022); the network is :class:`stgraph.nn.ssrl.SSRLNet` (PSR, MPA, VTR, classifier). Both
estimators here take, per video, :class:`~stgraph.features.snippets.SnippetFeatures` and learn
from video-level labels ``y`` (1 = the video holds an anomaly)::

    model = SSRL(seed=0).fit(train_snippets, y)            # y: [n_videos] 0/1
    table = model.score(test_snippets, video="02")         # frame rows + patch rows

Training (Eq. 10), one step = ``batch_size`` normal + ``batch_size`` abnormal videos drawn with
replacement, each video with **the snippets it has** (no resampling to a fixed T; Ped2 videos
hold 8-12 snippets of 16 frames)::

    L = L_CE + lambda_fm L_FM + lambda_1 sum_t |s_t^+| + lambda_2 sum_t (s_t^+ - s_{t-1}^+)^2

``L_FM`` (:func:`topk_magnitude_loss`, Eq. 8) is the hinge ``max(0, margin - g(+) + g(-))``
averaged over all (abnormal, normal) pairs of the step, where ``g`` is the mean L2 norm of a
video's ``k`` snippet features with the largest norm (Eq. 7); ``L_CE`` is the binary cross
entropy of the classifier's scores on those top-k snippets against the video label (Eq. 9,
averaged); the last two terms are on the abnormal videos' scores. Adam (lr 1e-3, weight decay
5e-4). Input features are standardised per dimension with the training mean / std (learned).

Scores: each frame gets the score of its snippet (frame rows); each patch of each grid gets a
patch row per frame: the snippet score times the patch's normalised saliency (``patch_saliency``:
``"attention"`` = the column sums of the PSR attention, as the paper's Fig. 6; ``"magnitude"`` =
the norm of the patch's PSR output), max-normalised within the grid and snippet.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from stgraph.features.snippets import SnippetFeatures
from stgraph.models.base import (BaseEstimator, ScoreQuantiles, check_int, check_labels,
                                 make_generator, resolve_device, seeded)
from stgraph.nn.ssrl import LinearMILNet, SSRLNet
from stgraph.registry import register
from stgraph.scores import ScoreTable
from stgraph.scores.frames import PixelMaps
from stgraph.scores.table import patch_grid_name

__all__ = ["SSRL", "LinearMIL", "topk_magnitude_loss", "topk_mean_magnitude",
           "sparsity_smoothness"]

SALIENCY = ("attention", "magnitude")


# ---------------------------------------------------------------------------- losses
def topk_mean_magnitude(features: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Eq. 7: ``(g, index)``: the mean L2 norm of the ``min(k, T)`` rows of ``features`` [T, D]
    with the largest norm (a scalar) and their indices [k']."""
    norms = features.norm(dim=-1)
    top = torch.topk(norms, min(int(k), norms.shape[0]))
    return top.values.mean(), top.indices


def topk_magnitude_loss(g_abnormal: Tensor, g_normal: Tensor, margin: float) -> Tensor:
    """Eq. 8 over all pairs: mean of ``max(0, margin - g_a + g_n)`` for every abnormal
    ``g_a`` in [A] and normal ``g_n`` in [N]."""
    return torch.relu(margin - g_abnormal[:, None] + g_normal[None, :]).mean()


def sparsity_smoothness(scores: Tensor) -> tuple[Tensor, Tensor]:
    """``(sum_t |s_t|, sum_t (s_t - s_{t-1})^2)`` of one video's scores [T]."""
    return scores.abs().sum(), (scores[1:] - scores[:-1]).pow(2).sum()


# ---------------------------------------------------------------------------- shared estimator
class _SnippetEstimator(BaseEstimator):
    """Fit / score / persistence shared by the weakly supervised snippet estimators."""

    consumes: ClassVar[str] = "snippets"
    supervision: ClassVar[str] = "weak"
    streams_exactly: ClassVar[bool] = False  # VTR attends over the whole video
    fitted_attributes = ("net_", "train_scores_", "in_dim_", "grids_", "feature_mean_",
                         "feature_std_", "components_", "loss_history_")
    format_version = 1

    # subclass hooks -----------------------------------------------------------
    def _build_net(self, in_dim: int, grids: list[tuple[int, int]]) -> nn.Module:
        raise NotImplementedError

    def _video_loss(self, outs: list[dict], labels: list[int]) -> Tensor:
        raise NotImplementedError

    def _patch_saliency(self, out: dict) -> list[np.ndarray]:
        raise NotImplementedError

    # inputs -------------------------------------------------------------------
    def _grids_of(self, videos: Sequence[SnippetFeatures]) -> list[tuple[int, int]]:
        wanted = getattr(self, "grids", None)
        have = [tuple(map(int, g)) for g in videos[0].grids]
        return [tuple(map(int, g)) for g in wanted] if wanted else have

    def _check_video(self, x: Any, grids: list[tuple[int, int]], in_dim: int | None) -> SnippetFeatures:
        if not isinstance(x, SnippetFeatures):
            raise ValueError(f"{type(self).__name__} consumes SnippetFeatures (one per video), "
                             f"got {type(x).__name__}")
        x = x.select_grids(grids)
        if in_dim is not None and x.dim != in_dim:
            raise ValueError(f"snippet features have D={x.dim}; the model was fitted on "
                             f"D={in_dim}")
        return x

    def _principal_axes(self, standardised: np.ndarray) -> np.ndarray | None:
        """float32 [D, q]: the top ``input_pca`` principal axes of (at most 4096 of) the
        standardised training patch features, or None (no reduction)."""
        q = getattr(self, "input_pca", None)
        if q is None or check_int("input_pca", q, 1) >= standardised.shape[1]:
            return None
        rng = np.random.default_rng(self.seed)
        rows = torch.from_numpy(standardised[rng.permutation(len(standardised))[:4096]])
        with seeded(self.seed):  # randomised SVD (Halko et al.), 4 power iterations
            _, _, vectors = torch.pca_lowrank(rows, q=min(q, *rows.shape), center=True, niter=4)
        return vectors.float().numpy().copy()

    def _tensors(self, x: SnippetFeatures, mean: np.ndarray, std: np.ndarray,
                 device: torch.device, components: np.ndarray | None = None) -> list[Tensor]:
        out = []
        for f in x.features:
            z = (np.asarray(f, np.float32) - mean) / std
            if components is not None:
                z = z @ components
            out.append(torch.from_numpy(z.astype(np.float32)).to(device))
        return out

    def _inputs(self, x: SnippetFeatures) -> list[Tensor]:
        """The fitted transform of one video's features, on the network's device."""
        return self._tensors(x, self.feature_mean_, self.feature_std_,
                             next(self.net_.parameters()).device, self.components_)

    # fit ----------------------------------------------------------------------
    def fit(self, X: Sequence[SnippetFeatures], y: Any = None) -> "_SnippetEstimator":
        """Train on snippet features of videos with video-level labels; returns self.

        Args:
            X: one :class:`SnippetFeatures` per training video (the same grids and D).
            y: [n_videos] 0/1 (1 = contains an anomaly); both classes needed.
        """
        videos = list(X) if not isinstance(X, SnippetFeatures) else [X]
        if not videos:
            raise ValueError("fit needs at least one video")
        bad = next((v for v in videos if not isinstance(v, SnippetFeatures)), None)
        if bad is not None:
            raise ValueError(f"{type(self).__name__} consumes SnippetFeatures (one per video), "
                             f"got {type(bad).__name__}")
        labels = check_labels(y, len(videos), required=True)
        if labels.min() == labels.max():
            raise ValueError(f"{type(self).__name__} needs normal (0) and abnormal (1) training "
                             "videos in y")
        steps = check_int("steps", self.steps, 1)
        batch = check_int("batch_size", self.batch_size, 1)
        device = resolve_device(self.device)
        grids = self._grids_of(videos)
        videos = [self._check_video(v, grids, videos[0].select_grids(grids).dim) for v in videos]
        in_dim = videos[0].dim
        stacked = np.concatenate([np.asarray(f, np.float32).reshape(-1, in_dim)
                                  for v in videos for f in v.features])
        mean = stacked.mean(axis=0)
        std = stacked.std(axis=0) + 1e-6
        components = self._principal_axes((stacked - mean) / std)
        inputs = [self._tensors(v, mean, std, device, components) for v in videos]
        normal, abnormal = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
        generator = make_generator(self.seed)
        history = []
        with seeded(self.seed):
            net = self._build_net(in_dim if components is None else components.shape[1],
                                  grids).to(device)
            optimiser = torch.optim.Adam(net.parameters(), lr=self.lr,
                                         weight_decay=self.weight_decay)
            net.train()
            for _ in tqdm(range(steps), desc=f"fit {type(self).__name__}", unit="step",
                          disable=not self.progress, leave=False):
                pick_n = normal[torch.randint(len(normal), (batch,), generator=generator).numpy()]
                pick_a = abnormal[torch.randint(len(abnormal), (batch,),
                                                generator=generator).numpy()]
                chosen = list(pick_n) + list(pick_a)
                outs = [net(inputs[i]) for i in chosen]
                loss = self._video_loss(outs, [0] * batch + [1] * batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                history.append(float(loss.detach()))
            net.eval()
        train_frame_scores = np.concatenate([
            self._frame_scores(net, v, inp)[0] for v, inp, lab in zip(videos, inputs, labels)
            if lab == 0])
        quantiles = ScoreQuantiles.from_scores(train_frame_scores)
        self.net_, self.in_dim_, self.grids_ = net, int(in_dim), grids
        self.feature_mean_, self.feature_std_ = mean, std
        self.components_ = components
        self.loss_history_ = history
        self.train_scores_ = quantiles
        return self

    # score --------------------------------------------------------------------
    def _frame_scores(self, net: nn.Module, x: SnippetFeatures, inputs: list[Tensor]
                      ) -> tuple[np.ndarray, dict]:
        """float64 [n_frames] (each frame: its snippet's score) and the network's output."""
        with torch.inference_mode():
            out = net(inputs)
        snippet_scores = out["scores"].double().cpu().numpy()
        which = x.frame_to_snippet()
        covered = which >= 0
        return snippet_scores[which[covered]], out

    def snippet_scores(self, X: SnippetFeatures) -> np.ndarray:
        """float64 [n_snippets]: the classifier's score of each snippet of one video."""
        self.check_is_fitted("snippet_scores")
        x = self._check_video(X, self.grids_, self.in_dim_)
        with torch.inference_mode():
            out = self.net_(self._inputs(x))
        return out["scores"].double().cpu().numpy()

    def score(self, X: SnippetFeatures, video: str = "video", *, fps: float | None = None,
              patches: bool = True, map_stride: int = 8) -> ScoreTable:
        """Frame rows (and patch rows per frame, per grid, with a patch heatmap) of one video.

        Args:
            X: the video's :class:`SnippetFeatures` (it must hold the fitted grids).
            video: its name in the table.
            fps: unused (accepted for the common interface).
            patches: also emit patch rows (coarse localisation; grids of more than one patch)
                and pixel maps: per frame, the mean over those grids of each patch's score
                painted over its box, at
                ``[H / map_stride, W / map_stride]`` (drawn by :func:`stgraph.overlay.write_overlay`,
                scored by pixel AUC).
        """
        self.check_is_fitted("score")
        x = self._check_video(X, self.grids_, self.in_dim_)
        frame_values, out = self._frame_scores(self.net_, x, self._inputs(x))
        which = x.frame_to_snippet()
        frames = np.flatnonzero(which >= 0).astype(np.int64)
        table = ScoreTable.from_frames(video, frames, frame_values, n_frames=int(x.n_frames),
                                       image_hw=tuple(x.image_hw))
        if not patches:
            return table
        snippet_scores = out["scores"].double().cpu().numpy()
        saliency = self._patch_saliency(out)  # per grid [T, N_r] in [0, 1]
        rows_f, rows_b, rows_s, rows_g, rows_i, rows_id = [], [], [], [], [], []
        offset = 0
        snip = which[frames]
        h, w = (max(1, int(v) // check_int("map_stride", map_stride, 1)) for v in x.image_hw)
        heat = np.zeros((len(snippet_scores), h, w))
        # a 1x1 grid's only patch is the whole frame (its score is the frame score): it gets no
        # patch row and stays out of the heatmap, unless it is the only grid
        local = [g for g, (rows, cols) in enumerate(self.grids_) if rows * cols > 1] or [0]
        for g, ((rows, cols), sal) in enumerate(zip(self.grids_, saliency)):
            if g not in local:
                continue
            boxes = x.grid_boxes(g)
            n = len(boxes)
            values = snippet_scores[:, None] * sal  # [T, N]
            sx, sy = w / x.image_hw[1], h / x.image_hw[0]
            cells = np.round(boxes * [sx, sy, sx, sy]).astype(int)  # boxes in map cells
            for k, (x1, y1, x2, y2) in enumerate(cells):
                heat[:, y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)] += values[:, k, None, None]
            rows_f.append(np.repeat(frames, n))
            rows_b.append(np.tile(boxes, (len(frames), 1)))
            rows_s.append(values[snip].reshape(-1))
            rows_g.append(np.full(len(frames) * n, patch_grid_name(rows, cols)))
            rows_i.append(np.full(len(frames) * n, g))
            rows_id.append(np.tile(np.arange(n) + offset, len(frames)))
            offset += n
        patch_table = ScoreTable.from_patches(
            video, np.concatenate(rows_f), np.concatenate(rows_b), np.concatenate(rows_s),
            np.concatenate(rows_g), np.concatenate(rows_id), grid_index=np.concatenate(rows_i),
            n_frames=int(x.n_frames),
            pixel_maps=PixelMaps(frames, (heat / len(local))[snip].astype(np.float32)))
        return ScoreTable.concat([table, patch_table])

    # persistence --------------------------------------------------------------
    def _fitted_config(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim_, "grids": [list(g) for g in self.grids_],
                "train_score_count": self.train_scores_.count,
                "loss_history": [float(v) for v in self.loss_history_]}

    def _fitted_state(self) -> dict[str, Tensor]:
        state = {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}
        state["feature_mean"] = torch.from_numpy(self.feature_mean_)
        state["feature_std"] = torch.from_numpy(self.feature_std_)
        if self.components_ is not None:
            state["components"] = torch.from_numpy(self.components_)
        state["train_score_quantiles"] = torch.from_numpy(self.train_scores_.values)
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        grids = [tuple(int(v) for v in g) for g in fitted_config["grids"]]
        in_dim = int(fitted_config["in_dim"])
        components = state.get("components")
        with seeded(0):
            net = self._build_net(in_dim if components is None else components.shape[1], grids)
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        self.net_ = net.to(resolve_device(self.device)).eval()
        self.in_dim_, self.grids_ = in_dim, grids
        self.feature_mean_ = state["feature_mean"].numpy()
        self.feature_std_ = state["feature_std"].numpy()
        self.components_ = None if components is None else components.numpy()
        self.loss_history_ = list(fitted_config.get("loss_history", []))
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))

    @property
    def n_parameters_(self) -> int:
        """Number of trainable parameters of the fitted network."""
        self.check_is_fitted("n_parameters_")
        return int(sum(p.numel() for p in self.net_.parameters()))


@register("model", "ssrl")
class SSRL(_SnippetEstimator):
    """SSRL: multi-scale patch relations (PSR), aggregation (MPA), temporal relations (VTR).

    Args:
        grids: patch grids to use (``None`` = all grids of the training features), e.g.
            ``[(1, 1)]`` for the single-scale ablation.
        dim: feature size after the projection (divisible by 4).
        input_pca: first reduce the standardised input features to this many principal
            components of the training patches (fitted, saved with the model; ``None`` or a
            value >= D: no reduction). At D = 2560 the learned projection costs ~10 times the
            rest of a training step on a CPU.
        use_psr, use_vtr: switch PSR / VTR off (the paper's Table 4 ablation).
        k: top-k snippets for the feature magnitude (Eq. 7).
        margin: magnitude margin epsilon (Eq. 8).
        lambda_fm, lambda_sparsity, lambda_smooth: weights of Eq. 10.
        lr, weight_decay: Adam.
        steps: optimisation steps; batch_size: normal and abnormal videos per step (each).
        dropout: classifier dropout.
        patch_saliency: ``"attention"`` or ``"magnitude"`` (see the module docstring).
        device, seed, progress: as everywhere.

    Learned: ``net_`` (:class:`~stgraph.nn.ssrl.SSRLNet`), ``train_scores_`` (frame scores of
    the normal training videos), ``in_dim_``, ``grids_``, ``feature_mean_``/``feature_std_``,
    ``loss_history_``.
    """

    def __init__(self, grids: Sequence[Sequence[int]] | None = None, dim: int = 256,
                 input_pca: int | None = 256, use_psr: bool = True, use_vtr: bool = True, k: int = 3, margin: float = 100.0,
                 lambda_fm: float = 1e-4, lambda_sparsity: float = 8e-3,
                 lambda_smooth: float = 8e-4, lr: float = 1e-3, weight_decay: float = 5e-4,
                 steps: int = 300, batch_size: int = 4, dropout: float = 0.7,
                 patch_saliency: str = "attention", device: str = "cpu", seed: int = 0,
                 progress: bool = True) -> None:
        self.grids = grids
        self.dim = dim
        self.input_pca = input_pca
        self.use_psr = use_psr
        self.use_vtr = use_vtr
        self.k = k
        self.margin = margin
        self.lambda_fm = lambda_fm
        self.lambda_sparsity = lambda_sparsity
        self.lambda_smooth = lambda_smooth
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = steps
        self.batch_size = batch_size
        self.dropout = dropout
        self.patch_saliency = patch_saliency
        self.device = device
        self.seed = seed
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"dim": 8, "steps": 5, "batch_size": 2, "progress": False}

    def _build_net(self, in_dim: int, grids: list[tuple[int, int]]) -> nn.Module:
        if self.patch_saliency not in SALIENCY:
            raise ValueError(f"patch_saliency must be one of {SALIENCY}, got "
                             f"{self.patch_saliency!r}")
        check_int("k", self.k, 1)
        return SSRLNet(in_dim, grids, dim=check_int("dim", self.dim, 4), use_psr=self.use_psr,
                       use_vtr=self.use_vtr, dropout=self.dropout)

    def _video_loss(self, outs: list[dict], labels: list[int]) -> Tensor:
        g, ce, sparse, smooth = {0: [], 1: []}, [], [], []
        for out, label in zip(outs, labels):
            mag, index = topk_mean_magnitude(out["features"], self.k)
            g[label].append(mag)
            top_scores = out["scores"][index].clamp(1e-6, 1 - 1e-6)
            ce.append(nn.functional.binary_cross_entropy(
                top_scores, torch.full_like(top_scores, float(label))))
            if label == 1:
                s1, s2 = sparsity_smoothness(out["scores"])
                sparse.append(s1)
                smooth.append(s2)
        fm = topk_magnitude_loss(torch.stack(g[1]), torch.stack(g[0]), float(self.margin))
        return (torch.stack(ce).mean() + self.lambda_fm * fm
                + self.lambda_sparsity * torch.stack(sparse).mean()
                + self.lambda_smooth * torch.stack(smooth).mean())

    def _patch_saliency(self, out: dict) -> list[np.ndarray]:
        if self.patch_saliency == "attention" and out["attention"]:
            raw = [a.sum(dim=1) for a in out["attention"]]  # column sums [T, N]
        else:
            raw = [p.norm(dim=-1) for p in out["patch_features"]]
        return [(r / r.amax(dim=1, keepdim=True).clamp_min(1e-12)).double().cpu().numpy()
                for r in raw]


@register("model", "mil_linear")
class LinearMIL(_SnippetEstimator):
    """Naive weak baseline: a linear classifier on the whole-frame snippet feature, trained with
    Sultani et al.'s MIL ranking loss ``max(0, 1 - max_t s_t^+ + max_t s_t^-)`` (all pairs) plus
    the same sparsity / smoothness terms; patch rows apply it to each patch.

    Args: as :class:`SSRL` (``grids``: the first one should be 1x1, the whole frame).
    """

    def __init__(self, grids: Sequence[Sequence[int]] | None = None,
                 lambda_sparsity: float = 8e-3, lambda_smooth: float = 8e-4, lr: float = 1e-3,
                 weight_decay: float = 5e-4, steps: int = 300, batch_size: int = 4,
                 device: str = "cpu", seed: int = 0, progress: bool = True) -> None:
        self.grids = grids
        self.lambda_sparsity = lambda_sparsity
        self.lambda_smooth = lambda_smooth
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = steps
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"steps": 5, "batch_size": 2, "progress": False}

    def _build_net(self, in_dim: int, grids: list[tuple[int, int]]) -> nn.Module:
        return LinearMILNet(in_dim, grids)

    def _video_loss(self, outs: list[dict], labels: list[int]) -> Tensor:
        top = {0: [], 1: []}
        sparse, smooth = [], []
        for out, label in zip(outs, labels):
            top[label].append(out["scores"].max())
            if label == 1:
                s1, s2 = sparsity_smoothness(out["scores"])
                sparse.append(s1)
                smooth.append(s2)
        ranking = torch.relu(1.0 - torch.stack(top[1])[:, None] + torch.stack(top[0])[None]).mean()
        return (ranking + self.lambda_sparsity * torch.stack(sparse).mean()
                + self.lambda_smooth * torch.stack(smooth).mean())

    def _patch_saliency(self, out: dict) -> list[np.ndarray]:
        scores = out["scores"][:, None].clamp_min(1e-12)
        return [(p / scores).double().cpu().numpy() for p in out["patch_scores"]]
