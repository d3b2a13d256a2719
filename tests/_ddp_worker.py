"""Run by ``torchrun --nproc-per-node 2 tests/_ddp_worker.py OUT_DIR`` (tests/test_distributed.py).

Each process writes ``OUT_DIR/rank<r>.pt`` with:
- ``step``: parameters after one data-parallel DGI step on its half of 8 random graphs, with a
  fixed corruption permutation, and (rank 0) the same step in one process on all 8 graphs;
- ``fit``: an AnoGraph fitted on this process's share of synthetic videos (history, s_train,
  training-score quantiles, scores of a test video), which must be the same on every process.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from stgraph.distributed import Distributed, init_from_env
from stgraph.models import AnoGraph
from stgraph.models.dgi_training import PackedGraphs, corruption_permutation, dgi_step
from test_dgi_scale import fresh_model, random_graphs
from test_models_anograph import make_video


def one_step(world: Distributed | None, graphs, perm) -> dict[str, torch.Tensor]:
    model = fresh_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    packed = PackedGraphs(model, graphs, torch.device("cpu"))
    dgi_step(model, packed, torch.arange(len(graphs)), perm, optimizer, world)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def main(out: Path) -> None:
    world = init_from_env("gloo")
    torch.set_num_threads(1)
    rank, size = world.rank, world.world_size
    graphs = random_graphs(count=8, seed=5)
    sizes = [g.num_nodes for g in graphs]
    whole = PackedGraphs(fresh_model(), graphs, torch.device("cpu"))
    perm = corruption_permutation(whole.batch_of(torch.arange(8)), torch.Generator().manual_seed(2))
    share = 8 // size
    lo, hi = sum(sizes[:rank * share]), sum(sizes[:(rank + 1) * share])
    result = {"step": one_step(world, graphs[rank * share:(rank + 1) * share],
                               perm[lo:hi] - lo)}
    if rank == 0:
        result["single"] = one_step(None, graphs, perm)
    projection = np.random.default_rng(100).normal(0, 1, (16, 5))
    rng = np.random.default_rng(0)
    videos = [make_video(rng, projection) for _ in range(4)]
    test = make_video(np.random.default_rng(1), projection, n_frames=16, n_anomalous=1)
    model = AnoGraph(hidden=8, epochs=3, train_window=5, batch_size=2, progress=False)
    model.fit(videos[rank::size])
    result["fit"] = {"history": torch.tensor(model.history_),
                     "s_train": model.s_train_.clone(),
                     "quantiles": torch.from_numpy(model.train_scores_.values),
                     "count": torch.tensor(model.train_scores_.count),
                     "scores": torch.from_numpy(model.decision_function(test))}
    torch.save(result, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
