"""Node-feature producers: one frame's image + ``Detections`` -> float32 [N, D], one row per object.

* :class:`GeometryFeatures` — normalised centre, size, aspect, velocity against the previous frame;
* :class:`RoIAlignFeatures` — MobileNetV2 feature map pooled inside each box (RoIAlign);
* :class:`ClassFeatures` — one-hot detector class (optionally scaled by the score);
* :class:`ConcatFeatures` — several producers side by side;
* ``STMAEFeatures`` / ``DissociationFeatures`` (:mod:`stgraph.features.autoencoder`) — errors and
  latents of a fitted pixel autoencoder pooled inside each box (learned: ``requires_fit``);
* :func:`annotate_features` — run a producer over a video; returns ``Detections`` with ``features``.
"""
from stgraph.features.base import ConcatFeatures, FeatureError, FeatureProducer, annotate_features
from stgraph.features.classes import ClassFeatures
from stgraph.features.geometry import GeometryFeatures
from stgraph.features.roi import RoIAlignFeatures, load_mobilenet_v2_features

__all__ = ["FeatureProducer", "ConcatFeatures", "GeometryFeatures", "RoIAlignFeatures",
           "ClassFeatures", "FeatureError", "annotate_features", "load_mobilenet_v2_features"]
