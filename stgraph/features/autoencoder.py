"""Node features from a fitted pixel autoencoder: STM-AE or the dissociation autoencoders.

Each producer owns a frame-level estimator (:class:`stgraph.models.stm_ae.STMAE`,
:class:`stgraph.models.dissociation.DissociationAE`), fitted on the pipeline's training videos
(``requires_fit = True``). For every frame it runs the estimator's streaming step on the last
``n_input + 1`` frames and pools, inside each detection box:

- (a) the appearance and motion error maps (2 columns): STM-AE's future-frame squared error and
  flow-reconstruction error; dissociation's first-frame reconstruction error and RGB-difference
  error;
- (b) the latent maps at 1/8 resolution (``latent=True``): STM-AE's ``[z_a, z_m]`` (8 * width
  channels), dissociation's joint embedding ``r`` (8 * width channels).

A frame with too little history (the first ``n_input`` frames of a video) gives zeros; a frame
without objects gives ``[0, dim]``. The learned weights are :meth:`fitted_state` (saved with the
pipeline, digested into its cache key). ``from_model`` wraps an estimator that is already fitted
(e.g. the standalone benchmark's), so the weights are trained once::

    producer = STMAEFeatures(params={"resolution": 64}).fit(train_sources)
    features = producer.extract(image, detections)          # float32 [N, 2 + 8 * width]
"""
from __future__ import annotations

import json
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from detectors.base import Detections
from stgraph.features.base import FeatureError, FeatureProducer, check_frame
from stgraph.models.frame_difference import box_means
from stgraph.registry import lookup

__all__ = ["AutoencoderFeatures", "STMAEFeatures", "DissociationFeatures", "pool_boxes"]

_CONFIG_KEY = "fitted_config_json"


def pool_boxes(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean of every channel of ``maps`` [C, h, w] inside each box [N, 4] (xyxy in map pixels):
    float32 [N, C] (a box smaller than a cell takes its nearest cell)."""
    if len(boxes) == 0:
        return np.zeros((0, maps.shape[0]), np.float32)
    return np.stack([box_means(m, boxes) for m in maps], axis=1).astype(np.float32)


class AutoencoderFeatures(FeatureProducer):
    """Base of the autoencoder producers; a subclass names its estimator in :attr:`method`.

    Args:
        params: the estimator's parameters (its defaults where absent; JSON types).
        latent: add the pooled latent channels to the two error columns.
    """

    requires_fit = True
    #: registered model name of the estimator.
    method: ClassVar[str] = ""

    def __init__(self, params: Mapping[str, Any] | None = None, latent: bool = True) -> None:
        self.params = params
        self.latent = latent
        self._state: Any = None

    def _estimator(self) -> Any:
        cls = lookup("model", self.method)
        params = {"progress": False, **dict(self.params or {})}
        unknown = sorted(set(params) - set(cls.defaults()))
        if unknown:
            raise FeatureError(f"{type(self).__name__}: {cls.__name__} has no parameter(s) "
                               f"{unknown}")
        return cls(**params)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 2 + (self._estimator().latent_channels if self.latent else 0)

    @classmethod
    def from_model(cls, model: Any, latent: bool = True) -> "AutoencoderFeatures":
        """A producer around an estimator that is already fitted (its weights, no retraining)."""
        model.check_is_fitted("build a feature producer")
        if type(model) is not lookup("model", cls.method):
            raise FeatureError(f"{cls.__name__} wraps a {cls.method!r} model, got "
                               f"{type(model).__name__}")
        producer = cls(params=model.get_params(), latent=latent)
        producer.model_ = model
        return producer

    def fit(self, videos: Sequence[Any]) -> "AutoencoderFeatures":
        """Train the autoencoder on the training videos (``FrameSource`` s, paths or arrays)."""
        self.model_ = self._estimator().fit(list(videos))
        self._state = None
        return self

    def _model(self) -> Any:
        model = getattr(self, "model_", None)
        if model is None:
            raise FeatureError(f"{type(self).__name__} is not fitted: fit it on the training "
                               "videos (Pipeline.fit does) or restore its state first")
        return model

    def fitted_state(self) -> dict:
        model = self._model()
        config = json.dumps(model._fitted_config()).encode("utf-8")
        return {**model._fitted_state(),
                _CONFIG_KEY: torch.tensor(list(config), dtype=torch.uint8)}

    def restore(self, state: dict) -> None:
        state = dict(state)
        config = json.loads(bytes(state.pop(_CONFIG_KEY).tolist()).decode("utf-8"))
        model = self._estimator()
        model._restore(config, state)
        self.model_ = model
        self._state = None

    def reset(self) -> None:
        self._state = None

    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, dim]: errors (appearance, motion) then latents, pooled in each box.

        Frames must come in order (the producer keeps the last frames; ``reset()`` between
        videos). Zeros while the history is too short, ``[0, dim]`` without objects.
        """
        model = self._model()
        image = check_frame(image, detections, type(self).__name__)
        self._state, analysis = model.push_frame(self._state, image)
        n, dim = len(detections), self.dim
        if n == 0:
            return np.zeros((0, dim), np.float32)
        if analysis is None:
            return np.zeros((n, dim), np.float32)
        hw = image.shape[:2]
        parts = [pool_boxes(analysis.errors[0], model.scale_boxes(detections.boxes, hw))]
        if self.latent:
            latents = analysis.latents[0]
            stride = model.resolution // latents.shape[-1]
            parts.append(pool_boxes(latents, model.scale_boxes(detections.boxes, hw, stride)))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def get_params(self) -> dict:
        return {"params": None if self.params is None else dict(self.params),
                "latent": self.latent}


class STMAEFeatures(AutoencoderFeatures):
    """Box features from a fitted STM-AE: prediction error, flow-reconstruction error and the
    pooled ``[z_a, z_m]`` (dim 2 + 8 * width)."""

    method = "stm_ae"


class DissociationFeatures(AutoencoderFeatures):
    """Box features from fitted dissociation autoencoders: first-frame reconstruction error,
    RGB-difference error and the pooled joint embedding ``r`` (dim 2 + 8 * width)."""

    method = "dissociation"
