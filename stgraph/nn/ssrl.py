"""SSRL's network (Li et al., "Scale-aware spatio-temporal relation learning for video anomaly
detection", ECCV 2022): PSR, MPA, VTR and the snippet classifier, as pure ``nn.Module`` s.

One video at a time (T snippets; the relation layers mix snippets of one video only)::

    patches of grid r   [T, N_r, D_in]  --projection (shared Linear + ReLU)-->  [T, N_r, D]
    PSR_r   (RelationNet over the N_r patches of each snippet)                   [T, N_r, D]
    MPA     (per grid: reshape [T, D, rows, cols], 3x3 stride-2 conv, FC; sum)   [T, D]
    VTR     (RelationNet over the T snippets)                                    [T, D]
    classifier  FC D-512-128-1 + sigmoid                                         [T]

:class:`RelationNet` is RTFM's relation network as the paper writes it (Eqs. 1-3 / 4-6): a
non-local block on a 1x1 reduction to D/4 (softmax attention whose rows sum to one, ``W_z``, a
residual to the reduction) beside three dilated 1-D convolutions (d = 1, 2, 4, each to D/4); the
four D/4 outputs are concatenated to D and the input is added back. ``D`` must be divisible by 4.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["NonLocalBlock", "RelationNet", "MultiScalePatchAggregation", "SnippetClassifier",
           "SSRLNet", "LinearMILNet"]


class NonLocalBlock(nn.Module):
    """Eqs. 1-2: ``x_bar = ReLU(W_r x)``; ``M = softmax(W_theta x_bar (W_phi x_bar)^T)``;
    ``x_hat = W_z (M W_g x_bar) + x_bar``.

    Input ``x`` [B, N, D]; returns ``(x_hat [B, N, D/4], M [B, N, N])`` (rows of M sum to one).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        inner = dim // 4
        self.reduce = nn.Sequential(nn.Linear(dim, inner), nn.ReLU())
        self.theta = nn.Linear(inner, inner)
        self.phi = nn.Linear(inner, inner)
        self.g = nn.Linear(inner, inner)
        self.w_z = nn.Linear(inner, inner)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_bar = self.reduce(x)
        attention = torch.softmax(self.theta(x_bar) @ self.phi(x_bar).transpose(1, 2), dim=-1)
        return self.w_z(attention @ self.g(x_bar)) + x_bar, attention


class RelationNet(nn.Module):
    """Non-local block + dilated 1-D convolutions over a sequence, concatenated, plus a residual
    (Eq. 3 / Eq. 6). Input [B, N, D] (N patches of a snippet, or T snippets of a video);
    returns ``(out [B, N, D], attention [B, N, N])``.

    Args:
        dim: D (divisible by 4).
        use_nonlocal, use_dilated: switch one sub-network off (its D/4 or 3D/4 channels become
            zeros), for the paper's Table 5 ablation.
    """

    def __init__(self, dim: int, use_nonlocal: bool = True, use_dilated: bool = True) -> None:
        super().__init__()
        if dim % 4:
            raise ValueError(f"RelationNet needs a feature size divisible by 4, got {dim}")
        self.dim = dim
        self.non_local = NonLocalBlock(dim) if use_nonlocal else None
        self.dilated = nn.ModuleList(
            nn.Conv1d(dim, dim // 4, kernel_size=3, dilation=d, padding=d) for d in (1, 2, 4)
        ) if use_dilated else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, n, d = x.shape
        if self.non_local is not None:
            local, attention = self.non_local(x)
        else:
            local = x.new_zeros(b, n, d // 4)
            attention = x.new_full((b, n, n), 1.0 / n)
        if self.dilated is not None:
            seq = x.transpose(1, 2)  # [B, D, N]
            dilated = [torch.relu(conv(seq)).transpose(1, 2) for conv in self.dilated]
        else:
            dilated = [x.new_zeros(b, n, d // 4)] * 3
        return torch.cat([local, *dilated], dim=-1) + x, attention


class MultiScalePatchAggregation(nn.Module):
    """MPA: per grid, reshape [B, N_r, D] to [B, D, rows, cols], a 3x3 stride-2 conv (+ReLU),
    flatten, an FC to D (+ReLU); the grids' outputs are summed -> [B, D]."""

    def __init__(self, dim: int, grids: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.grids = [tuple(int(v) for v in g) for g in grids]
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, stride=2, padding=1) for _ in self.grids)
        self.fcs = nn.ModuleList(
            nn.Linear(dim * ((r + 1) // 2) * ((c + 1) // 2), dim) for r, c in self.grids)

    def forward(self, patches: Sequence[Tensor]) -> Tensor:
        if len(patches) != len(self.grids):
            raise ValueError(f"MPA expects {len(self.grids)} grids, got {len(patches)}")
        out = 0
        for (rows, cols), x, conv, fc in zip(self.grids, patches, self.convs, self.fcs):
            b, n, d = x.shape
            if n != rows * cols:
                raise ValueError(f"grid {rows}x{cols} expects {rows * cols} patches, got {n}")
            grid = x.transpose(1, 2).reshape(b, d, rows, cols)
            out = out + torch.relu(fc(torch.relu(conv(grid)).flatten(1)))
        return out


class SnippetClassifier(nn.Module):
    """FC D-512-128-1 with ReLU and dropout, sigmoid: [..., D] -> scores [...] in (0, 1)."""

    def __init__(self, dim: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 512), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(512, 128), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(128, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.net(x)).squeeze(-1)


class SSRLNet(nn.Module):
    """The whole SSRL network for one video (see the module docstring).

    Args:
        in_dim: D_in of the snippet features.
        grids: the patch grids ``(rows, cols)``, in input order.
        dim: D after the projection (256; must be divisible by 4).
        use_psr: PSR per grid (off: the projected patches go straight to MPA).
        use_vtr: VTR over snippets (off: identity).
        dropout: classifier dropout.

    ``forward(patches)`` with ``patches[r]`` [T, N_r, D_in] returns a dict:
    ``features`` [T, D] (phi_ST, whose norms are the feature magnitudes), ``scores`` [T],
    ``patch_features`` (per grid [T, N_r, D]) and ``attention`` (per grid [T, N_r, N_r]).
    """

    def __init__(self, in_dim: int, grids: Sequence[tuple[int, int]], dim: int = 256,
                 use_psr: bool = True, use_vtr: bool = True, dropout: float = 0.7) -> None:
        super().__init__()
        self.grids = [tuple(int(v) for v in g) for g in grids]
        self.project = nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU())
        self.psr = nn.ModuleList(RelationNet(dim) for _ in self.grids) if use_psr else None
        self.mpa = MultiScalePatchAggregation(dim, self.grids)
        self.vtr = RelationNet(dim) if use_vtr else None
        self.classifier = SnippetClassifier(dim, dropout)

    def forward(self, patches: Sequence[Tensor]) -> dict[str, object]:
        projected = [self.project(x) for x in patches]
        attention = []
        if self.psr is not None:
            related = []
            for x, psr in zip(projected, self.psr):
                out, att = psr(x)
                related.append(out)
                attention.append(att)
            projected = related
        snippet = self.mpa(projected)  # [T, D]
        if self.vtr is not None:
            snippet = self.vtr(snippet[None])[0][0]
        return {"features": snippet, "scores": self.classifier(snippet),
                "patch_features": projected, "attention": attention}


class LinearMILNet(nn.Module):
    """The naive weak baseline: one linear layer + sigmoid on the whole-frame (1x1 grid) snippet
    feature; the same layer on every patch gives patch scores.

    ``forward(patches)`` (``patches[r]`` [T, N_r, D_in], the first one 1x1) returns ``features``
    [T, D_in], ``scores`` [T] and ``patch_scores`` (per grid [T, N_r])."""

    def __init__(self, in_dim: int, grids: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.grids = [tuple(int(v) for v in g) for g in grids]
        self.linear = nn.Linear(in_dim, 1)

    def forward(self, patches: Sequence[Tensor]) -> dict[str, object]:
        whole = patches[0].mean(dim=1)  # [T, D_in]
        return {"features": whole, "scores": torch.sigmoid(self.linear(whole)).squeeze(-1),
                "patch_scores": [torch.sigmoid(self.linear(x)).squeeze(-1) for x in patches]}
