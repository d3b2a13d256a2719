"""Data-parallel training of the pixel autoencoders (STM-AE, dissociation) with torch.distributed
(gloo, 2 CPU processes under torchrun; tests/_ddp_ae_worker.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stgraph.models.dissociation import DissociationAE
from stgraph.models.stm_ae import STMAE
from _torchrun import torchrun_results

ROOT = Path(__file__).resolve().parents[1]


def test_the_pixel_autoencoders_train_data_parallel():
    assert STMAE.data_parallel and DissociationAE.data_parallel


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Run tests/_ddp_ae_worker.py in 2 processes with torchrun; the results of rank 0 and 1."""
    return torchrun_results("_ddp_ae_worker.py", tmp_path_factory.mktemp("ddp_ae"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stm_ae", "dissociation"])
def test_every_process_ends_with_the_same_network_and_scores(ranks, name):
    first, second = ranks[0][name], ranks[1][name]
    assert first["state"].keys() == second["state"].keys()
    for key, value in first["state"].items():
        torch.testing.assert_close(value, second["state"][key], rtol=0, atol=0, msg=key)
    for key in ("losses", "quantiles", "count", "stats", "scores"):
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
    # every video's clips count: 3 videos x (12 frames - 4 frames of history)
    assert int(first["count"]) == 3 * 8
    assert int(first["stats"][1]) == 3 * 12


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stm_ae", "dissociation"])
def test_the_training_loss_decreases(ranks, name):
    losses = ranks[0][name]["losses"]
    assert losses[2] < losses[0]  # pre-training (3 epochs)
    if name == "stm_ae":
        assert losses[-1] < losses[3]  # prediction (4 epochs)
