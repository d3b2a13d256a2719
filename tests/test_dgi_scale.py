"""The sparse DGI training path equals the PyG (GCNConv + scatter) path it replaced."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import stgraph._pyg  # noqa: F401
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from stgraph.models.base import EarlyStopping, make_generator
from stgraph.models.dgi_training import (
    PackedGraphs, corruption_permutation, graph_inputs, train_dgi, training_summary,
)
from stgraph.nn.dgi import AnoGraphDGI


def random_graphs(count: int = 7, width: int = 6, seed: int = 0, empty_weight: bool = False
                  ) -> list[Data]:
    """Random windows with 3..12 nodes, random weighted edges, some self loops, edge types."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(count):
        n = int(torch.randint(3, 13, (1,), generator=g))
        e = int(torch.randint(n, 4 * n, (1,), generator=g))
        edge_index = torch.randint(0, n, (2, e), generator=g)
        data = Data(x=torch.randn(n, width, generator=g) * 3 + 1, edge_index=edge_index,
                    edge_type=torch.randint(0, 2, (e,), generator=g))
        if not empty_weight:
            data.edge_weight = torch.rand(e, generator=g) + 0.05
        graphs.append(data)
    return graphs


def reference_train_dgi(model: AnoGraphDGI, graphs: list[Data], epochs: int, lr: float,
                        batch_size: int, patience: int, seed: int) -> list[float]:
    """The training loop before the sparse path (stgraph 0.2): PyG batches, GCNConv, scatter."""
    generator = make_generator(seed)
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    stopper = EarlyStopping(patience)
    history = []
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            pos_h, neg_h, summary = model(*graph_inputs(batch), batch=batch.batch,
                                          generator=generator)
            loss = model.loss(pos_h, neg_h, summary, batch.batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.num_nodes
            count += batch.num_nodes
        history.append(total / count)
        if stopper.step(history[-1], model):
            break
    stopper.restore(model)
    with torch.no_grad():
        h = torch.cat([model.encode(*graph_inputs(b)) for b in DataLoader(graphs, batch_size=64)])
    model.train_summary.copy_(torch.sigmoid(h.double().mean(0)).float())
    return history


def fresh_model(width: int = 6, hidden: int = 16, symmetric: bool = False) -> AnoGraphDGI:
    torch.manual_seed(0)
    model = AnoGraphDGI(width, hidden, symmetric)
    model.set_feature_scaling(torch.full((width,), 1.0), torch.full((width,), 3.0))
    return model


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("empty_weight", [False, True])
def test_propagated_encoder_equals_gcnconv(symmetric: bool, empty_weight: bool):
    model = fresh_model(symmetric=symmetric)
    graphs = random_graphs(empty_weight=empty_weight)
    packed = PackedGraphs(model, graphs, torch.device("cpu"))
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    torch.testing.assert_close(model.transform(packed.propagated), model.encode(*graph_inputs(batch)))
    # a mini-batch of graphs gathered from the packed store = the PyG batch of those graphs
    ids = torch.tensor([5, 0, 3])
    nodes, adj, local = packed.batch(ids)
    sub = next(iter(DataLoader([graphs[i] for i in ids], batch_size=3)))
    torch.testing.assert_close(local, sub.batch)
    torch.testing.assert_close(model.transform(adj @ packed.x[nodes]),
                               model.encode(*graph_inputs(sub)))


def test_loss_and_gradients_equal_the_reference():
    model = fresh_model()
    graphs = random_graphs()
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    packed = PackedGraphs(model, graphs, torch.device("cpu"))
    nodes, adj, local = packed.batch(torch.arange(len(graphs)))
    perm = corruption_permutation(local, torch.Generator().manual_seed(1))
    reference = copy.deepcopy(model)
    pos_h = reference.encode(*graph_inputs(batch))
    neg_h = reference.encode(batch.x[perm], *graph_inputs(batch)[1:])
    old = reference.loss(pos_h, neg_h, reference.readout(pos_h, batch.batch), batch.batch)
    old.backward()
    new = model.propagated_loss_terms(packed.propagated[nodes], adj @ packed.x[nodes][perm],
                                      local, len(graphs)) / (2 * nodes.numel())
    new.backward()
    torch.testing.assert_close(new, old)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


@pytest.mark.parametrize("batch_size", [2, 3, 7])
def test_train_dgi_equals_the_reference_loop(batch_size: int):
    graphs = random_graphs(count=7)
    old_model, new_model = fresh_model(), fresh_model()
    old = reference_train_dgi(old_model, graphs, epochs=4, lr=0.01, batch_size=batch_size,
                              patience=10, seed=3)
    new = train_dgi(new_model, graphs, epochs=4, lr=0.01, batch_size=batch_size, patience=10,
                    seed=3, progress=False)
    assert len(new) == len(old)
    assert new == pytest.approx(old, rel=1e-5)
    for (name, p), q in zip(new_model.state_dict().items(), old_model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    g = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    torch.testing.assert_close(new_model.encode(*graph_inputs(g)),
                               old_model.encode(*graph_inputs(g)), rtol=1e-4, atol=1e-5)


def test_training_summary_of_graphs_equals_the_mean_embedding():
    model = fresh_model()
    graphs = random_graphs()
    g = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    with torch.no_grad():
        expected = torch.sigmoid(model.encode(*graph_inputs(g)).double().mean(0)).float()
    torch.testing.assert_close(training_summary(model, graphs), expected)
    assert math.isfinite(float(expected.sum()))
