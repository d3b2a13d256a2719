"""Graph anomaly models: one module per paper, each a pure ``nn.Module``, a plain training
function and a scikit-learn-style estimator (``fit(videos) -> self``, ``score(...) -> ScoreTable``,
``save(dir)`` / ``load(dir)``).

    AnoGraph        Ano-Graph (Deep Graph Infomax on the object spatio-temporal graph)
    AnoGraphDGI     its network;  train_dgi  its training loop

Shared estimator plumbing (fitted checks, seeding, devices, early stopping, saved model
directories) lives in :mod:`stgraph.models.base`.
"""
from stgraph.models.anograph import AnoGraph, AnoGraphDGI, train_dgi
from stgraph.models.base import BaseModel, ModelFileError, NotFittedError, ScoreQuantiles

__all__ = ["AnoGraph", "AnoGraphDGI", "train_dgi", "BaseModel", "ModelFileError",
           "NotFittedError", "ScoreQuantiles"]
