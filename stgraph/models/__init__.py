"""Anomaly models: one module per paper, each a pure ``nn.Module`` (in :mod:`stgraph.nn`), plain
training functions and an estimator that follows one contract (:mod:`stgraph.models.base`):
``fit(X, y=None) -> self``, ``score(x) -> ScoreTable``, ``decision_function``, ``train_scores_``,
``threshold_``, ``stream_scorer()``, ``save(dir)`` / :func:`load_model`.

    AnoGraph          Ano-Graph (Deep Graph Infomax on the object spatio-temporal graph)
    FrameDifference   naive frame-level baseline: mean absolute difference to the previous frame
    STMAE             STM-AE, memory-enhanced two-stream autoencoder (:mod:`stgraph.models.stm_ae`)
    DissociationAE    spatial AE + motion U-Net + deep K-means (:mod:`stgraph.models.dissociation`)

Every model is registered (:mod:`stgraph.registry`, kind ``"model"``); the CLI's ``--method``
names them.
"""
from stgraph.models.anograph import AnoGraph
from stgraph.models.base import (BaseEstimator, BaseModel, ModelFileError, NotFittedError,
                                 ScoreQuantiles, load_model)
from stgraph.models.dgi_training import train_dgi
from stgraph.nn.dgi import AnoGraphDGI

__all__ = ["AnoGraph", "AnoGraphDGI", "train_dgi", "BaseEstimator", "BaseModel",
           "ModelFileError", "NotFittedError", "ScoreQuantiles", "load_model"]
