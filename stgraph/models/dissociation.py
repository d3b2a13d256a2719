"""``DissociationAE``: spatio-temporal dissociation autoencoders with deep K-means, frame level.

Paper: ``papers/dissociation_spatial_motion_autoencoders.txt``. Network:
:class:`stgraph.nn.pixel_autoencoders.DissociationNet`. A clip is 5 frames (T = 5): the spatial
autoencoder (residual blocks, LeakyReLU, pixel-shuffle decoder) reconstructs the first frame
(FIF); the motion U-Net (variance attention after each encoder block) takes the first 4 frames
stacked and predicts the RGB difference LIF - FIF; the prediction of the last frame (LIF) is
their sum. The joint embedding ``r`` (both latents, squashed to [0, 1]) is softly assigned to
K = 32 deep K-means centres (Eq. 10).

Training: ``pretrain_epochs`` of ``L_a + L_m`` (L2 on the FIF; L2 + gradient loss on the RGB
difference), K-means initialisation of the centres on training embeddings, then ``epochs`` of
alternating optimisation: per batch, one step of the autoencoders on Eq. 12 (``L_a + L_m +
lambda_r L_cluster``, centres frozen) and one step of the centres on ``L_cluster`` (autoencoders
frozen, learning rate ``lr / 10`` as in the paper's 1e-4 / 1e-5).

Score (Eq. 13, turned so that higher = more abnormal): the pixel score is ``D_u * err`` with
``err`` the squared L2 distance (over RGB) between the LIF and its prediction and ``D_u`` the
soft cluster distance map upsampled (nearest) to the frame; the frame score is its mean. The
paper's ``1 / (D_u err)`` is not used (it blows up on static pixels). Per-video min-max is an
evaluation option.

The paper gives no values for ``lambda_r`` and ``alpha``; both default to ``None`` = chosen on
the training data only, after pre-training, by two rules (stored as ``lambda_r_`` / ``alpha_``):

- ``alpha``: the soft assignments of the training embeddings have a mean entropy of half
  ``log K`` (between uniform and hard assignment; bisection on log alpha);
- ``lambda_r``: the cluster term is 10 % of the reconstruction loss at the start of the
  alternating phase (``0.1 * (L_a + L_m) / L_cluster`` on the last pre-training epoch).

A leave-videos-out grid search on the training set did not fit the CPU budget; give numbers
to override.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stgraph.models.base import check_int, resolve_device
from stgraph.models.clip_autoencoder import ClipAnalysis, ClipAutoencoder, ClipData, epoch_bar
from stgraph.nn.autoencoder_layers import gradient_loss
from stgraph.nn.pixel_autoencoders import DissociationNet
from stgraph.registry import register

__all__ = ["DissociationAE", "train_dissociation", "kmeans", "choose_alpha"]


def kmeans(x: Tensor, k: int, generator: torch.Generator, n_iter: int = 20) -> Tensor:
    """Lloyd's K-means of x [M, D] (k-means++ free: k distinct random rows as the start):
    centres [k, D]. An empty cluster keeps its previous centre."""
    centres = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    if len(centres) < k:  # fewer points than clusters: repeat some
        centres = centres[torch.arange(k) % len(centres)].clone()
    for _ in range(n_iter):
        assign = torch.cdist(x, centres).argmin(dim=1)
        for j in range(k):
            members = x[assign == j]
            if len(members):
                centres[j] = members.mean(dim=0)
    return centres


def choose_alpha(dist: Tensor, target: float = 0.5) -> float:
    """alpha whose soft assignments ``softmax(-alpha dist)`` (dist [M, K]) have a mean entropy of
    ``target * log K`` (bisection on log alpha in [1e-3, 1e4])."""
    k = dist.shape[1]
    lo, hi = math.log(1e-3), math.log(1e4)
    for _ in range(40):
        mid = (lo + hi) / 2
        p = torch.softmax(-math.exp(mid) * dist, dim=1)
        entropy = -(p * p.clamp_min(1e-12).log()).sum(dim=1).mean().item()
        if entropy > target * math.log(k):
            lo = mid
        else:
            hi = mid
    return float(math.exp((lo + hi) / 2))


def _split(clips: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Clips [B, n+1, 3, R, R] -> (FIF [B, 3, R, R], stacked input [B, 3n, R, R], LIF)."""
    b, r = clips.shape[0], clips.shape[-1]
    return clips[:, 0], clips[:, :n].reshape(b, 3 * n, r, r), clips[:, n]


def _reconstruction_loss(out: Mapping[str, Tensor], first: Tensor, last: Tensor) -> Tensor:
    """``L_a + L_m``: L2 on the first frame + (L2 + gradient loss) on the RGB difference."""
    target = last - first
    return (F.mse_loss(out["recon"], first) + F.mse_loss(out["diff"], target)
            + gradient_loss(out["diff"], target))


def train_dissociation(model: "DissociationAE", net: DissociationNet, data: ClipData,
                       generator: torch.Generator) -> tuple[list[float], float, float]:
    """Pre-training, K-means initialisation, alternating training (module docstring).

    Returns the loss of every epoch, ``lambda_r`` and ``alpha`` (chosen when None).

    Data-parallel when ``data.world`` is set: gradients averaged over the processes before each
    step (one all-reduce for both optimisers of an alternating step), BatchNorm statistics
    averaged after pre-training, and the K-means sample gathered from every process (each gives
    ``budget / world_size`` embeddings) with rank 0's centres broadcast, so ``alpha``,
    ``lambda_r`` and the centres are the same everywhere."""
    device = resolve_device(model.device)
    n, losses = model.n_input, []
    autoencoder = nn.ModuleList([m for name, m in net.named_children() if name != "kmeans"])
    opt = torch.optim.Adam(autoencoder.parameters(), lr=model.lr)
    net.train()
    for _ in epoch_bar(model, model.pretrain_epochs, "dissociation pre-training"):
        epoch = []
        for clips, _ in data.train_batches(model.batch_size, n, generator):
            first, stacked, last = _split(clips.to(device), n)
            loss = _reconstruction_loss(net(first, stacked), first, last)
            opt.zero_grad()
            loss.backward()
            data.average_gradients(autoencoder)
            opt.step()
            epoch.append(loss.item())
        losses.append(data.epoch_loss(epoch))
    data.average_batch_norm(net)
    # K-means initialisation on (a sample of) the training embeddings
    net.eval()
    embeddings, rec = [], []
    budget = max(model.n_clusters, 20000)
    world_size = 1 if data.world is None else data.world.world_size
    local_budget = -(-budget // world_size)
    with torch.no_grad():
        for clips, _ in data.batches(model.batch_size, n, generator):
            first, stacked, last = _split(clips.to(device), n)
            out = net(first, stacked)
            rec.append(_reconstruction_loss(out, first, last).item())
            r = out["r"]
            embeddings.append(r.permute(0, 2, 3, 1).reshape(-1, r.shape[1]).cpu())
            if sum(len(e) for e in embeddings) >= local_budget:
                break
    emb = data.gathered(torch.cat(embeddings)[:local_budget])
    rec = data.gathered(torch.tensor(rec, dtype=torch.float64)).tolist()
    with torch.no_grad():
        net.kmeans.centers.copy_(kmeans(emb, model.n_clusters, generator).to(device))
    if data.world is not None:  # the generators differ between processes: rank 0's centres
        data.world.broadcast_parameters(net.kmeans)
    with torch.no_grad():
        dist = torch.cdist(emb.to(device), net.kmeans.centers)
    alpha = float(model.alpha) if model.alpha is not None else choose_alpha(dist)
    with torch.no_grad():
        start_cluster = net.kmeans.distance(emb.to(device), alpha).mean().item()
    lambda_r = (float(model.lambda_r) if model.lambda_r is not None
                else 0.1 * float(np.mean(rec)) / max(start_cluster, 1e-8))
    centre_opt = torch.optim.Adam(net.kmeans.parameters(), lr=model.lr / 10)
    net.train()
    for _ in epoch_bar(model, model.epochs, "dissociation alternating"):
        epoch = []
        for clips, _ in data.train_batches(model.batch_size, n, generator):
            first, stacked, last = _split(clips.to(device), n)
            out = net(first, stacked)
            r = out["r"].permute(0, 2, 3, 1).reshape(-1, out["r"].shape[1])
            loss = (_reconstruction_loss(out, first, last)
                    + lambda_r * net.kmeans.distance(r, alpha, frozen=True).mean())
            # The centres are frozen in ``loss`` and ``r`` is detached in ``cluster``: the two
            # backward passes touch disjoint parameters, so one all-reduce serves both steps.
            cluster = net.kmeans.distance(r.detach(), alpha).mean()
            opt.zero_grad()
            centre_opt.zero_grad()
            loss.backward()
            cluster.backward()
            data.average_gradients(net)
            opt.step()
            centre_opt.step()
            epoch.append(loss.item())
        losses.append(data.epoch_loss(epoch))
    return losses, lambda_r, alpha


@register("model", "dissociation")
class DissociationAE(ClipAutoencoder):
    """Dissociation autoencoders as an estimator (``consumes = "frames"``): frame score the mean
    of ``D_u * err`` over the frame, pixel map ``D_u * err`` at ``resolution`` x ``resolution``.

    Args:
        resolution: frames are resized to R x R (multiple of 8; paper: 256).
        width: base channel width (each latent 4 * width channels).
        pretrain_epochs: epochs of ``L_a + L_m`` before the K-means initialisation
            (paper: 50 on Ped2).
        epochs: alternating epochs with the cluster term (paper: 100 on Ped2).
        batch_size: clips per batch.
        lr: Adam learning rate of the autoencoders (paper: 1e-4); the centres use lr / 10.
        n_clusters: K (paper: 32).
        lambda_r: weight of the cluster loss in Eq. 12 (None: chosen on training data, see
            the module docstring).
        alpha: softness of the assignment in Eq. 10 (None: chosen on training data).
        flow_cache: unused (no optical flow; accepted for a common interface).
        seed: seed of the weights and the shuffling.
        device: torch device.
        progress: show progress bars.

    Learned attributes: ``net_``, ``train_scores_``, ``n_train_frames_``, ``train_losses_``,
    ``flow_scale_`` (1.0), ``lambda_r_``, ``alpha_``.
    """

    uses_flow = False
    format_version = 1
    fitted_attributes = ClipAutoencoder.fitted_attributes + ("lambda_r_", "alpha_")

    def __init__(self, resolution: int = 64, width: int = 8, pretrain_epochs: int = 5,
                 epochs: int = 5, batch_size: int = 8, lr: float = 4e-4, n_clusters: int = 32,
                 lambda_r: float | None = None, alpha: float | None = None,
                 flow_cache: str | None = None, seed: int = 0, device: str = "cpu",
                 progress: bool = True) -> None:
        self.resolution = resolution
        self.width = width
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.n_clusters = n_clusters
        self.lambda_r = lambda_r
        self.alpha = alpha
        self.flow_cache = flow_cache
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"resolution": 16, "width": 2, "pretrain_epochs": 1, "epochs": 1, "batch_size": 4,
                "n_clusters": 3, "progress": False}

    def _check_params(self) -> None:
        super()._check_params()
        check_int("pretrain_epochs", self.pretrain_epochs, 0)
        check_int("epochs", self.epochs, 0)
        check_int("n_clusters", self.n_clusters, 1)
        for name in ("lambda_r", "alpha"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{name} must be None (chosen on training data) or a number "
                                 f">= 0, got {value!r}")

    def _build_net(self) -> DissociationNet:
        return DissociationNet(self.n_input, self.width, self.n_clusters)

    def _train(self, net: nn.Module, data: ClipData, generator: torch.Generator
               ) -> tuple[list[float], dict[str, Any]]:
        losses, lambda_r, alpha = train_dissociation(self, net, data, generator)
        return losses, {"lambda_r": lambda_r, "alpha": alpha}

    def _set_extra_state(self, extra: Mapping[str, Any]) -> None:
        self.lambda_r_ = float(extra["lambda_r"])
        self.alpha_ = float(extra["alpha"])

    def _extra_state(self) -> dict[str, Any]:
        return {"lambda_r": self.lambda_r_, "alpha": self.alpha_}

    def _analyse(self, net: nn.Module, clips: Tensor, flows: Tensor | None,
                 extra: Mapping[str, Any]) -> ClipAnalysis:
        """Clips [B, 5, 3, R, R] -> scores mean(D_u err) [B], pixel maps D_u err, errors
        (first-frame reconstruction, RGB difference) and latents ``r`` [B, 8w, R/8, R/8]."""
        first, stacked, last = _split(clips, self.n_input)
        out = net(first, stacked)
        alpha = float(extra["alpha"])
        err = (last - out["prediction"]).pow(2).sum(dim=1)
        dmap = net.kmeans.distance_map(out["r"], alpha)
        d_u = F.interpolate(dmap[:, None], size=err.shape[-2:], mode="nearest")[:, 0]
        pixel = d_u * err
        errors = torch.stack([(first - out["recon"]).pow(2).sum(dim=1),
                              ((last - first) - out["diff"]).pow(2).sum(dim=1)], dim=1)
        return ClipAnalysis(scores=pixel.flatten(1).mean(dim=1).double().cpu().numpy(),
                            pixel_maps=pixel.float().cpu().numpy(),
                            errors=errors.float().cpu().numpy(),
                            latents=out["r"].float().cpu().numpy())

    @property
    def latent_channels(self) -> int:
        """Channels of the joint embedding given to node features (8 * width)."""
        return 8 * int(self.width)
