"""Anomaly models: one module per paper, each a pure ``nn.Module`` (in :mod:`stgraph.nn`), plain
training functions and an estimator that follows one contract (:mod:`stgraph.models.base`):
``fit(X, y=None) -> self``, ``score(x) -> ScoreTable``, ``decision_function``, ``train_scores_``,
``threshold_``, ``stream_scorer()``, ``save(dir)`` / :func:`load_model`.

    AnoGraph          Ano-Graph (Deep Graph Infomax on the object spatio-temporal graph)
    FrameDifference   naive frame-level baseline: mean absolute difference to the previous frame
    STMAE             STM-AE, memory-enhanced two-stream autoencoder (:mod:`stgraph.models.stm_ae`)
    DissociationAE    spatial AE + motion U-Net + deep K-means (:mod:`stgraph.models.dissociation`)
    STRL              STAE + object-scene relation learning (:mod:`stgraph.models.strl`)
    SSRL, LinearMIL   weakly supervised patch-relation model and its linear MIL baseline
    EvidenceFusion    calibrated kNN/GMM/Mahalanobis scorers per feature group, summed
    PatchKNN          appearance memory: nearest normal patch (MobileNetV2) at each place
    LateFusion        several methods (e.g. Ano-Graph + STM-AE), frame scores fused on the
                      training scale (``stgraph fit --method anograph+stm_ae``)

The estimators other than AnoGraph are imported on first use (``from stgraph.models import
STRL`` works; ``import stgraph.models`` stays light).

Every model is registered (:mod:`stgraph.registry`, kind ``"model"``); the CLI's ``--method``
names them.
"""
from stgraph.models.anograph import AnoGraph
from stgraph.models.base import (BaseEstimator, BaseModel, ModelFileError, NotFittedError,
                                 ScoreQuantiles, load_model)
from stgraph.models.dgi_training import train_dgi
from stgraph.nn.dgi import AnoGraphDGI

#: Estimators imported on first access: name -> module.
_LAZY = {"FrameDifference": "stgraph.models.frame_difference", "STMAE": "stgraph.models.stm_ae",
         "DissociationAE": "stgraph.models.dissociation", "STRL": "stgraph.models.strl",
         "SSRL": "stgraph.models.ssrl", "LinearMIL": "stgraph.models.ssrl",
         "EvidenceFusion": "stgraph.models.evidence",
         "LateFusion": "stgraph.models.late_fusion", "PatchKNN": "stgraph.models.patch_knn"}

__all__ = ["AnoGraph", "AnoGraphDGI", "train_dgi", "BaseEstimator", "BaseModel",
           "ModelFileError", "NotFittedError", "ScoreQuantiles", "load_model", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stgraph.models' has no attribute {name!r}")
