"""STAE: the Spatio-Temporal Auto-Encoder of STRL (paper Sec. III-B, Fig. 3, Eq. 1-7).

One encoder and two decoders:

* the **encoder** stacks the ``k`` input frames along channels ([B, k*C, H, W]) and runs blocks of
  3x3 Conv-BN-ReLU; three strided convolutions bring it to 1/8 of the input size
  ([B, d, H/8, W/8], ``d = 4 * width``): this map is the scene embedding ``E_s`` of the relation
  module;
* the **appearance decoder** (transposed convolutions, with skip connections from the encoder)
  predicts the next frame ``Î_{t+1}`` [B, C, H, W] in [-1, 1] (tanh);
* the **motion decoder** (transposed convolutions, no skips) predicts a 2-channel flow
  ``F̃`` [B, 2, H, W] in pixels, and :func:`warp` maps the current frame ``I_t`` to
  ``Ĩ_{t+1}(x) = I_t(x - F̃(x))`` by bilinear sampling (Eq. 4-5).

Losses (Eq. 1-7): :func:`intensity_loss` (mean squared error, Eq. 1), :func:`gradient_loss`
(Eq. 2, mean over pixels instead of the sum, so that it does not scale with the image size), and
:func:`stae_loss` ``L_ae = L_app + λ_mot L_mot`` with ``L_x = L_int + λ_grd L_grd`` (the paper's
``λ_grd = λ_mot = 1``).

Example:
    >>> net = STAE(clip_length=4, channels=1, width=16)
    >>> out = net(torch.zeros(2, 4, 64, 64))
    >>> out.frame.shape, out.flow.shape, out.embedding.shape
    (torch.Size([2, 1, 64, 64]), torch.Size([2, 2, 64, 64]), torch.Size([2, 64, 8, 8]))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["STAE", "STAEOutput", "warp", "intensity_loss", "gradient_loss", "stae_loss",
           "count_parameters"]


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 Conv (stride 1 or 2) - BN - ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """4x4 transposed conv doubling the size - BN - ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@dataclass
class STAEOutput:
    """What :class:`STAE` returns for a batch of clips.

    Attributes:
        frame: predicted next frame ``Î_{t+1}`` [B, C, H, W] in [-1, 1].
        flow: predicted flow ``F̃`` [B, 2, H, W] in pixels (x, y).
        warped: current frame warped by the flow, ``Ĩ_{t+1}`` [B, C, H, W].
        embedding: encoder map ``E_s`` [B, d, H/8, W/8].
    """

    frame: Tensor
    flow: Tensor
    warped: Tensor
    embedding: Tensor


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Backward warping ``out(x) = image(x - flow(x))`` with bilinear sampling (Eq. 4-5).

    Args:
        image: [B, C, H, W].
        flow: [B, 2, H, W] displacement in pixels, channel 0 along x (width), 1 along y.

    Returns:
        [B, C, H, W]; zero flow gives ``image`` back (up to float rounding). Samples outside the
        image take the nearest border pixel.
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 \
            or flow.shape[-2:] != image.shape[-2:] or flow.shape[0] != image.shape[0]:
        raise ValueError(f"warp needs image [B, C, H, W] and flow [B, 2, H, W], got "
                         f"{tuple(image.shape)} and {tuple(flow.shape)}")
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype, device=image.device),
                            torch.arange(w, dtype=image.dtype, device=image.device), indexing="ij")
    x = xs - flow[:, 0]
    y = ys - flow[:, 1]
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def intensity_loss(target: Tensor, predicted: Tensor, reduce: bool = True) -> Tensor:
    """Eq. 1, ``||I - Î||²`` as a mean over pixels: scalar, or [B] per sample when not ``reduce``."""
    err = (target - predicted).pow(2).flatten(1).mean(1)
    return err.mean() if reduce else err


def _gradient_error(target: Tensor, predicted: Tensor) -> tuple[Tensor, Tensor]:
    """| |∂I| - |∂Î| | along y [B, C, H-1, W] and x [B, C, H, W-1]."""
    def grads(x: Tensor) -> tuple[Tensor, Tensor]:
        return (x[..., 1:, :] - x[..., :-1, :]).abs(), (x[..., :, 1:] - x[..., :, :-1]).abs()

    (ty, tx), (py, px) = grads(target), grads(predicted)
    return (ty - py).abs(), (tx - px).abs()


def gradient_loss(target: Tensor, predicted: Tensor, reduce: bool = True) -> Tensor:
    """Eq. 2 (gradient difference), as a mean over pixels: scalar, or [B] when not ``reduce``."""
    gy, gx = _gradient_error(target, predicted)
    err = gy.flatten(1).mean(1) + gx.flatten(1).mean(1)
    return err.mean() if reduce else err


def pixel_error(target: Tensor, predicted: Tensor, lambda_grd: float = 1.0) -> Tensor:
    """Per-pixel version of Eq. 3: ``(I - Î)² + λ_grd (|Δ_y| + |Δ_x| error)`` [B, H, W]
    (channels averaged; gradient errors padded at the last row/column)."""
    gy, gx = _gradient_error(target, predicted)
    grad = F.pad(gy, (0, 0, 0, 1)) + F.pad(gx, (0, 1, 0, 0))
    return ((target - predicted).pow(2) + lambda_grd * grad).mean(1)


def stae_loss(out: STAEOutput, target: Tensor, lambda_grd: float = 1.0,
              lambda_mot: float = 1.0, reduce: bool = True) -> tuple[Tensor, Tensor]:
    """``(L_app, L_mot)`` of Eq. 3 and 6; ``L_ae = L_app + λ_mot L_mot`` (Eq. 7).

    Args:
        out: the network's output.
        target: the true next frame [B, C, H, W] in [-1, 1].
        reduce: scalars (training) or per-sample [B] values (the scores ``S_app``, ``S_mot``).
    """
    app = intensity_loss(target, out.frame, reduce) + lambda_grd * gradient_loss(
        target, out.frame, reduce)
    mot = intensity_loss(target, out.warped, reduce) + lambda_grd * gradient_loss(
        target, out.warped, reduce)
    return app, mot


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class STAE(nn.Module):
    """Encoder + appearance decoder (skips) + motion decoder (flow, warping).

    Args:
        clip_length: input frames ``k`` (stacked along channels).
        channels: channels per frame ``C`` (1 grey, 3 colour).
        width: channels of the first encoder stage; the stages have ``width, 2w, 4w, 4w``
            channels at 1, 1/2, 1/4, 1/8 of the input size, so ``d = 4 * width``.

    Shapes: input [B, k*C, H, W] in [-1, 1] with H, W divisible by 8 (the last frame of the
    clip is ``I_t``, warped by the flow); see :class:`STAEOutput` for the outputs.
    """

    def __init__(self, clip_length: int = 4, channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.clip_length, self.channels, self.width = clip_length, channels, width
        w = width
        self.enc0 = _block(clip_length * channels, w)
        self.enc1 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w))
        self.enc2 = nn.Sequential(_block(2 * w, 4 * w, 2), _block(4 * w, 4 * w))
        self.enc3 = nn.Sequential(_block(4 * w, 4 * w, 2))
        # appearance decoder: up, concat the encoder map of the same size, fuse
        self.app_up2, self.app_fuse2 = _up(4 * w, 2 * w), _block(6 * w, 2 * w)
        self.app_up1, self.app_fuse1 = _up(2 * w, w), _block(3 * w, w)
        self.app_up0, self.app_fuse0 = _up(w, w // 2), _block(w + w // 2, w // 2)
        self.app_out = nn.Conv2d(w // 2, channels, 3, 1, 1)
        # motion decoder: no skips
        self.mot = nn.Sequential(_up(4 * w, 2 * w), _up(2 * w, w), _up(w, w // 2))
        self.mot_out = nn.Conv2d(w // 2, 2, 3, 1, 1)
        nn.init.zeros_(self.mot_out.weight)  # start from zero flow: the warp is the identity
        nn.init.zeros_(self.mot_out.bias)

    @property
    def embedding_dim(self) -> int:
        """``d``, the channels of the encoder map."""
        return 4 * self.width

    def encode(self, clip: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Encoder maps at 1, 1/2, 1/4 and 1/8 of the input ([B, w|2w|4w|4w, ., .])."""
        if clip.dim() != 4 or clip.shape[1] != self.clip_length * self.channels:
            raise ValueError(f"STAE expects clips [B, {self.clip_length * self.channels}, H, W], "
                             f"got {tuple(clip.shape)}")
        if clip.shape[-1] % 8 or clip.shape[-2] % 8:
            raise ValueError(f"STAE needs H and W divisible by 8, got {tuple(clip.shape[-2:])}")
        e0 = self.enc0(clip)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        return e0, e1, e2, self.enc3(e2)

    def decode(self, clip: Tensor, maps: tuple[Tensor, Tensor, Tensor, Tensor]) -> STAEOutput:
        """Both decoders on the encoder ``maps`` of ``clip`` [B, k*C, H, W] (from :meth:`encode`)."""
        e0, e1, e2, e3 = maps
        a = self.app_fuse2(torch.cat([self.app_up2(e3), e2], 1))
        a = self.app_fuse1(torch.cat([self.app_up1(a), e1], 1))
        a = self.app_fuse0(torch.cat([self.app_up0(a), e0], 1))
        frame = torch.tanh(self.app_out(a))
        flow = self.mot_out(self.mot(e3))
        current = clip[:, -self.channels:]
        return STAEOutput(frame, flow, warp(current, flow), e3)

    def forward(self, clip: Tensor) -> STAEOutput:
        """Predict the next frame and the flow of a clip [B, k*C, H, W] (see the class doc)."""
        return self.decode(clip, self.encode(clip))
