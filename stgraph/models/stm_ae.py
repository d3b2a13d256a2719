"""``STMAE``: the spatio-temporal memories enhanced autoencoder (STM-AE), frame level.

Paper: ``papers/stm_ae_spatio_temporal_memory_autoencoder.txt``. Network:
:class:`stgraph.nn.pixel_autoencoders.STMAENet`. Frame t is predicted from frames t-4..t-1 and
their optical flow; the score is ``-PSNR(prediction, frame t)`` (higher = more abnormal; the
paper's per-video min-max is an evaluation option, ``frame_scores(normalize=...)``).

Training, as in the paper, in two phases:

1. **pre-training** (``pretrain_epochs``): the appearance autoencoder denoises the input clip
   (20 % salt-and-pepper noise, Eq. 1); the motion autoencoder reconstructs the clip's optical
   flow (Eq. 2). Flow is OpenCV DIS (:mod:`stgraph.features.flow`, FlowNet weights are not
   available offline) at the model resolution, scaled by the 99th percentile of the training
   flow magnitudes.
2. **prediction** (``epochs``): the encoders are frozen; the latents query the spatial and
   temporal memory pools (N = 32 items, softmax-of-cosine read, top-k = 8 write after every
   batch), and the decoder predicts frame t from ``[z_a, read(z_a), z_m, read(z_m)]`` with
   Eq. 10's weights: ``L = L_int + 0.6 L_motion + 0.01 L_sep + 0.05 L_adv`` (Adam, cosine
   annealing).

Departures (all documented in the parameters): Eq. 6 compares the FlowNet flow of the predicted
and real frames; OpenCV flow is not differentiable, so ``L_motion`` is a flow-free proxy, the L1
distance between the frame-difference magnitudes ``|I^_t - I_{t-1}|`` and ``|I_t - I_{t-1}|``
(motion energy of the prediction), while the motion stream itself learns DIS flow in phase 1. The
memory pools are written, never back-propagated, and the encoders are frozen in phase 2, so
``L_sep`` (Eq. 9, triplet form) is reported but carries no gradient. The patch discriminator
(LSGAN, Eqs. 7-8) is off by default (``adversarial=False``) on CPU. By default the decoder
predicts the change from the last input frame (``residual=True``; the paper predicts the frame). The network is narrower
(``width``) and smaller (``resolution``) than the paper's 256^2 to fit a 2-core CPU.

Per-box node features (:class:`stgraph.features.autoencoder.STMAEFeatures`): the prediction and
flow-reconstruction error maps and the latents ``[z_a, z_m]`` pooled inside each box.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stgraph.models.base import check_int, resolve_device, seeded
from stgraph.models.clip_autoencoder import ClipAnalysis, ClipAutoencoder, ClipData, epoch_bar
from stgraph.nn.autoencoder_layers import PatchDiscriminator, psnr, salt_and_pepper
from stgraph.nn.pixel_autoencoders import STMAENet
from stgraph.registry import register

__all__ = ["STMAE", "train_stm_ae"]


def train_stm_ae(model: "STMAE", net: STMAENet, data: ClipData, generator: torch.Generator
                 ) -> list[float]:
    """Both training phases of STM-AE (module docstring); returns the loss of every epoch.

    Data-parallel when ``data.world`` is set: gradients averaged over the processes before each
    step, the memories written with every process's queries, BatchNorm statistics averaged
    after phase 1 (the encoders then run in eval mode)."""
    device = resolve_device(model.device)
    n, losses = model.n_input, []
    streams = nn.ModuleList([net.app_encoder, net.app_decoder, net.mot_encoder, net.mot_decoder])
    opt = torch.optim.Adam(streams.parameters(), lr=model.lr)
    net.train()
    for _ in epoch_bar(model, model.pretrain_epochs, "STM-AE pre-training"):
        epoch = []
        for clips, flows in data.train_batches(model.batch_size, n, generator):
            b, r = clips.shape[0], clips.shape[-1]
            inp = clips[:, :n].reshape(b, 3 * n, r, r).to(device)
            fl = flows[:, :n].reshape(b, 2 * n, r, r).to(device)
            rec_a, rec_m = net.reconstruct(salt_and_pepper(inp, model.noise, generator), fl)
            loss = F.mse_loss(rec_a, inp) + F.mse_loss(rec_m, fl)
            opt.zero_grad()
            loss.backward()
            data.average_gradients(streams)
            opt.step()
            epoch.append(loss.item())
        losses.append(data.epoch_loss(epoch))
    data.average_batch_norm(net)
    for encoder in (net.app_encoder, net.mot_encoder):
        encoder.eval()
        encoder.requires_grad_(False)
    opt = torch.optim.Adam(net.frame_decoder.parameters(), lr=model.lr)
    steps = max(1, model.epochs * data.steps_per_epoch(model.batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    disc = disc_opt = None
    if model.adversarial:
        with seeded(model.seed + 1):
            disc = PatchDiscriminator(model.width).to(device)
        if data.world is not None:
            data.world.broadcast_parameters(disc)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=model.lr)
    net.frame_decoder.train()
    for _ in epoch_bar(model, model.epochs, "STM-AE prediction"):
        epoch = []
        for clips, flows in data.train_batches(model.batch_size, n, generator):
            b, r = clips.shape[0], clips.shape[-1]
            clips, flows = clips.to(device), flows.to(device)
            with torch.no_grad():
                z_a, z_m = net.encode(clips[:, :n].reshape(b, 3 * n, r, r),
                                      flows[:, :n].reshape(b, 2 * n, r, r))
            target, last = clips[:, n], clips[:, n - 1]
            pred = net.predict(z_a, z_m, last)
            loss = (F.mse_loss(pred, target)
                    + model.lambda_motion * F.l1_loss((pred - last).abs(), (target - last).abs())
                    + model.lambda_memory * (net.spatial_memory.separateness_loss(z_a)
                                             + net.temporal_memory.separateness_loss(z_m)))
            if disc is not None:
                loss = loss + model.lambda_adv * disc(pred).pow(2).mean()  # G: D(pred) -> 0 (real)
            opt.zero_grad()
            loss.backward()
            data.average_gradients(net.frame_decoder)
            opt.step()
            schedule.step()
            if disc is not None:
                d_loss = disc(target).pow(2).mean() + (disc(pred.detach()) - 1).pow(2).mean()
                disc_opt.zero_grad()
                d_loss.backward()
                data.average_gradients(disc)
                disc_opt.step()
            net.spatial_memory.update(data.gathered(net.spatial_memory.queries(z_a)))
            net.temporal_memory.update(data.gathered(net.temporal_memory.queries(z_m)))
            epoch.append(loss.item())
        losses.append(data.epoch_loss(epoch))
    return losses


@register("model", "stm_ae")
class STMAE(ClipAutoencoder):
    """STM-AE as an estimator (``consumes = "frames"``): frame score ``-PSNR`` of the predicted
    frame, pixel map its squared error (mean over RGB) at ``resolution`` x ``resolution``.

    Args:
        resolution: frames are resized to R x R (multiple of 8; paper: 256).
        width: base channel width (latent channels 4 * width; paper: 512 latent channels).
        pretrain_epochs: epochs of phase 1 (denoising + flow reconstruction).
        epochs: epochs of phase 2 (future-frame prediction with the memories).
        batch_size: clips per batch (paper: 8).
        lr: Adam learning rate (paper: 4e-4, cosine annealing in phase 2).
        noise: salt-and-pepper fraction of the appearance input in phase 1 (paper: 0.2).
        n_items: memory items per pool N (paper: 32).
        top_k: items each query writes to k (paper: 8).
        lambda_motion, lambda_memory, lambda_adv: Eq. 10's weights (paper: 0.6, 0.01, 0.05).
        adversarial: train the LSGAN patch discriminator (off by default on CPU).
        residual: predict the change from the last input frame (default; the paper's decoder
            predicts the frame itself, ``residual=False``, which at 64^2 / 15 CPU epochs gives
            a blurry frame whose error is dominated by the static background: Ped2 micro AUC
            0.69 raw vs. FrameDifference's 0.73).
        flow_cache: folder caching the training videos' DIS flow (None: no cache).
        seed: seed of the weights, the shuffling and the noise.
        device: torch device.
        progress: show progress bars.

    Learned attributes: ``net_``, ``train_scores_``, ``n_train_frames_``, ``train_losses_``
    (per epoch, phase 1 then phase 2), ``flow_scale_``.
    """

    uses_flow = True
    format_version = 1

    def __init__(self, resolution: int = 64, width: int = 8, pretrain_epochs: int = 5,
                 epochs: int = 10, batch_size: int = 8, lr: float = 4e-4, noise: float = 0.2,
                 n_items: int = 32, top_k: int = 8, lambda_motion: float = 0.6,
                 lambda_memory: float = 0.01, lambda_adv: float = 0.05,
                 adversarial: bool = False, residual: bool = True,
                 flow_cache: str | None = None, seed: int = 0,
                 device: str = "cpu", progress: bool = True) -> None:
        self.resolution = resolution
        self.width = width
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.noise = noise
        self.n_items = n_items
        self.top_k = top_k
        self.lambda_motion = lambda_motion
        self.lambda_memory = lambda_memory
        self.lambda_adv = lambda_adv
        self.adversarial = adversarial
        self.residual = residual
        self.flow_cache = flow_cache
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"resolution": 16, "width": 2, "pretrain_epochs": 1, "epochs": 1, "batch_size": 4,
                "n_items": 4, "top_k": 2, "progress": False}

    def _check_params(self) -> None:
        super()._check_params()
        check_int("pretrain_epochs", self.pretrain_epochs, 0)
        check_int("epochs", self.epochs, 1)
        check_int("n_items", self.n_items, 2)
        check_int("top_k", self.top_k, 1)
        if self.top_k > self.n_items:
            raise ValueError(f"top_k ({self.top_k}) must be <= n_items ({self.n_items})")
        if not 0 <= self.noise < 1:
            raise ValueError(f"noise must be in [0, 1), got {self.noise!r}")

    def _build_net(self) -> STMAENet:
        return STMAENet(self.n_input, self.width, self.n_items, self.top_k, self.seed,
                        residual=bool(self.residual))

    def _train(self, net: nn.Module, data: ClipData, generator: torch.Generator
               ) -> tuple[list[float], dict[str, Any]]:
        return train_stm_ae(self, net, data, generator), {}

    def _analyse(self, net: nn.Module, clips: Tensor, flows: Tensor | None,
                 extra: Mapping[str, Any]) -> ClipAnalysis:
        """Clips [B, 5, 3, R, R] + flows [B, 5, 2, R, R] -> scores ``-PSNR`` [B], squared-error
        maps, errors (prediction, flow reconstruction) and latents ``[z_a, z_m]``."""
        n = self.n_input
        b, r = clips.shape[0], clips.shape[-1]
        fl = flows[:, :n].reshape(b, 2 * n, r, r)
        z_a, z_m = net.encode(clips[:, :n].reshape(b, 3 * n, r, r), fl)
        pred = net.predict(z_a, z_m, clips[:, n - 1])
        target = clips[:, n]
        sq = (pred - target).pow(2).mean(dim=1)
        flow_err = (net.mot_decoder(z_m) - fl).pow(2).mean(dim=1)
        return ClipAnalysis(
            scores=(-psnr(pred, target)).double().cpu().numpy(),
            pixel_maps=sq.float().cpu().numpy(),
            errors=torch.stack([sq, flow_err], dim=1).float().cpu().numpy(),
            latents=torch.cat([z_a, z_m], dim=1).float().cpu().numpy())

    def _set_extra_state(self, extra: Mapping[str, Any]) -> None:
        pass

    @property
    def latent_channels(self) -> int:
        """Channels of the latent map given to node features (``[z_a, z_m]``: 8 * width)."""
        return 8 * int(self.width)
