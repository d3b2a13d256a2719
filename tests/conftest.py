"""Shared fixtures. Tests that need ../shared/data are marked ``slow`` and skip when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# No network: the same environment the Makefile sets, for direct pytest runs. Tests build tiny
# graphs, for which extra torch threads only add synchronisation cost (tens of ms per scatter op
# on a busy 2-core machine), so they run single-threaded unless STGRAPH_TEST_THREADS says otherwise.
os.environ["OMP_NUM_THREADS"] = os.environ.get("STGRAPH_TEST_THREADS", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
_cache = Path(__file__).resolve().parents[1] / ".cache"
os.environ.setdefault("YOLO_CONFIG_DIR", str(_cache / "ultralytics"))
os.environ.setdefault("MPLCONFIGDIR", str(_cache / "matplotlib"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STGRAPH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test with a clear reason when it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not found at {SHARED_DATA} (set STGRAPH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def cli_fit_calls(monkeypatch) -> list:
    """``(method, params)`` of every ``stgraph.cli.make_model`` call; ``Pipeline.fit`` and
    ``Pipeline.save`` do nothing, so ``stgraph fit`` only shows what it would build."""
    from stgraph import cli

    calls: list = []
    real = cli.make_model
    monkeypatch.setattr(cli, "make_model", lambda method, params:
                        calls.append((method, params)) or real(method, params))
    monkeypatch.setattr("stgraph.pipeline.Pipeline.fit", lambda self, *a, **k: self)
    monkeypatch.setattr("stgraph.pipeline.Pipeline.save", lambda self, out: out)
    return calls
