"""``STAEFeatures``: STRL's STAE encoder map pooled inside each detection box (node features).

The producer trains an :class:`stgraph.models.strl.STRL` on the training videos (``fit``), then,
per frame, encodes the clip of the last ``clip_length`` frames (the current one last; at the start
of a video the first frame is repeated) and averages the encoder map ``E_s`` [d, H/8, W/8] over
each box's cells (:func:`stgraph.nn.relation.masked_average`, the paper's object embedding
``e_o``). ``dim = 4 * width``. Usable by any graph builder (e.g. Ano-Graph's)::

    producer = STAEFeatures(epochs=4).fit(train_sources)
    features = producer.extract(image, detections)      # float32 [N, 56]
"""
from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import numpy as np
import torch

from detectors.base import Detections
from stgraph.features.base import FeatureError, FeatureProducer, check_frame
from stgraph.nn.relation import box_masks, masked_average

__all__ = ["STAEFeatures"]


class STAEFeatures(FeatureProducer):
    """STAE encoder features per box (see the module docstring).

    Args:
        resolution, clip_length, width, epochs, lr, seed: the :class:`~stgraph.models.strl.STRL`
            trained in :meth:`fit` (its other settings are STRL's defaults).
        progress: progress bars while training.
    """

    requires_fit = True

    def __init__(self, resolution: int = 128, clip_length: int = 4, width: int = 14,
                 epochs: int = 4, lr: float = 2e-3, seed: int = 0, progress: bool = True) -> None:
        self.resolution = resolution
        self.clip_length = clip_length
        self.width = width
        self.epochs = epochs
        self.lr = lr
        self.seed = seed
        self.progress = progress
        self._frames: deque = deque(maxlen=int(clip_length))

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 4 * int(self.width)

    def _model(self):
        from stgraph.models.strl import STRL

        return STRL(resolution=self.resolution, clip_length=self.clip_length, width=self.width,
                    epochs=self.epochs, lr=self.lr, seed=self.seed, region_rows=False,
                    progress=self.progress)

    def fit(self, videos: Sequence[Any]) -> "STAEFeatures":
        """Train STRL on normal training videos; returns self."""
        self.model_ = self._model().fit(list(videos))
        return self

    def fitted_state(self) -> dict:
        self._check_fitted()
        return {k: v.detach().cpu() for k, v in self.model_.net_.state_dict().items()}

    def restore(self, state: dict) -> None:
        from stgraph.models.base import seeded
        from stgraph.models.strl import STRLNet

        model = self._model()
        model._check_params()
        with seeded(0):
            net = STRLNet(int(self.clip_length), 1, int(self.width), model._grid_hw)
        net.load_state_dict(dict(state))
        model.net_ = net.eval()
        self.model_ = model

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise FeatureError("STAEFeatures is not fitted: call fit(train_videos) (or load a "
                               "saved pipeline) before extract")

    def reset(self) -> None:
        """Forget the frames of the previous video."""
        self._frames.clear()

    @torch.no_grad()
    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, dim]: the encoder map of the clip ending at ``image`` pooled per box."""
        self._check_fitted()
        image = check_frame(image, detections, type(self).__name__)
        model = self.model_
        x = model._preprocess(image)
        if self._frames and self._frames[-1].shape != x.shape:
            raise FeatureError("frame size changed within a video: call reset() between videos")
        while len(self._frames) < int(self.clip_length) - 1:
            self._frames.append(x)
        self._frames.append(x)
        if not len(detections):
            return np.zeros((0, self.dim), np.float32)
        clip = torch.cat(list(self._frames))[None]
        embedding = model.net_.stae.encode(clip)[3]
        masks = torch.from_numpy(box_masks(detections.boxes, image.shape[:2], model._grid_hw))
        idx = torch.zeros(len(detections), dtype=torch.long)
        return masked_average(embedding, masks, idx).numpy().astype(np.float32)
