"""Class node features: what the detector thinks each object is, and how sure it is.

:class:`ClassFeatures` gives each object a one-hot row over a list of class names, plus a last
"other" column for any class not in the list::

    column k < K   1 (or the detection score, with ``weighted=True``) when the object's class
                   name is ``classes[k]``, else 0
    column K       the same for a class name that is not in ``classes``

so ``dim = len(classes) + 1`` (K = 80 COCO classes + "other" = 81 by default). The class name of
an object is ``detections.names[i]`` (its label looked up in ``detections.class_names``), so
detectors with different numberings map onto the same columns.

Why: a graph model trained on normal scenes (only people on a walkway) then sees, in the node
features themselves, that a box is a "bicycle" or a "car", and with ``weighted=True`` how
confident the detector was.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from detectors.base import Detections
from detectors.coco import COCO_CLASSES
from stgraph.features.base import FeatureError, FeatureProducer, check_frame

__all__ = ["ClassFeatures"]


class ClassFeatures(FeatureProducer):
    """One-hot class of each object (optionally scaled by its score), plus an "other" column.

    Args:
        classes: class names, one column each, in order (``None``: the 80 COCO classes).
        weighted: put the detection score in the object's column instead of 1.

    ``dim`` is ``len(classes) + 1``. Needs ``detections.class_names`` when there are objects.

    Example:
        >>> import numpy as np
        >>> from detectors.base import Detections
        >>> d = Detections([[0, 0, 5, 5], [1, 1, 4, 4]], [0.9, 0.4], [0, 1],
        ...                class_names=("person", "bicycle"))
        >>> ClassFeatures(("person",), weighted=True).extract(np.zeros((8, 8, 3), np.uint8), d)
        array([[0.9, 0. ],
               [0. , 0.4]], dtype=float32)
    """

    def __init__(self, classes: Sequence[str] | None = None, weighted: bool = True):
        self.classes = classes
        self.weighted = weighted

    def _names(self) -> tuple[str, ...]:
        names = COCO_CLASSES if self.classes is None else tuple(self.classes)
        if isinstance(self.classes, str) or not all(isinstance(n, str) for n in names):
            raise FeatureError(f"ClassFeatures.classes must be a sequence of class names, "
                               f"got {self.classes!r}")
        if not names or len(set(names)) != len(names):
            raise FeatureError(f"ClassFeatures.classes must be non-empty and without repeats, "
                               f"got {list(names)}")
        return names

    @property
    def dim(self) -> int:  # type: ignore[override]
        return len(self._names()) + 1

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the output columns: the classes, then ``"other"``."""
        return (*self._names(), "other")

    def get_params(self) -> dict:
        params = super().get_params()
        if params["classes"] is not None:
            params["classes"] = list(params["classes"])
        return params

    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, len(classes) + 1] (``previous`` is unused)."""
        check_frame(image, detections, "ClassFeatures")
        names = self._names()
        out = np.zeros((len(detections), len(names) + 1), np.float32)
        if len(detections) == 0:
            return out
        if not detections.class_names:
            raise FeatureError(f"ClassFeatures needs detections.class_names (frame "
                               f"{detections.frame_index} has objects but no class names)")
        column_of = {name: k for k, name in enumerate(names)}
        columns = np.array([column_of.get(name, len(names)) for name in detections.names], np.int64)
        values = detections.scores if self.weighted else np.ones(len(detections), np.float32)
        out[np.arange(len(detections)), columns] = values
        return out
