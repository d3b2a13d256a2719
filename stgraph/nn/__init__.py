"""Reusable neural-network layers and paper networks (pure ``nn.Module`` s, shapes in docstrings).

    AnoGraphDGI   Ano-Graph's Deep Graph Infomax network (:mod:`stgraph.nn.dgi`)
"""
from stgraph.nn.dgi import AnoGraphDGI

__all__ = ["AnoGraphDGI"]
