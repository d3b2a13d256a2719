"""Layers shared by the pixel autoencoders (STM-AE, the dissociation autoencoders).

    conv_block          3x3 conv (+ BatchNorm) + activation, optional stride 2
    ResidualBlock       two 3x3 convs with a skip (LeakyReLU), optional stride-2 downsampling
    PixelShuffleUp      conv to 4C + ``nn.PixelShuffle(2)``: [B, C_in, H, W] -> [B, C_out, 2H, 2W]
    MemoryPool          N memory items: softmax-of-cosine read, top-k write (STM-AE Sec. 2.2)
    VarianceAttention   channel-variance spatial attention (dissociation Sec. 3.4, Eqs. 7-9)
    DeepKMeans          K centres, soft assignment, soft distance (dissociation Eq. 10)
    PatchDiscriminator  PatchGAN discriminator for LSGAN training (STM-AE Sec. 2.3)

Shapes use B = batch, C = channels, H x W = spatial size, N = memory items, K = clusters.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["conv_block", "ResidualBlock", "PixelShuffleUp", "MemoryPool", "VarianceAttention",
           "DeepKMeans", "PatchDiscriminator", "salt_and_pepper", "gradient_loss", "psnr"]


def conv_block(c_in: int, c_out: int, stride: int = 1, norm: bool = True,
               leaky: bool = True) -> nn.Sequential:
    """3x3 conv (stride 1 or 2) + optional BatchNorm + LeakyReLU(0.2) / ReLU.

    [B, c_in, H, W] -> [B, c_out, H / stride, W / stride].
    """
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True) if leaky else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Residual block with LeakyReLU and no normalisation (dissociation Sec. 3.2-3.3).

    [B, c_in, H, W] -> [B, c_out, H / stride, W / stride]; the skip is a 1x1 conv (strided) when
    the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out
                     else nn.Conv2d(c_in, c_out, 1, stride, 0))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))) + self.skip(x))


class PixelShuffleUp(nn.Module):
    """Upsampling by 2 with a pixel shuffle: [B, c_in, H, W] -> [B, c_out, 2H, 2W].

    A 3x3 conv to ``4 * c_out`` channels, ``nn.PixelShuffle(2)``, LeakyReLU, then a residual
    block at the new resolution (the dissociation decoders replace strided convs by this).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.LeakyReLU(0.2)
        self.block = ResidualBlock(c_out, c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.act(self.shuffle(self.conv(x))))


class MemoryPool(nn.Module):
    """A pool of N memory items of dimension C (STM-AE's spatial or temporal pool).

    The items are a buffer (not a parameter): they change only through :meth:`update`, the
    paper's write operation, never by back-propagation.

    - **read** (Sec. 2.2): each query q [C] is rebuilt as ``sum_i softmax_i(cos(q, m_i)) m_i``,
      a convex combination of the items.
    - **write** (Eq. 3-4): items are updated with the queries most similar to them, keeping the
      top-k similarities: for each query only its ``top_k`` most similar items receive it, each
      item then takes ``m_i <- l2norm(m_i + sum_q w_iq q)`` with ``w_i`` a softmax of the kept
      cosine similarities over queries. One query therefore touches exactly ``top_k`` items;
      items no query selected are unchanged. (The paper keeps the top-k *queries* per item; we
      keep the top-k *items* per query, which bounds what one query can overwrite.)

    Args:
        n_items: N (paper: 32).
        dim: C, the channels of the encoder's feature map.
        top_k: k (paper: 8).
        seed: seed of the items' random initialisation.
    """

    def __init__(self, n_items: int, dim: int, top_k: int, seed: int = 0) -> None:
        super().__init__()
        if not 1 <= top_k <= n_items:
            raise ValueError(f"top_k must be in [1, n_items={n_items}], got {top_k}")
        self.top_k = int(top_k)
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("items", F.normalize(torch.randn(n_items, dim, generator=gen), dim=1))

    @staticmethod
    def queries(z: Tensor) -> Tensor:
        """[B, C, H, W] -> [B*H*W, C]."""
        return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])

    def weights(self, queries: Tensor) -> Tensor:
        """Read weights [Q, N]: softmax over items of the cosine similarity (rows sum to 1)."""
        cos = F.normalize(queries, dim=1) @ F.normalize(self.items, dim=1).t()
        return torch.softmax(cos, dim=1)

    def read(self, z: Tensor) -> Tensor:
        """Rebuild every query from the items: [B, C, H, W] -> [B, C, H, W]."""
        b, c, h, w = z.shape
        q = self.queries(z)
        out = self.weights(q) @ self.items
        return out.reshape(b, h, w, c).permute(0, 3, 1, 2)

    @torch.no_grad()
    def update(self, z: Tensor) -> None:
        """Write the queries of ``z`` [B, C, H, W] (or [Q, C]) into the pool (top-k per query)."""
        q = z.detach() if z.dim() == 2 else self.queries(z.detach())
        cos = F.normalize(self.items, dim=1) @ F.normalize(q, dim=1).t()  # [N, Q]
        keep = torch.zeros_like(cos, dtype=torch.bool)
        keep.scatter_(0, cos.topk(self.top_k, dim=0).indices, True)
        logits = cos.masked_fill(~keep, -math.inf)
        touched = keep.any(dim=1)
        w = torch.softmax(logits[touched], dim=1)
        self.items[touched] = F.normalize(self.items[touched] + w @ q, dim=1)

    def separateness_loss(self, z: Tensor, margin: float = 1.0) -> Tensor:
        """Eq. 9 (triplet form): each query closer to its nearest item than to its second one.

        ``mean(max(||q - m_b||^2 - ||q - m_n||^2 + margin, 0))`` with b, n the first and second
        nearest items of the L2-normalised query q.
        """
        q = F.normalize(self.queries(z), dim=1)
        d = (2.0 - 2.0 * q @ F.normalize(self.items, dim=1).t()).clamp_min(0.0)  # unit vectors
        two = d.topk(2, dim=1, largest=False).values
        return F.relu(two[:, 0] - two[:, 1] + margin).mean()


class VarianceAttention(nn.Module):
    """Variance-based spatial attention (dissociation Eqs. 7-9): [B, C, H, W] -> same shape.

    ``f = W_g * z`` (3x3 conv), ``v(h, w)`` = variance of f over channels, ``att`` = softmax of v
    over the H*W locations, L2-normalised over locations. The output is ``z * att * sqrt(H*W)``,
    which is ``z`` itself when the variance is uniform and amplifies the high-variance (moving)
    locations otherwise.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, channels, 3, 1, 1)

    def attention(self, z: Tensor) -> Tensor:
        """The attention map [B, 1, H, W] (L2 norm 1 over H x W)."""
        b, _, h, w = z.shape
        v = self.embed(z).var(dim=1, unbiased=False).reshape(b, -1)
        att = F.normalize(torch.softmax(v, dim=1), dim=1)
        return att.reshape(b, 1, h, w)

    def forward(self, z: Tensor) -> Tensor:
        h, w = z.shape[-2:]
        return z * self.attention(z) * math.sqrt(h * w)


class DeepKMeans(nn.Module):
    """K cluster centres in a D-dim embedding with the paper's soft assignment (Eq. 10).

    For an embedding r [D]: ``a_k = softmax_k(-alpha ||r - c_k||)`` and the soft distance
    ``D(r) = sum_k a_k ||r - c_k||^2``.

    Args:
        n_clusters: K (paper: 32).
        dim: D.
    """

    def __init__(self, n_clusters: int, dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(n_clusters, dim))

    def squared_distances(self, r: Tensor, frozen: bool = False) -> Tensor:
        """``||r_m - c_k||^2`` [M, K] of embeddings r [M, D]; ``frozen``: no gradient reaches
        the centres (the autoencoder step of the alternating optimisation)."""
        c = self.centers.detach() if frozen else self.centers
        return ((r[:, None, :] - c[None]).pow(2)).sum(dim=2)

    def assignments(self, r: Tensor, alpha: float) -> Tensor:
        """Soft assignments [M, K] of embeddings r [M, D] (each row sums to 1)."""
        return torch.softmax(-alpha * (self.squared_distances(r) + 1e-12).sqrt(), dim=1)

    def distance(self, r: Tensor, alpha: float, frozen: bool = False) -> Tensor:
        """Soft distance ``D(r)`` [M] of embeddings r [M, D] (Eq. 10)."""
        sq = self.squared_distances(r, frozen)
        return (torch.softmax(-alpha * (sq + 1e-12).sqrt(), dim=1) * sq).sum(dim=1)

    def distance_map(self, r: Tensor, alpha: float) -> Tensor:
        """Soft distance of each location of r [B, D, H, W]: [B, H, W]."""
        b, d, h, w = r.shape
        return self.distance(r.permute(0, 2, 3, 1).reshape(-1, d), alpha).reshape(b, h, w)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: [B, 3, H, W] -> patch scores [B, 1, H / 8, W / 8] (LSGAN targets
    0 = real future frame, 1 = predicted, as in STM-AE Sec. 2.3)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(conv_block(3, width, 2, norm=False), conv_block(width, 2 * width, 2),
                                 conv_block(2 * width, 4 * width, 2),
                                 nn.Conv2d(4 * width, 1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def salt_and_pepper(x: Tensor, amount: float, generator: torch.Generator | None = None) -> Tensor:
    """``x`` (values in [-1, 1]) with a fraction ``amount`` of its pixels set to -1 or 1 (half
    each), the same pixels in every channel of a frame. x: [B, C, H, W] -> same shape."""
    b, _, h, w = x.shape
    u = torch.rand(b, 1, h, w, generator=generator).to(x.device)
    out = x.clone()
    out = torch.where(u < amount / 2, torch.full_like(x, -1.0), out)
    return torch.where((u >= amount / 2) & (u < amount), torch.ones_like(x), out)


def gradient_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of the x- and y-gradients of two images [B, C, H, W]."""
    def grads(x: Tensor) -> tuple[Tensor, Tensor]:
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]

    (px, py), (tx, ty) = grads(pred), grads(target)
    return (px.abs() - tx.abs()).abs().mean() + (py.abs() - ty.abs()).abs().mean()


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB per sample of images in [-1, 1] (peak-to-peak 2, as 255 on 0..255): [B]."""
    mse = (pred - target).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return 10.0 * torch.log10(4.0 / mse)
