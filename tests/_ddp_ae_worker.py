"""Run by ``torchrun --nproc-per-node 2 tests/_ddp_ae_worker.py OUT_DIR``
(tests/test_distributed_autoencoders.py).

Each process fits STM-AE and the dissociation autoencoders on its share of the 3 synthetic
training videos of tests/contract_data.py (rank 0 two videos, rank 1 one: unequal shares, so the
equal-step padding runs) and writes ``OUT_DIR/rank<r>.pt`` with, per model, the network's
``state_dict``, the epoch losses, the training-score quantiles and count, the fitted statistics
(flow scale, lambda_r, alpha, frames read) and the frame scores of the test video.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from contract_data import contract_inputs
from stgraph.distributed import init_from_env
from stgraph.models.dissociation import DissociationAE
from stgraph.models.stm_ae import STMAE

MODELS = {"stm_ae": (STMAE, {"pretrain_epochs": 3, "epochs": 4}),
          "dissociation": (DissociationAE, {"pretrain_epochs": 3, "epochs": 2})}


def main(out: Path) -> None:
    world = init_from_env("gloo")
    torch.set_num_threads(1)
    train, _, test = contract_inputs("frames", 0)
    result = {}
    for name, (cls, params) in MODELS.items():
        model = cls(**{**cls.contract_params(), **params}).fit(train[world.rank::world.world_size])
        result[name] = {
            "state": {k: v.detach().clone() for k, v in model.net_.state_dict().items()},
            "losses": torch.tensor(model.train_losses_, dtype=torch.float64),
            "quantiles": torch.from_numpy(model.train_scores_.values),
            "count": torch.tensor(model.train_scores_.count),
            "stats": torch.tensor([model.flow_scale_, model.n_train_frames_,
                                   *model._extra_state().values()], dtype=torch.float64),
            "scores": torch.from_numpy(model.decision_function(test))}
    torch.save(result, out / f"rank{world.rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
