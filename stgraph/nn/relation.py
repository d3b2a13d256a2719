"""STRL's relation learning module (paper Sec. III-C, Eq. 8-9): object-scene plausibility.

The scene embedding is the STAE encoder map ``E_s`` [B, d, h, w] (1/8 of the input). An object
embedding ``e_o`` [d] is ``E_s`` masked by the object's region mask ``M`` [h, w] (at encoder
resolution) and globally average-pooled (:func:`masked_average`). A learnable relation map
``R`` [d, h, w] (one relation embedding per scene cell) is concatenated with ``E_s``, and two
1x1 Conv-ReLU-BN layers fuse them into ``Γ`` [B, d, h, w]; the plausibility of the object in every
scene cell is (Eq. 8)::

    ψ(E_s, e_o)[i, j] = σ(Γ[:, i, j] · e_o)                 # [h, w] in (0, 1)

Training (Eq. 9) contrasts each object embedding of a normal clip with the embeddings of the same
region in two pseudo-anomalous clips (random speed: frame skips of 1-4; random order: shuffled
frames; :func:`speed_clip_indices`, :func:`order_clip_indices`)::

    L_rl = mean over masks M, cells (i, j) in M of
           -log( ψ_ij(E_s, e_o) / (ψ_ij(E_s, e_o) + ψ_ij(E_s, é_o) + ψ_ij(E_s, è_o)) )

The paper writes the log outside the sums (``-1/(whn) log Σ_M Σ_ij M ψ/Σψ``); we take the log
per cell (the usual InfoNCE form it cites, which stays defined when every ratio is small) and
average over the masked cells.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["RelationModule", "masked_average", "relation_loss", "speed_clip_indices",
           "order_clip_indices", "box_masks"]


def masked_average(embedding: Tensor, masks: Tensor, batch_index: Tensor) -> Tensor:
    """Object embeddings ``e_o`` [n, d]: ``embedding`` [B, d, h, w] of clip ``batch_index[m]``
    averaged over mask ``masks[m]`` [n, h, w] (0/1 floats; an empty mask gives zeros)."""
    maps = embedding[batch_index]                                    # [n, d, h, w]
    area = masks.flatten(1).sum(1).clamp_min(1e-6)                   # [n]
    return (maps * masks[:, None]).flatten(2).sum(2) / area[:, None]


def box_masks(boxes: np.ndarray, image_hw: tuple[int, int], grid_hw: tuple[int, int]) -> np.ndarray:
    """Rectangle masks float32 [N, h, w] on the ``grid_hw`` encoder grid of boxes [N, 4] (xyxy
    pixels of an ``image_hw`` frame): a cell is in the mask when the box overlaps it; every
    box covers at least one cell."""
    h, w = grid_hw
    sy, sx = h / image_hw[0], w / image_hw[1]
    out = np.zeros((len(boxes), h, w), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        c1 = int(np.clip(np.floor(x1 * sx), 0, w - 1))
        r1 = int(np.clip(np.floor(y1 * sy), 0, h - 1))
        c2 = int(np.clip(np.ceil(x2 * sx), c1 + 1, w))
        r2 = int(np.clip(np.ceil(y2 * sy), r1 + 1, h))
        out[k, r1:r2, c1:c2] = 1.0
    return out


def speed_clip_indices(length: int, rng: np.random.Generator, max_skip: int = 4) -> np.ndarray:
    """Offsets [length] of a random-speed clip (paper: keep the first frame, then ``length - 1``
    frames each 1..``max_skip`` after the previous one, at least one skip > 1): increasing, from 0."""
    steps = rng.integers(1, max_skip + 1, size=length - 1)
    if length > 1 and (steps == 1).all():
        steps[rng.integers(length - 1)] = rng.integers(2, max_skip + 1)
    return np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)


def order_clip_indices(length: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation [length] of ``0..length-1`` that is not the identity (random order)."""
    if length < 2:
        return np.arange(length)
    while True:
        order = rng.permutation(length)
        if (order != np.arange(length)).any():
            return order


class RelationModule(nn.Module):
    """The relation map ``R`` and the two 1x1 fusion layers of Eq. 8.

    Args:
        dim: embedding channels ``d`` (the STAE encoder's).
        grid_hw: ``(h, w)`` of the encoder map (1/8 of the input size).
    """

    def __init__(self, dim: int, grid_hw: tuple[int, int]) -> None:
        super().__init__()
        self.dim, self.grid_hw = dim, tuple(grid_hw)
        self.relation = nn.Parameter(torch.randn(dim, *grid_hw) * 0.1)   # R [d, h, w]
        self.fuse = nn.Sequential(nn.Conv2d(2 * dim, dim, 1), nn.ReLU(inplace=True),
                                  nn.BatchNorm2d(dim), nn.Conv2d(dim, dim, 1),
                                  nn.ReLU(inplace=True), nn.BatchNorm2d(dim))

    def gamma(self, scene: Tensor) -> Tensor:
        """``Γ = conv_w2(conv_w1([E_s; R]))`` [B, d, h, w] of scene maps ``E_s`` [B, d, h, w]."""
        if scene.dim() != 4 or tuple(scene.shape[1:]) != (self.dim, *self.grid_hw):
            raise ValueError(f"RelationModule expects scene maps [B, {self.dim}, "
                             f"{self.grid_hw[0]}, {self.grid_hw[1]}], got {tuple(scene.shape)}")
        r = self.relation[None].expand(scene.shape[0], -1, -1, -1)
        return self.fuse(torch.cat([scene, r], 1))

    @staticmethod
    def logits(gamma: Tensor, objects: Tensor, batch_index: Tensor) -> Tensor:
        """Pre-sigmoid plausibility ``Γ·e_o / sqrt(d)`` [n, h, w] (``psi = sigmoid(logits)``)."""
        return (gamma[batch_index] * objects[:, :, None, None]).sum(1) / gamma.shape[1] ** 0.5

    @staticmethod
    def psi(gamma: Tensor, objects: Tensor, batch_index: Tensor) -> Tensor:
        """Plausibility maps ψ [n, h, w] in (0, 1) of objects [n, d] in scenes ``gamma[batch_index]``.

        The dot product is scaled by ``1/sqrt(d)`` (so that the sigmoid does not saturate at
        initialisation; a constant factor the learned layers can absorb).
        """
        return torch.sigmoid(RelationModule.logits(gamma, objects, batch_index))

    def forward(self, scene: Tensor, objects: Tensor, batch_index: Tensor) -> Tensor:
        """ψ maps [n, h, w] of objects [n, d] in scene maps [B, d, h, w] (Eq. 8)."""
        return self.psi(self.gamma(scene), objects, batch_index)


def relation_loss(psi_pos: Tensor, psi_negs: list[Tensor], masks: Tensor) -> Tensor:
    """Eq. 9 (see the module docstring): scalar, mean over the masked cells of all masks.

    Args:
        psi_pos: ψ of the normal objects [n, h, w].
        psi_negs: ψ of the same regions in each negative clip, each [n, h, w].
        masks: region masks [n, h, w] (0/1).
    """
    denominator = psi_pos + sum(psi_negs)
    nll = -torch.log(psi_pos / denominator + 1e-8)
    return (nll * masks).sum() / masks.sum().clamp_min(1.0)
