"""The ``FeatureProducer`` interface: one frame's image + ``Detections`` -> node features [N, D].

A producer turns the objects of one frame into one float32 row each, aligned with the rows of the
``Detections``::

    features = producer.extract(image, detections, previous)   # float32 [N, producer.dim]

``image`` is the H×W×3 uint8 BGR frame the detections were made on; ``previous`` is the
``Detections`` of the frame before (or ``None`` at the start of a video) for producers that use
motion. Producers that keep state between frames forget it in ``reset()``.

:func:`annotate_features` runs a producer over a whole video and returns the detections with their
``features`` attached, ready for the graph builders.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterable, Sequence

import numpy as np

from detectors.base import Detections, check_image

__all__ = ["FeatureProducer", "ConcatFeatures", "FeatureError", "annotate_features",
           "check_frame"]


class FeatureError(ValueError):
    """Inputs of a feature producer are inconsistent (image vs detections, lengths, sizes)."""


class FeatureProducer:
    """Base class: subclasses set ``dim`` and write :meth:`extract`.

    ``get_params`` reads the ``__init__`` signature (scikit-learn style), so every setting must be
    a named constructor argument stored under its own name; ``repr`` and ``__call__`` come free.

    A producer that learns (an autoencoder's box features) sets ``requires_fit = True`` and
    writes :meth:`fit` (on the training videos, before extraction), :meth:`fitted_state` (its
    learned tensors, saved in the pipeline directory and digested into cache keys) and
    :meth:`restore`.
    """

    dim: int
    #: Whether :meth:`fit` must run before :meth:`extract` (learned producers).
    requires_fit: bool = False

    def fit(self, videos: Sequence[Any]) -> "FeatureProducer":
        """Learn from training videos (``FrameSource`` s); returns self. No-op unless learned."""
        return self

    def fitted_state(self) -> dict:
        """Learned tensors ``{name: Tensor}`` (loadable with ``weights_only=True``)."""
        return {}

    def restore(self, state: dict) -> None:
        """Set the learned state saved by :meth:`fitted_state`."""

    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:  # pragma: no cover - abstract
        """Features of the objects in one frame: float32 [len(detections), self.dim]."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget state carried between frames (no-op for stateless producers)."""

    def get_params(self) -> dict:
        """Constructor arguments as a JSON-serialisable dict (for cache keys and saved configs)."""
        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {name: getattr(self, name) for name in names}

    def __call__(self, image: np.ndarray, detections: Detections,
                 previous: Detections | None = None) -> np.ndarray:
        return self.extract(image, detections, previous)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def check_frame(image: np.ndarray, detections: Detections, who: str) -> np.ndarray:
    """Validate ``image`` (H×W×3 uint8 BGR) against ``detections``; returns the image.

    Raises:
        FeatureError: ``detections`` is not a ``Detections``, or was made on an image of another
            size.
    """
    if not isinstance(detections, Detections):
        raise FeatureError(f"{who} expects a Detections, got {type(detections).__name__}")
    image = check_image(image, who)
    size = image.shape[:2]
    if detections.image_size is not None and tuple(detections.image_size) != size:
        raise FeatureError(
            f"{who}: detections of frame {detections.frame_index} were made on an image of size "
            f"{tuple(detections.image_size)} (H, W) but the image given is {size}"
        )
    return image


class ConcatFeatures(FeatureProducer):
    """Several producers side by side: columns of ``producers[0]``, then ``producers[1]``, ...

    Args:
        producers: the feature producers, in column order. ``dim`` is the sum of their dims.

    Example:
        >>> from stgraph.features import ConcatFeatures, GeometryFeatures
        >>> ConcatFeatures([GeometryFeatures(), GeometryFeatures(velocity=False)]).dim
        13
    """

    def __init__(self, producers: Sequence[FeatureProducer]):
        self.producers = producers

    def _checked_producers(self) -> list[FeatureProducer]:
        producers = list(self.producers)
        if not producers:
            raise FeatureError("ConcatFeatures needs at least one producer")
        bad = [type(p).__name__ for p in producers if not isinstance(p, FeatureProducer)]
        if bad:
            raise FeatureError(f"ConcatFeatures takes FeatureProducer objects, got {bad}")
        return producers

    @property
    def dim(self) -> int:  # type: ignore[override]
        return sum(p.dim for p in self._checked_producers())

    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        parts = [p.extract(image, detections, previous) for p in self._checked_producers()]
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def reset(self) -> None:
        for p in self._checked_producers():
            p.reset()

    @property
    def requires_fit(self) -> bool:  # type: ignore[override]
        return any(getattr(p, "requires_fit", False) for p in self._checked_producers())

    def fit(self, videos: Sequence[Any]) -> "ConcatFeatures":
        for p in self._checked_producers():
            if getattr(p, "requires_fit", False):
                p.fit(videos)
        return self

    def fitted_state(self) -> dict:
        return {f"{k}.{name}": value for k, p in enumerate(self._checked_producers())
                for name, value in p.fitted_state().items()}

    def restore(self, state: dict) -> None:
        for k, p in enumerate(self._checked_producers()):
            prefix = f"{k}."
            p.restore({name[len(prefix):]: v for name, v in state.items()
                       if name.startswith(prefix)})

    def get_params(self) -> dict:
        from stgraph.registry import component_spec

        return {"producers": [component_spec(p, "features") for p in self.producers]}

    def __repr__(self) -> str:
        return f"ConcatFeatures([{', '.join(repr(p) for p in self.producers)}])"


def annotate_features(producer: FeatureProducer, frames: Iterable[Any],
                      detections: Sequence[Detections], progress: bool = True) -> list[Detections]:
    """Run ``producer`` over a video; returns copies of ``detections`` with ``features`` [N_t, D].

    Args:
        producer: any :class:`FeatureProducer`; ``reset()`` is called first.
        frames: the video's frames (a ``FrameSource`` or any iterable of objects with ``.index``
            and ``.image``), in order.
        detections: one ``Detections`` per frame, aligned with ``frames``: the t-th detections must
            carry the t-th frame's index as ``frame_index``.
        progress: show a tqdm progress bar.

    The previous frame's (annotated) detections are passed as ``previous`` to each call, so
    velocity-based features see the motion between consecutive frames.

    Raises:
        FeatureError: frames and detections differ in number or in frame indices.
    """
    from tqdm.auto import tqdm

    detections = list(detections)
    producer.reset()
    out: list[Detections] = []
    previous: Detections | None = None
    for t, frame in enumerate(tqdm(frames, total=len(detections), desc="features", unit="frame",
                                   disable=not progress)):
        if t >= len(detections):
            raise FeatureError(
                f"annotate_features: more frames than detections ({len(detections)})")
        dets = detections[t]
        if dets.frame_index != frame.index:
            raise FeatureError(
                f"annotate_features: frame #{t} has index {frame.index} but its detections have "
                f"frame_index {dets.frame_index}; frames and detections must be aligned"
            )
        previous = dets.with_features(producer.extract(frame.image, dets, previous))
        out.append(previous)
    if len(out) != len(detections):
        raise FeatureError(
            f"annotate_features: {len(detections)} detections but only {len(out)} frames")
    return out
