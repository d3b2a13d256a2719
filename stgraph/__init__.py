"""stgraph: graph-centric video anomaly analytics.

Data flow (see "Layout and data flow" in the README)::

    FrameSource -> Detector -> NodeFeatures -> GraphBuilder -> Model -> ScoreTable -> metrics / viz

Sub-packages are imported on first use so that ``import stgraph`` stays fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"io", "graphs", "features", "nn", "models", "datasets", "scores", "metrics",
               "region_metrics", "report", "viz", "overlay", "pipeline", "stream", "alarms",
               "explain", "watch", "baselines", "cache", "fileio", "cli"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"stgraph.{name}")
    raise AttributeError(f"module 'stgraph' has no attribute {name!r}")
