"""Ano-Graph's network: Deep Graph Infomax on the object spatio-temporal graph (paper Sec. 3).

:class:`AnoGraphDGI` is a pure ``nn.Module``: a 1-layer GCN encoder with PReLU, the readout
``R(H) = sigmoid(mean_i h_i)`` (Eq. 3), the bilinear discriminator ``D(h, s) = sigmoid(hᵀ W s)``,
row-permutation corruption, the loss of Eq. 4 and the paper's object score
``1 - D(h_i, s_train)`` (Eq. 5). The training loop is :func:`stgraph.models.dgi_training.train_dgi`;
other scores of the embeddings (the Mahalanobis distance, the library default) live in
:mod:`stgraph.models.density`, outside the network.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.nn import GCNConv, global_mean_pool
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from stgraph.graphs.object_graph import TEMPORAL

__all__ = ["AnoGraphDGI", "Workspace", "csr_matrix", "csr_tensor"]


def csr_tensor(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """``torch.sparse_csr_tensor`` without invariant checks and without torch's "beta" notice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def csr_matrix(rows: Tensor, cols: Tensor, values: Tensor, num_nodes: int) -> Tensor:
    """Sparse CSR [N, N] with ``values[e]`` at ``(rows[e], cols[e])`` (duplicates kept, summed by
    products). Entries are ordered by row with a stable sort, so the order inside a row is the
    input order."""
    order = torch.sort(rows, stable=True).indices
    counts = torch.bincount(rows, minlength=num_nodes)
    crow = torch.zeros(num_nodes + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=crow[1:])
    return csr_tensor(crow, cols[order], values[order], (num_nodes, num_nodes))


def _segment_sum(batch: Tensor, values: Tensor | None, rows: Tensor, num_graphs: int) -> Tensor:
    """``out[g] = sum_{i: batch[i] = g} values[i] * rows[i]`` [B, H] as one sparse product."""
    n = batch.numel()
    order = torch.sort(batch, stable=True).indices
    crow = torch.zeros(num_graphs + 1, dtype=torch.int64, device=batch.device)
    torch.cumsum(torch.bincount(batch, minlength=num_graphs), 0, out=crow[1:])
    vals = torch.ones(n, dtype=rows.dtype, device=rows.device) if values is None else values
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        segments = torch.sparse_csr_tensor(crow, order, vals[order], (num_graphs, n),
                                           check_invariants=False)
    return segments @ rows


class Workspace:
    """Reusable buffers for :meth:`AnoGraphDGI.propagated_loss_terms`.

    Fresh [2N, H] tensors cost more to allocate (the pages are zeroed by the OS on first touch)
    than the element-wise pass that fills them; a training loop keeps one workspace and every
    step writes into the same memory. One workspace serves one forward/backward at a time.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def get(self, name: str, rows: int, like: Tensor) -> Tensor:
        """An uninitialised [rows, like.size(1)] buffer of ``like``'s dtype and device."""
        cols = like.size(-1)
        buffer = self._buffers.get(name)
        if (buffer is None or buffer.size(0) < rows or buffer.size(1) != cols
                or buffer.dtype != like.dtype or buffer.device != like.device):
            buffer = torch.empty(max(rows, 0 if buffer is None else buffer.size(0)), cols,
                                 dtype=like.dtype, device=like.device)
            self._buffers[name] = buffer
        return buffer[:rows]


class _PropagatedDGILoss(torch.autograd.Function):
    """The DGI loss terms from propagated inputs, with a hand-written backward pass.

    Forward (2N rows: N real then N corrupted; ``batch`` [N] graph of each real/corrupted pair)::

        z = ax Θᵀ + b            [2N, H]     h = PReLU_a(z)
        s_g = sigmoid(mean_{i in g} h_i)   (real rows)      v_g = W s_g   [B, H]
        l_i = h_i · v_g(i)                  L = sum softplus(-l_real) + sum softplus(l_corrupt)

    The gradients are those autograd would give, computed with two dense products, two sparse
    segment sums and a few in-place element-wise passes over workspace buffers.
    """

    @staticmethod
    def forward(ctx, ax: Tensor, theta: Tensor, bias: Tensor, slope: Tensor, weight: Tensor,
                batch: Tensor, num_graphs: int, workspace: Workspace) -> Tensor:
        n, rows = batch.numel(), ax.size(0)
        h = workspace.get("h", rows, bias[None])
        torch.addmm(bias, ax, theta.t(), out=h)                     # z
        negative_part = workspace.get("negative_part", rows, h)
        torch.clamp(h, max=0, out=negative_part)                    # min(z, 0)
        h.clamp_(min=0).add_(negative_part, alpha=float(slope))     # PReLU(z)
        counts = torch.bincount(batch, minlength=num_graphs).clamp_(min=1).to(h.dtype)
        summary = torch.sigmoid(_segment_sum(batch, None, h[:n], num_graphs) / counts[:, None])
        direction = workspace.get("direction", n, h)
        torch.index_select(summary @ weight.t(), 0, batch, out=direction)  # W s_g(i) [N, H]
        logits = torch.stack([torch.einsum("nh,nh->n", h[:n], direction),
                              torch.einsum("nh,nh->n", h[n:], direction)])  # [2, N]
        ctx.save_for_backward(ax, theta, slope, weight, batch, summary, logits, counts)
        ctx.num_graphs, ctx.workspace = num_graphs, workspace
        return torch.nn.functional.softplus(-logits[0]).sum() + \
            torch.nn.functional.softplus(logits[1]).sum()

    @staticmethod
    def backward(ctx, grad: Tensor):
        ax, theta, slope, weight, batch, summary, logits, counts = ctx.saved_tensors
        n, b, rows, workspace = batch.numel(), ctx.num_graphs, ax.size(0), ctx.workspace
        h = workspace.get("h", rows, ax.new_empty(0, theta.size(0)))
        negative_part = workspace.get("negative_part", rows, h)
        direction = workspace.get("direction", n, h)
        c_real = -torch.sigmoid(-logits[0]) * grad  # dL/dl of real rows [N]
        c_corrupt = torch.sigmoid(logits[1]) * grad  # of corrupted rows [N]
        dv = _segment_sum(batch, c_real, h[:n], b) + _segment_sum(batch, c_corrupt, h[n:], b)
        d_weight = dv.t() @ summary
        d_mean = (dv @ weight) * summary * (1 - summary) / counts[:, None]  # [B, H]
        dh = workspace.get("dh", rows, h)
        torch.mul(direction, c_real[:, None], out=dh[:n])
        torch.mul(direction, c_corrupt[:, None], out=dh[n:])
        dh[:n] += torch.index_select(d_mean, 0, batch, out=direction)
        d_slope = torch.dot(dh.reshape(-1), negative_part.reshape(-1)).reshape(slope.shape)
        # dz = dh * (a where z < 0, else 1) = dh + (1 - a) * dh * sign(min(z, 0)), in place
        dh.addcmul_(dh, negative_part.sign_(), value=1 - float(slope))
        d_theta = dh.t() @ ax
        d_bias = dh.sum(dim=0)
        return None, d_theta, d_bias, d_slope, d_weight, None, None, None


class AnoGraphDGI(nn.Module):
    """Deep Graph Infomax on an object spatio-temporal graph (Ano-Graph, Sec. 3, Eq. 3-5).

    Shapes (N nodes, E edges, B graphs in a mini-batch, D = ``in_dim``, H = ``hidden``)::

        x            float32 [N, D]  node features
        edge_index   int64   [2, E]  PyG order: edge (j, i) = node i aggregates from node j
        edge_weight  float32 [E]     A[i, j] (None: all ones)
        edge_type    int64   [E]     0 spatial, 1 temporal (needed only when ``symmetric``)
        batch        int64   [N]     graph of each node, sorted as in PyG batches (None: one graph)
        h            float32 [N, H]  node embeddings;   summary  float32 [B, H]

    Args:
        in_dim: node feature width D.
        hidden: embedding width H. Default 256. The DGI paper uses 512; 256 halves the
            encoder and quarters the H x H discriminator, which is plenty for the few objects per
            frame of a video.
        symmetric: also let each object aggregate from the objects of the *previous* frame, with
            the weight of the forward temporal edge. Default ``False``: the paper's A is block
            upper-triangular (frame t aggregates from frame t+1 only) and is used as it is. Kipf's
            GCN normalisation assumes a symmetric adjacency. ``True`` makes the temporal blocks
            symmetric (the spatial blocks already have a symmetric pattern), so information flows
            both ways in time.

    The encoder is ``PReLU(GCNConv(x))``. GCNConv normalises as ``D^-1/2 (A + I) D^-1/2`` and adds
    a weight-1 self loop only to nodes the builder gave none; the builder's softmax self weight is
    kept otherwise. The corruption permutes the rows of ``x`` *within each graph of the batch*, as
    in DGI, so a window's negatives are that window with its objects' features shuffled. The paper
    reports that permuting A instead performs the same. PyG's ``DeepGraphInfomax`` is not used
    because its discriminator takes one summary for all nodes, while a batch of windows has one
    summary per window.
    """

    def __init__(self, in_dim: int, hidden: int = 256, symmetric: bool = False) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.symmetric = in_dim, hidden, symmetric
        self.conv = GCNConv(in_dim, hidden)
        self.act = nn.PReLU()
        self.weight = nn.Parameter(torch.empty(hidden, hidden))
        #: s_train [H]: readout of the training graphs, set by :func:`train_dgi` (NaN until then).
        self.register_buffer("train_summary", torch.full((hidden,), math.nan))
        #: per-feature centre [D] and scale [D] applied to x before the GCN (identity by default;
        #: set from the training nodes by :meth:`set_feature_scaling`).
        self.register_buffer("feature_mean", torch.zeros(in_dim))
        self.register_buffer("feature_scale", torch.ones(in_dim))
        self.reset_parameters()

    @torch.no_grad()
    def set_feature_scaling(self, mean: Tensor, scale: Tensor) -> None:
        """Standardise node features as ``(x - mean) / scale`` inside :meth:`encode`.

        ``mean`` and ``scale`` are [D]; scales that are not positive and finite (constant
        features) become 1. Graph edges are not affected: the builder's cosine weights are computed
        on the raw features.
        """
        mean, scale = mean.reshape(-1).to(self.feature_mean), scale.reshape(-1).to(self.feature_scale)
        if mean.numel() != self.in_dim or scale.numel() != self.in_dim:
            raise ValueError(f"feature scaling needs {self.in_dim} values, got {mean.numel()} "
                             f"and {scale.numel()}")
        usable = torch.isfinite(scale) & (scale > 1e-12)
        self.feature_mean.copy_(torch.nan_to_num(mean))
        self.feature_scale.copy_(torch.where(usable, scale, torch.ones_like(scale)))

    def reset_parameters(self) -> None:
        """Re-initialise the encoder and the discriminator (xavier-uniform W, as in DGI)."""
        self.conv.reset_parameters()
        self.act.reset_parameters()
        nn.init.xavier_uniform_(self.weight)

    def message_edges(self, edge_index: Tensor, edge_weight: Tensor | None,
                      edge_type: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The edges the GCN aggregates over: ``[2, E']``, ``[E']``.

        The builder's edges are already in PyG order (source → target). When ``symmetric``, the
        reverse of each temporal edge is added, with the same weight.
        """
        if self.symmetric:
            if edge_type is None:
                raise ValueError("AnoGraphDGI(symmetric=True) needs edge_type (temporal edges)")
            temporal = edge_type == TEMPORAL
            edge_index = torch.cat([edge_index, edge_index[:, temporal].flip(0)], dim=1)
            if edge_weight is not None:
                edge_weight = torch.cat([edge_weight, edge_weight[temporal]])
        return edge_index, edge_weight

    def encode(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
               edge_type: Tensor | None = None) -> Tensor:
        """Node embeddings ``h`` [N, H] = PReLU(GCN(x)), the encoder E of the paper.

        ``x`` is standardised first with the stored feature scaling (identity unless set).
        """
        x = self.standardize(x)
        return self.act(self.conv(x, *self.message_edges(edge_index, edge_weight, edge_type)))

    def propagation_matrix(self, edge_index: Tensor, edge_weight: Tensor | None,
                           edge_type: Tensor | None, num_nodes: int) -> Tensor:
        """The GCN's normalised adjacency ``Â = D^-1/2 (A + I) D^-1/2`` as sparse CSR [N, N].

        Row i holds what node i aggregates (``Â[i, j]`` = normalised weight of edge j → i), exactly
        as :class:`~torch_geometric.nn.GCNConv` normalises (``gcn_norm``: weight-1 self loops only
        for nodes without one). So ``encode(x) == transform(Â @ standardize(x))`` (see
        :meth:`transform`): the linear map and the propagation commute.
        """
        edge_index, edge_weight = self.message_edges(edge_index, edge_weight, edge_type)
        edge_index, norm = gcn_norm(edge_index, edge_weight, num_nodes, improved=False,
                                    add_self_loops=True, flow="source_to_target",
                                    dtype=torch.float32)
        return csr_matrix(edge_index[1], edge_index[0], norm, num_nodes)

    def standardize(self, x: Tensor) -> Tensor:
        """``(x - mean) / scale`` [N, D], the feature scaling :meth:`encode` applies first."""
        return (x - self.feature_mean) / self.feature_scale

    def transform(self, propagated: Tensor) -> Tensor:
        """Embeddings ``h`` [N, H] = PReLU(``propagated`` Θᵀ + b) from ``Â x̃`` [N, D].

        ``propagated`` = ``Â @ standardize(x)`` (:meth:`propagation_matrix`): the GCN with its
        sparse product done first, on D columns instead of H, and outside autograd (it does not
        depend on the weights). Equal to :meth:`encode` up to float rounding.
        """
        return self.act(F.linear(propagated, self.conv.lin.weight, self.conv.bias))

    def propagated_loss_terms(self, pos: Tensor, neg: Tensor, batch: Tensor,
                              num_graphs: int, workspace: Workspace | None = None) -> Tensor:
        """Sum of the 2N binary cross-entropy terms of Eq. 4 (a 0-dim tensor).

        ``pos`` = ``Â x̃`` [N, D] and ``neg`` = ``Â x̃[perm]`` [N, D] (the corruption, propagated
        on the same graph); ``batch`` [N] the graph of each node in ``0 .. num_graphs - 1``.
        :meth:`loss` is this sum divided by ``2N``. Both sets go through the linear map in one
        product, the discriminator reads ``h · (W s_g)`` (O(N H), not O(N H²)), and the
        backward pass is written out (:class:`_PropagatedDGILoss`), so that the [2N, H]
        activations are touched a few times only. A training loop passes one
        :class:`Workspace` to every step (its buffers are reused; None: fresh ones).
        """
        if self.act.weight.numel() != 1:
            raise ValueError("propagated_loss_terms needs a PReLU with one shared slope")
        workspace = Workspace() if workspace is None else workspace
        both = torch.cat([pos, neg], out=workspace.get("propagated", 2 * pos.size(0), pos))
        return _PropagatedDGILoss.apply(both, self.conv.lin.weight,
                                        self.conv.bias, self.act.weight, self.weight,
                                        batch, num_graphs, workspace)

    @staticmethod
    def readout(h: Tensor, batch: Tensor | None = None) -> Tensor:
        """Summary per graph ``s`` [B, H] = sigmoid(mean of the graph's embeddings) (Eq. 3)."""
        return torch.sigmoid(global_mean_pool(h, batch))

    @staticmethod
    def corrupt(x: Tensor, batch: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Negative features [N, D]: the rows of ``x`` permuted inside each graph of ``batch``.

        Sorting ``batch + u`` with ``u ~ U[0, 1)`` gives a uniformly random order inside each
        graph's contiguous block of nodes, in one vectorised op.
        """
        keys = torch.rand(x.size(0), generator=generator, dtype=torch.float64)
        if batch is not None:
            keys = keys + batch.detach().cpu().to(torch.float64)
        return x[torch.argsort(keys).to(x.device)]

    def logits(self, h: Tensor, summary: Tensor, batch: Tensor | None = None) -> Tensor:
        """Discriminator logits [N]: ``h_iᵀ W s_g(i)`` for node i of graph g(i); D = sigmoid."""
        direction = summary.reshape(-1, self.hidden) @ self.weight.t()  # [B, H]: W s_g
        direction = direction[batch] if batch is not None else direction.expand(h.size(0), -1)
        return (h * direction).sum(dim=-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                edge_type: Tensor | None = None, batch: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Embeddings of the real graph [N, H], of its corruption [N, H], real summaries [B, H]."""
        pos_h = self.encode(x, edge_index, edge_weight, edge_type)
        neg_h = self.encode(self.corrupt(x, batch, generator), edge_index, edge_weight, edge_type)
        return pos_h, neg_h, self.readout(pos_h, batch)

    def loss(self, pos_h: Tensor, neg_h: Tensor, summary: Tensor,
             batch: Tensor | None = None) -> Tensor:
        """Binary cross-entropy of Eq. 4, to minimise: real nodes → 1, corrupted nodes → 0.

        Both sets are scored against the *real* graph's summary, and the sum over the N + M terms
        is divided by N + M. Computed from logits (``softplus``) for numerical stability.
        """
        pos = self.logits(pos_h, summary, batch)
        neg = self.logits(neg_h, summary, batch)
        return (F.softplus(-pos).sum() + F.softplus(neg).sum()) / (pos.numel() + neg.numel())

    def discriminator_score(self, h: Tensor) -> Tensor:
        """Paper score [N] in (0, 1): ``1 - D(h_i, s_train)`` (Eq. 5); higher = more abnormal."""
        if not bool(torch.isfinite(self.train_summary).all()):
            raise RuntimeError("AnoGraphDGI.discriminator_score needs s_train: train the network "
                               "with train_dgi")
        return torch.sigmoid(-self.logits(h, self.train_summary))  # = 1 - sigmoid(logits)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(in_dim={self.in_dim}, hidden={self.hidden}, "
                f"symmetric={self.symmetric})")
