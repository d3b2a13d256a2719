"""DGI at scale: one training epoch on 100,000 nodes / 1,000,000 edges, before and after.

Synthetic windows (issue 15): ``--windows`` graphs of ``--nodes`` nodes and ``--edges`` random
weighted edges each (default 100 x 1,000 nodes x 10,000 edges = 100,000 nodes, 1,000,000
edges), 64-d features, hidden 256, mini-batches of 64 windows (AnoGraph's default). Times:

- ``reference``: the loop before the sparse path (PyG ``DataLoader`` batches, ``GCNConv``
  scatter, ``h W s`` logits), one epoch;
- ``sparse``: :func:`stgraph.models.dgi_training.train_dgi`'s epoch (CSR product on the input
  width, corruption and real nodes in one dense product, batches gathered by index), with the
  one-time packing (``PackedGraphs``: normalisation + ``Â x``) timed apart.

Both start from the same weights and seed; the first epoch's losses are compared. Results are
merged into ``benchmarks/results/scale.json`` under ``dgi_epoch.threads_<n>``::

    OMP_NUM_THREADS=1 python benchmarks/scale.py --threads 1
    OMP_NUM_THREADS=2 python benchmarks/scale.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import stgraph._pyg  # noqa: F401
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from stgraph.models.base import make_generator
from stgraph.models.dgi_training import PackedGraphs, _train_epoch, graph_inputs
from stgraph.nn.dgi import AnoGraphDGI

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"


def synthetic_windows(windows: int, nodes: int, edges: int, width: int, seed: int = 0
                      ) -> list[Data]:
    """``windows`` graphs: features N(0, 1) [nodes, width], ``edges`` random weighted edges."""
    g = torch.Generator().manual_seed(seed)
    return [Data(x=torch.randn(nodes, width, generator=g),
                 edge_index=torch.randint(0, nodes, (2, edges), generator=g),
                 edge_weight=torch.rand(edges, generator=g) + 0.01,
                 edge_type=torch.randint(0, 2, (edges,), generator=g))
            for _ in range(windows)]


def network(width: int, hidden: int) -> AnoGraphDGI:
    torch.manual_seed(0)
    return AnoGraphDGI(width, hidden)


def reference_epoch(model: AnoGraphDGI, graphs: list[Data], batch_size: int, seed: int) -> float:
    """One epoch of the training loop before the sparse path (stgraph 0.2's ``_train_epoch``)."""
    generator = make_generator(seed)
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        pos_h, neg_h, summary = model(*graph_inputs(batch), batch=batch.batch, generator=generator)
        reference_logits = lambda h: ((h @ model.weight) * summary[batch.batch]).sum(-1)  # noqa: E731
        pos, neg = reference_logits(pos_h), reference_logits(neg_h)
        loss = (torch.nn.functional.softplus(-pos).sum() + torch.nn.functional.softplus(neg).sum()
                ) / (pos.numel() + neg.numel())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.num_nodes
        count += batch.num_nodes
    return total / count


def sparse_epoch(model: AnoGraphDGI, graphs: list[Data], batch_size: int, seed: int
                 ) -> tuple[float, float, float, float]:
    """(pack seconds, epoch seconds, epoch CPU seconds of this process, loss) of train_dgi's
    path."""
    generator = make_generator(seed)
    start = time.perf_counter()
    packed = PackedGraphs(model, graphs, torch.device("cpu"))
    packed_s = time.perf_counter() - start
    loader = torch.utils.data.DataLoader(range(len(graphs)), batch_size=batch_size, shuffle=True,
                                         generator=generator, collate_fn=torch.as_tensor)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start, cpu = time.perf_counter(), time.process_time()
    loss = _train_epoch(model, packed, loader, optimizer, generator)
    return packed_s, time.perf_counter() - start, time.process_time() - cpu, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graphs = synthetic_windows(args.windows, args.nodes, args.edges, args.width)
    load_at_start = os.getloadavg()
    reference, reference_cpu = [], []
    for _ in range(args.reference_repeats):
        model = network(args.width, args.hidden)
        start, cpu = time.perf_counter(), time.process_time()
        ref_loss = reference_epoch(model, graphs, args.batch_size, seed=0)
        reference.append(time.perf_counter() - start)
        reference_cpu.append(time.process_time() - cpu)
    sparse, sparse_cpu, packs = [], [], []
    for _ in range(args.repeats):
        model = network(args.width, args.hidden)
        pack_s, epoch_s, epoch_cpu, loss = sparse_epoch(model, graphs, args.batch_size, seed=0)
        sparse.append(epoch_s)
        sparse_cpu.append(epoch_cpu)
        packs.append(pack_s)
    result = {
        "command": f"OMP_NUM_THREADS={args.threads} python benchmarks/scale.py "
                   f"--threads {args.threads}",
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs "
                   "(see the load averages)",
        "threads": args.threads,
        "graph": {"windows": args.windows, "nodes": args.windows * args.nodes,
                  "edges": args.windows * args.edges, "features": args.width,
                  "hidden": args.hidden, "batch_size_windows": args.batch_size},
        "reference_epoch_s": min(reference), "reference_epoch_all_s": reference,
        "sparse_epoch_s": min(sparse), "sparse_epoch_all_s": sparse,
        "sparse_pack_once_s": min(packs),
        # CPU seconds of this process (all its threads): with 1 thread, the wall time the epoch
        # would take on an idle core; the wall times above include waiting for a shared core.
        "reference_epoch_cpu_s": min(reference_cpu), "sparse_epoch_cpu_s": min(sparse_cpu),
        "load_average_at_start": load_at_start,
        "speedup": min(reference) / min(sparse),
        "windows_per_s": args.windows / min(sparse),
        "reference_windows_per_s": args.windows / min(reference),
        "loss_reference": ref_loss, "loss_sparse": loss,
        "loss_abs_diff": abs(ref_loss - loss),
        "measured_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_average_at_end": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    existing.setdefault("dgi_epoch", {})[f"threads_{args.threads}"] = result
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")


if __name__ == "__main__":
    main()
