"""Training loop of Ano-Graph's network (:class:`~stgraph.nn.dgi.AnoGraphDGI`), as plain functions.

:func:`train_dgi` trains on a list of graphs (mini-batches of windows, Adam, early stopping on
the epoch's training loss) and ends by storing ``s_train`` (:func:`training_summary`). The network
never sees an optimizer, a path or a data loader.

The loop works on :class:`PackedGraphs`: all training graphs concatenated once, their
normalised adjacency ``Â`` as one block-diagonal CSR matrix and ``Â x̃`` precomputed (the GCN's
linear map and propagation commute, so the sparse product runs once on the D input columns and
needs no gradient). A step gathers its graphs by index, propagates only the corrupted features,
and computes the loss of Eq. 4 with :meth:`AnoGraphDGI.propagated_loss_terms`. It draws the same
random numbers as a PyG ``DataLoader`` loop over ``model(...)`` / ``model.loss(...)`` and gives
the same losses to float rounding (tests/test_dgi_scale.py); on 100,000 nodes / 1,000,000 edges
an epoch is 14x less CPU time (benchmarks/scale.py).
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import torch
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from stgraph.distributed import Distributed
from stgraph.models.base import EarlyStopping, check_int, make_generator, resolve_device
from stgraph.nn.dgi import AnoGraphDGI, Workspace, csr_tensor

__all__ = ["train_dgi", "training_summary", "graph_inputs", "check_graph_features",
           "PackedGraphs", "corruption_permutation", "dgi_step"]

logger = logging.getLogger(__name__)


def graph_inputs(data: Data) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """``(x, edge_index, edge_weight, edge_type)`` of a graph (weight and type may be absent)."""
    return (data.x, data.edge_index, getattr(data, "edge_weight", None),
            getattr(data, "edge_type", None))


def check_graph_features(data: Data, width: int, where: str) -> None:
    """ValueError unless ``data.x`` is a finite float matrix [N, width]."""
    x = getattr(data, "x", None)
    if x is None or x.dim() != 2 or x.size(1) != width:
        got = None if x is None else tuple(x.shape)
        raise ValueError(f"{where}: node features x have shape {got}; expected [N, {width}]")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: node features x contain NaN or inf")


class PackedGraphs:
    """Every training graph, concatenated once, with what each DGI step needs precomputed.

    The graphs are disjoint, so their normalised adjacency ``Â`` (:meth:`AnoGraphDGI.\
propagation_matrix`) is block diagonal: graph g owns the node rows ``node_ptr[g]:node_ptr[g+1]``
    and the CSR entries ``edge_ptr[g]:edge_ptr[g+1]``. A mini-batch of graphs is then gathered
    with a few vectorised index operations (:meth:`batch`), with no Python work per graph.

    Attributes (N nodes, E' normalised edges, G graphs, D features):
        x          float32 [N, D]   standardised features ``x̃`` (the model's feature scaling)
        propagated float32 [N, D]   ``Â x̃``: the real graphs' GCN input, computed once
        crow, col, values           the CSR of ``Â`` ([N + 1], [E'], [E'])
        node_ptr, edge_ptr int64 [G + 1]
    """

    def __init__(self, model: AnoGraphDGI, graphs: Sequence[Data], device: torch.device,
                 chunk_nodes: int = 1 << 16) -> None:
        sizes = torch.tensor([graph.num_nodes for graph in graphs], dtype=torch.int64)
        self.node_ptr = torch.zeros(len(graphs) + 1, dtype=torch.int64)
        torch.cumsum(sizes, 0, out=self.node_ptr[1:])
        num_nodes = int(self.node_ptr[-1])
        offsets = self.node_ptr[:-1].tolist()
        x = torch.cat([graph.x for graph in graphs]).to(device, torch.float32)
        edge_index = torch.cat([graph.edge_index + offset
                                for graph, offset in zip(graphs, offsets)], dim=1).to(device)
        weights = [getattr(graph, "edge_weight", None) for graph in graphs]
        types = [getattr(graph, "edge_type", None) for graph in graphs]
        edge_weight = (None if all(w is None for w in weights) else torch.cat(
            [torch.ones(g.edge_index.size(1)) if w is None else w
             for g, w in zip(graphs, weights)]).to(device, torch.float32))
        edge_type = (None if any(t is None for t in types)
                     else torch.cat(types).to(device))
        self.device, self.num_nodes, self.num_graphs = device, num_nodes, len(graphs)
        with torch.no_grad():
            adj = model.to(device).propagation_matrix(edge_index, edge_weight, edge_type,
                                                      num_nodes)
            self.x = model.standardize(x)
            self.crow, self.col, self.values = adj.crow_indices(), adj.col_indices(), adj.values()
            self.propagated = torch.cat([self._rows(lo, min(num_nodes, lo + chunk_nodes))
                                         for lo in range(0, num_nodes, chunk_nodes)])
        self.edge_ptr = self.crow[self.node_ptr.to(device)].cpu()
        self.row_counts = self.crow[1:] - self.crow[:-1]

    def _rows(self, lo: int, hi: int) -> Tensor:
        """``(Â x̃)[lo:hi]`` [hi - lo, D]: a block of rows of the sparse product."""
        first, last = int(self.crow[lo]), int(self.crow[hi])
        block = csr_tensor(self.crow[lo:hi + 1] - first, self.col[first:last],
                           self.values[first:last], (hi - lo, self.num_nodes))
        return block @ self.x

    def embeddings_sum(self, model: AnoGraphDGI, chunk_nodes: int = 1 << 16) -> Tensor:
        """Sum over every node of its embedding ``h`` [H] (float64), in chunks of nodes."""
        total = torch.zeros(model.hidden, dtype=torch.float64, device=self.device)
        with torch.no_grad():
            for lo in range(0, self.num_nodes, chunk_nodes):
                h = model.transform(self.propagated[lo:lo + chunk_nodes])
                total += h.sum(dim=0, dtype=torch.float64)
        return total

    def batch_of(self, ids: Tensor) -> Tensor:
        """Graph position in ``ids`` of each node of the mini-batch ``ids`` [N_b] (on CPU)."""
        ids = ids.to(torch.int64).cpu()
        return torch.repeat_interleave(torch.arange(len(ids)),
                                       self.node_ptr[ids + 1] - self.node_ptr[ids])

    def batch(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Graphs ``ids`` [B] as one mini-batch: ``(nodes [Nb], Â_b [Nb, Nb] CSR, batch [Nb])``.

        ``nodes`` are the rows of :attr:`x` / :attr:`propagated` in batch order, ``batch`` the
        position in ``ids`` of each node's graph (as a PyG batch of those graphs has them).
        """
        ids = ids.to(torch.int64).cpu()
        starts, counts = self.node_ptr[ids], self.node_ptr[ids + 1] - self.node_ptr[ids]
        e_starts, e_counts = self.edge_ptr[ids], self.edge_ptr[ids + 1] - self.edge_ptr[ids]
        n, e = int(counts.sum()), int(e_counts.sum())
        shift = starts - (torch.cumsum(counts, 0) - counts)   # old row - new row, per graph
        e_shift = e_starts - (torch.cumsum(e_counts, 0) - e_counts)
        dev = self.device
        nodes = torch.arange(n, device=dev) + torch.repeat_interleave(shift, counts).to(dev)
        entries = torch.arange(e, device=dev) + torch.repeat_interleave(e_shift, e_counts).to(dev)
        col = self.col[entries] - torch.repeat_interleave(shift, e_counts).to(dev)
        crow = torch.zeros(n + 1, dtype=torch.int64, device=dev)
        torch.cumsum(self.row_counts[nodes], 0, out=crow[1:])
        adj = csr_tensor(crow, col, self.values[entries], (n, n))
        batch = torch.repeat_interleave(torch.arange(len(ids)), counts).to(dev)
        return nodes, adj, batch


def corruption_permutation(batch: Tensor, generator: torch.Generator) -> Tensor:
    """Row permutation [N] that shuffles nodes inside each graph of ``batch`` (on CPU).

    The same draws as :meth:`AnoGraphDGI.corrupt`: sort ``batch + u`` with ``u ~ U[0, 1)``.
    """
    keys = torch.rand(batch.numel(), generator=generator, dtype=torch.float64)
    return torch.argsort(keys + batch.detach().cpu().to(torch.float64))


def dgi_step(model: AnoGraphDGI, packed: PackedGraphs, ids: Tensor | None, perm: Tensor | None,
             optimizer: torch.optim.Optimizer, world: Distributed | None = None,
             workspace: Workspace | None = None) -> tuple[Tensor, int]:
    """One DGI step on the graphs ``ids`` [B] of ``packed``, corrupted by the row permutation
    ``perm`` [N_b] (:func:`corruption_permutation`); returns (sum of the loss terms, N_b).

    Under ``torch.distributed`` (``world``) the loss is every term over the *global* count and
    the gradients are summed over processes, so one step of several processes equals one step on
    their concatenated batches. ``ids=None``: this process has no batch left but still joins.
    """
    optimizer.zero_grad()
    terms, n = torch.zeros((), dtype=torch.float64, device=packed.device), 0
    if ids is not None:
        nodes, adj, batch = packed.batch(ids)
        negative = adj @ packed.x[nodes][perm.to(packed.device)]
        loss_terms = model.propagated_loss_terms(packed.propagated[nodes], negative, batch,
                                                 len(ids), workspace)
        n = nodes.numel()
    global_n = n if world is None else world.sum_int(n)
    if n:
        (loss_terms / (2 * global_n)).backward()
        terms = loss_terms.detach().to(torch.float64)
    if world is not None:
        world.sum_gradients(model)
    optimizer.step()
    return terms, n


def _train_epoch(model: AnoGraphDGI, packed: PackedGraphs, loader: DataLoader,
                 optimizer: torch.optim.Optimizer, generator: torch.Generator,
                 world: Distributed | None = None) -> float:
    """One pass over ``loader`` (batches of graph ids); returns the mean loss per node.

    Each step (:func:`dgi_step`): gather the batch (:meth:`PackedGraphs.batch`), draw the
    corruption, propagate the corrupted features on the batch's ``Â`` (D columns, no autograd),
    then one dense product for real and corrupted nodes together. Under ``torch.distributed``
    (``world``) every process runs the same number of steps (the most any process has).
    """
    model.train()
    steps = len(loader)
    if world is not None:
        steps = world.max_int(steps)
    batches = iter(loader)
    workspace = Workspace()
    total = torch.zeros((), dtype=torch.float64, device=packed.device)
    count = 0
    for _ in range(steps):
        ids = next(batches, None)
        perm = None
        if ids is not None:
            perm = corruption_permutation(packed.batch_of(ids), generator)
        terms, n = dgi_step(model, packed, ids, perm, optimizer, world, workspace)
        total += terms
        count += n
    for _ in batches:  # end the sampler as a for loop would (it may draw from the generator)
        raise RuntimeError("more batches than steps")  # pragma: no cover
    if world is not None:
        return world.mean_loss(float(total), count)
    return float(total) / (2 * count)


@torch.no_grad()
def training_summary(model: AnoGraphDGI, graphs: "Sequence[Data] | PackedGraphs",
                     batch_size: int = 64, device: str | torch.device = "cpu",
                     world: Distributed | None = None) -> Tensor:
    """``s_train`` [H] = sigmoid(mean embedding over every node of ``graphs``): Eq. 3 on all.

    Under ``torch.distributed`` (``world``), the sum and the count are all-reduced, so every
    process gets the summary of all processes' graphs. ``batch_size`` is kept for compatibility:
    the embeddings are summed in chunks of nodes.
    """
    device = resolve_device(device)
    model.to(device).eval()
    packed = graphs if isinstance(graphs, PackedGraphs) else PackedGraphs(
        model, [g for g in graphs if g.num_nodes > 0], device)
    total, count = packed.embeddings_sum(model), packed.num_nodes
    if world is not None:
        total, count = world.sum_tensor(total), world.sum_int(count)
    if count == 0:
        raise ValueError("training_summary needs graphs with at least one node")
    return torch.sigmoid(total / count).to(torch.float32)


def train_dgi(model: AnoGraphDGI, graphs: Sequence[Data], epochs: int = 100, lr: float = 1e-3,
              batch_size: int = 64, patience: int = 10, seed: int = 0,
              device: str | torch.device = "cpu", progress: bool = True,
              log: Callable[[int, float], None] | None = None,
              distributed: Distributed | None = None) -> list[float]:
    """Train ``model`` with the DGI objective on ``graphs``; return the loss of each epoch.

    Each epoch shuffles the graphs (e.g. windows of consecutive frames) into mini-batches of
    ``batch_size`` graphs, and Adam minimises Eq. 4. Training stops after ``epochs`` epochs, or
    when the epoch's mean training loss has not improved for ``patience`` epochs; the best weights
    are then restored. Last, ``model.train_summary`` (``s_train``) is set by
    :func:`training_summary` over all graphs. The paper trains on a GPU for up to 10000 epochs with
    patience 200. The defaults here (100 / 10) are sized for a CPU, and each epoch sees every
    window.

    Args:
        model: the network. It is moved to ``device`` and left in eval mode.
        graphs: training graphs with ``x`` [N, D], ``edge_index``, ``edge_weight``, and
            ``edge_type`` when the model is symmetric. Graphs without nodes are skipped.
        epochs: maximum number of epochs.
        lr: Adam learning rate (paper: 1e-3).
        batch_size: graphs per mini-batch (paper: 64).
        patience: epochs without improvement before stopping (paper: 200).
        seed: seeds the shuffling and the corruption (the caller initialises the weights).
        device: where to train ("cpu", "cuda", ...).
        progress: show a tqdm bar over epochs.
        log: called as ``log(epoch, loss)`` after each epoch (also logged at DEBUG level).
        distributed: a :class:`stgraph.distributed.Distributed` for data-parallel training;
            None (default) uses one when ``torch.distributed`` is initialised (e.g. under
            ``torchrun``). Each process passes its own graphs; the processes run the same number
            of steps, sum gradients (one step = one step on the concatenated batches), all-reduce
            the epoch loss (so early stopping agrees) and ``s_train``.
            ``Distributed.disabled()`` trains each process on its own.

    Returns:
        ``history``: the mean training loss per node of every epoch run.

    Raises:
        ValueError: bad settings, no graphs, no nodes, features of the wrong width or with NaNs.
        FloatingPointError: the loss became NaN or inf.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        check_int(name, value, 1)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if len(graphs) == 0:
        raise ValueError("train_dgi needs at least one graph")
    for k, graph in enumerate(graphs):
        check_graph_features(graph, model.in_dim, f"training graph {k}")
    graphs = [graph for graph in graphs if graph.num_nodes > 0]
    if not graphs:
        raise ValueError("all training graphs are empty (no objects): nothing to train on")
    device = resolve_device(device)
    world = Distributed.current() if distributed is None else distributed.active()
    # Under torch.distributed each process shuffles and corrupts with its own stream (seed+rank).
    generator = make_generator(seed + (world.rank if world is not None else 0))
    model.to(device)
    if world is not None:
        world.broadcast_parameters(model)
    packed = PackedGraphs(model, graphs, device)
    # The same sampler (and random draws) as a PyG DataLoader over the graphs, over their ids.
    loader = DataLoader(range(len(graphs)), batch_size=batch_size, shuffle=True,
                        generator=generator, collate_fn=torch.as_tensor)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    stopper = EarlyStopping(patience)
    history: list[float] = []
    with tqdm(range(epochs), desc="train DGI", unit="epoch", disable=not progress) as bar:
        for epoch in bar:
            loss = _train_epoch(model, packed, loader, optimizer, generator, world)
            if not math.isfinite(loss):
                raise FloatingPointError(f"DGI training loss became {loss} at epoch {epoch}; "
                                         "try a lower lr")
            history.append(loss)
            bar.set_postfix(loss=f"{loss:.4f}")
            logger.debug("DGI epoch %d: loss %.6f", epoch, loss)
            if log is not None:
                log(epoch, loss)
            if stopper.step(loss, model):
                break
    stopper.restore(model)
    model.train_summary.copy_(training_summary(model, packed, batch_size, device, world))
    model.eval()
    return history
