"""The two pixel autoencoder networks (pure ``nn.Module`` s; training lives in the model files).

    STMAENet           STM-AE: appearance (denoising) + motion (flow) autoencoders, spatial and
                       temporal memory pools, a future-frame decoder (stgraph.models.stm_ae)
    DissociationNet    spatial AE (first frame) + motion U-Net (RGB difference) with variance
                       attention and a deep K-means on the joint embedding
                       (stgraph.models.dissociation)

Frames are RGB in [-1, 1]; a clip of ``n_input`` frames is stacked on channels
([B, 3 * n_input, H, W]); H and W must be multiples of 8 (three stride-2 stages), and the
latent maps are [B, C, H / 8, W / 8].
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from stgraph.nn.autoencoder_layers import (DeepKMeans, MemoryPool, PixelShuffleUp, ResidualBlock,
                                           VarianceAttention, conv_block)

__all__ = ["STMAENet", "DissociationNet"]


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """Transposed-conv upsampling by 2 + BatchNorm + ReLU: [B, c_in, H, W] -> [B, c_out, 2H, 2W]."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _encoder(c_in: int, width: int) -> nn.Sequential:
    """STM-AE's 5-layer encoder (3x3 conv + BN + LeakyReLU): [B, c_in, H, W] -> [B, 4w, H/8, W/8]."""
    return nn.Sequential(conv_block(c_in, width), conv_block(width, 2 * width, 2),
                         conv_block(2 * width, 2 * width), conv_block(2 * width, 4 * width, 2),
                         conv_block(4 * width, 4 * width, 2))


def _decoder(c_in: int, width: int, c_out: int, n_layers: int) -> nn.Sequential:
    """STM-AE decoder: ``n_layers`` layers (3 upsampling), [B, c_in, H/8, W/8] -> [B, c_out, H, W]."""
    layers: list[nn.Module] = [conv_block(c_in, 4 * width, leaky=False)]
    if n_layers >= 6:
        layers.append(conv_block(4 * width, 4 * width, leaky=False))
    layers += [_up(4 * width, 2 * width), _up(2 * width, width), _up(width, width),
               nn.Conv2d(width, c_out, 3, 1, 1)]
    return nn.Sequential(*layers)


class STMAENet(nn.Module):
    """STM-AE (Sec. 2): two autoencoders, two memory pools, a future-frame decoder.

    Args:
        n_input: frames per input clip (paper: 4).
        width: base channel width w (latent channels C = 4w; the paper's network is wider).
        n_items: memory items per pool N (paper: 32).
        top_k: items written per query k (paper: 8).
        seed: seed of the memory items' initialisation.
        residual: the decoder predicts the change from the last input frame (``last +
            2 tanh(out)``) instead of the frame itself (``tanh(out)``, the paper).

    Shapes: ``clip`` [B, 3n, H, W] in [-1, 1]; ``flows`` [B, 2n, H, W] (scaled DIS flow);
    latents ``z_a``, ``z_m`` [B, C, H/8, W/8]; the prediction [B, 3, H, W].
    """

    def __init__(self, n_input: int = 4, width: int = 16, n_items: int = 32, top_k: int = 8,
                 seed: int = 0, residual: bool = True) -> None:
        super().__init__()
        self.residual = residual
        c = 4 * width
        self.latent_channels = c
        self.app_encoder = _encoder(3 * n_input, width)
        self.app_decoder = nn.Sequential(_decoder(c, width, 3 * n_input, 6), nn.Tanh())
        self.mot_encoder = _encoder(2 * n_input, width)
        self.mot_decoder = _decoder(c, width, 2 * n_input, 6)
        self.spatial_memory = MemoryPool(n_items, c, top_k, seed)
        self.temporal_memory = MemoryPool(n_items, c, top_k, seed + 1)
        self.frame_decoder = _decoder(4 * c, width, 3, 5)

    def reconstruct(self, noisy_clip: Tensor, flows: Tensor) -> tuple[Tensor, Tensor]:
        """Pre-training outputs: the denoised clip [B, 3n, H, W] and the flows [B, 2n, H, W]."""
        return (self.app_decoder(self.app_encoder(noisy_clip)),
                self.mot_decoder(self.mot_encoder(flows)))

    def encode(self, clip: Tensor, flows: Tensor) -> tuple[Tensor, Tensor]:
        """Latents ``(z_a, z_m)``, each [B, C, H/8, W/8]."""
        return self.app_encoder(clip), self.mot_encoder(flows)

    def predict(self, z_a: Tensor, z_m: Tensor, last: Tensor | None = None) -> Tensor:
        """Future frame [B, 3, H, W] from the latents and what the memories read back for them
        (``last`` [B, 3, H, W], the last input frame, is required when ``residual``)."""
        fused = torch.cat([z_a, self.spatial_memory.read(z_a), z_m,
                           self.temporal_memory.read(z_m)], dim=1)
        out = self.frame_decoder(fused)
        if not self.residual:
            return torch.tanh(out)
        if last is None:
            raise ValueError("a residual STMAENet predicts from the last input frame: pass last")
        return last + 2.0 * torch.tanh(out)


class DissociationNet(nn.Module):
    """Dissociation autoencoders (Sec. 3): spatial AE, motion U-Net, deep K-means.

    Args:
        n_input: frames stacked into the motion U-Net (paper: 4; the clip is n_input + 1 frames).
        width: base channel width w (each latent has 4w channels; the joint embedding 8w).
        n_clusters: K (paper: 32).

    Shapes: ``first`` [B, 3, H, W] (the first frame, FIF); ``clip`` [B, 3n, H, W] (the input
    frames, without the last one, LIF); reconstruction [B, 3, H, W]; RGB difference
    LIF - FIF [B, 3, H, W] in [-2, 2]; joint embedding [B, 8w, H/8, W/8] in [0, 1].
    """

    def __init__(self, n_input: int = 4, width: int = 16, n_clusters: int = 32) -> None:
        super().__init__()
        w = width
        self.embedding_channels = 8 * w
        self.spatial_encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1), nn.LeakyReLU(0.2), ResidualBlock(w, w, 2),
            ResidualBlock(w, 2 * w, 2), ResidualBlock(2 * w, 4 * w, 2))
        self.spatial_decoder = nn.Sequential(
            PixelShuffleUp(4 * w, 2 * w), PixelShuffleUp(2 * w, w), PixelShuffleUp(w, w),
            nn.Conv2d(w, 3, 3, 1, 1), nn.Tanh())
        self.motion_stem = nn.Sequential(nn.Conv2d(3 * n_input, w, 3, 1, 1), nn.LeakyReLU(0.2))
        self.motion_blocks = nn.ModuleList([ResidualBlock(w, w, 2), ResidualBlock(w, 2 * w, 2),
                                            ResidualBlock(2 * w, 4 * w, 2)])
        self.attention = nn.ModuleList([VarianceAttention(c) for c in (w, 2 * w, 4 * w)])
        self.up = nn.ModuleList([PixelShuffleUp(4 * w, 2 * w), PixelShuffleUp(2 * w, w),
                                 PixelShuffleUp(w, w)])
        self.fuse = nn.ModuleList([nn.Conv2d(4 * w, 2 * w, 3, 1, 1), nn.Conv2d(2 * w, w, 3, 1, 1)])
        self.diff_head = nn.Conv2d(w, 3, 3, 1, 1)
        self.kmeans = DeepKMeans(n_clusters, 8 * w)
        self.act = nn.LeakyReLU(0.2)

    def spatial(self, first: Tensor) -> tuple[Tensor, Tensor]:
        """``(reconstruction [B, 3, H, W], z_a [B, 4w, H/8, W/8])`` of the first frame."""
        z_a = self.spatial_encoder(first)
        return self.spatial_decoder(z_a), z_a

    def motion(self, clip: Tensor) -> tuple[Tensor, Tensor]:
        """``(RGB difference [B, 3, H, W], z_m [B, 4w, H/8, W/8])`` of the stacked input frames."""
        x = self.motion_stem(clip)
        skips = []
        for block, attention in zip(self.motion_blocks, self.attention):
            x = attention(block(x))
            skips.append(x)
        z_m = x
        x = self.up[0](z_m)
        x = self.act(self.fuse[0](torch.cat([x, skips[1]], dim=1)))
        x = self.up[1](x)
        x = self.act(self.fuse[1](torch.cat([x, skips[0]], dim=1)))
        return 2.0 * torch.tanh(self.diff_head(self.up[2](x))), z_m

    @staticmethod
    def embedding(z_a: Tensor, z_m: Tensor) -> Tensor:
        """Joint embedding r [B, 8w, H/8, W/8]: the concatenated latents squashed to [0, 1]."""
        return torch.sigmoid(torch.cat([z_a, z_m], dim=1))

    def forward(self, first: Tensor, clip: Tensor) -> dict[str, Tensor]:
        """All outputs: ``recon``, ``diff``, ``prediction`` (recon + diff, the LIF), ``r``."""
        recon, z_a = self.spatial(first)
        diff, z_m = self.motion(clip)
        return {"recon": recon, "diff": diff, "prediction": recon + diff,
                "r": self.embedding(z_a, z_m)}
