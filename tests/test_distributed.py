"""Data-parallel DGI training with torch.distributed (gloo, 2 CPU processes under torchrun)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stgraph.distributed import Distributed, init_from_env
from _torchrun import torchrun_results

ROOT = Path(__file__).resolve().parents[1]


def test_not_under_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert init_from_env() is None
    assert Distributed.current() is None
    assert Distributed.disabled().active() is None
    with pytest.raises(RuntimeError, match="torchrun"):
        Distributed()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Run tests/_ddp_worker.py in 2 processes with torchrun; the results of rank 0 and 1."""
    return torchrun_results("_ddp_worker.py", tmp_path_factory.mktemp("ddp"))


@pytest.mark.slow
def test_one_step_of_two_processes_equals_one_step_on_the_concatenated_batch(ranks):
    for name, value in ranks[0]["single"].items():
        torch.testing.assert_close(ranks[0]["step"][name], value, msg=name)
        torch.testing.assert_close(ranks[1]["step"][name], value, msg=name)


@pytest.mark.slow
def test_every_process_ends_with_the_same_model_and_scores(ranks):
    first, second = ranks[0]["fit"], ranks[1]["fit"]
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
    assert int(first["count"]) == 4 * 30 * 3  # every video's objects: 4 videos x 30 frames x 3
