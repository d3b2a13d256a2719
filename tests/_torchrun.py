"""Run a test worker script in 2 processes with torchrun and collect each rank's results."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def torchrun_results(worker: str, out: Path, processes: int = 2) -> list[dict]:
    """Run ``tests/<worker>`` under ``torch.distributed.run`` with ``processes`` CPU processes;
    each rank writes ``out/rank<r>.pt``, returned in rank order (loaded with weights_only)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                          os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
               "--master-port", "0", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
               str(ROOT / "tests" / worker), str(out)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(processes)]
