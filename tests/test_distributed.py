"""Data-parallel DGI training with torch.distributed (gloo, 2 CPU processes under torchrun)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stgraph.distributed import Distributed, init_from_env

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
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                          os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", "0", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
               str(ROOT / "tests" / "_ddp_worker.py"), str(out)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


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
