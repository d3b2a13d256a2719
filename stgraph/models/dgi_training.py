"""Training loop of Ano-Graph's network (:class:`~stgraph.nn.dgi.AnoGraphDGI`), as plain functions.

:func:`train_dgi` trains on a list of graphs (mini-batches of windows, Adam, early stopping on
the epoch's training loss) and ends by storing ``s_train`` (:func:`training_summary`). The network
never sees an optimizer, a path or a data loader.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import torch
from torch import Tensor
import stgraph._pyg  # noqa: F401  (imports torch_geometric without torch's jit.script notice)
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from stgraph.models.base import EarlyStopping, check_int, make_generator, resolve_device
from stgraph.nn.dgi import AnoGraphDGI

__all__ = ["train_dgi", "training_summary", "graph_inputs", "check_graph_features"]

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


def _train_epoch(model: AnoGraphDGI, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 generator: torch.Generator, device: torch.device) -> float:
    """One pass over ``loader``; returns the mean loss per node (Eq. 4 over the whole epoch)."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        pos_h, neg_h, summary = model(*graph_inputs(batch), batch=batch.batch, generator=generator)
        loss = model.loss(pos_h, neg_h, summary, batch.batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.num_nodes
        count += batch.num_nodes
    return total / count


@torch.no_grad()
def training_summary(model: AnoGraphDGI, graphs: Sequence[Data], batch_size: int = 64,
                     device: str | torch.device = "cpu") -> Tensor:
    """``s_train`` [H] = sigmoid(mean embedding over every node of ``graphs``): Eq. 3 on all.

    Streams the graphs in mini-batches and sums embeddings, so memory stays that of one batch.
    """
    device = resolve_device(device)
    model.to(device).eval()
    total = torch.zeros(model.hidden, dtype=torch.float64, device=device)
    count = 0
    for batch in DataLoader(list(graphs), batch_size=batch_size):
        batch = batch.to(device)
        total += model.encode(*graph_inputs(batch)).sum(dim=0, dtype=torch.float64)
        count += batch.num_nodes
    if count == 0:
        raise ValueError("training_summary needs graphs with at least one node")
    return torch.sigmoid(total / count).to(torch.float32)


def train_dgi(model: AnoGraphDGI, graphs: Sequence[Data], epochs: int = 100, lr: float = 1e-3,
              batch_size: int = 64, patience: int = 10, seed: int = 0,
              device: str | torch.device = "cpu", progress: bool = True,
              log: Callable[[int, float], None] | None = None) -> list[float]:
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
    generator = make_generator(seed)
    model.to(device)
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    stopper = EarlyStopping(patience)
    history: list[float] = []
    with tqdm(range(epochs), desc="train DGI", unit="epoch", disable=not progress) as bar:
        for epoch in bar:
            loss = _train_epoch(model, loader, optimizer, generator, device)
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
    model.train_summary.copy_(training_summary(model, graphs, batch_size, device))
    model.eval()
    return history
