"""``Pipeline``: frames -> detections -> node features -> graph model -> ScoreTable.

The pipeline wires the stages of the data flow to raw videos; the model owns graph building and
scoring (so the same model scores pre-computed detections too)::

    from detectors.yolox_onnx import YoloxOnnxDetector
    from stgraph.features import ConcatFeatures, GeometryFeatures, RoIAlignFeatures
    from stgraph.models import AnoGraph
    from stgraph.pipeline import Pipeline

    pipe = Pipeline(YoloxOnnxDetector("yolox_nano.onnx"),
                    ConcatFeatures([GeometryFeatures(), RoIAlignFeatures("mobilenetv2.pt")]),
                    AnoGraph(), cache_dir=".cache/stgraph")
    pipe.fit(["train/01.avi", "train/02.avi"])
    table = pipe.score("test/01.avi")            # ScoreTable: every object in every frame
    pipe.save("model/");  Pipeline.load("model/")

Detections and features of each video are cached on disk (keyed by the video and all settings)
when ``cache_dir`` is given, so re-runs skip detection.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from detectors.base import Detections
from stgraph.fileio import atomic_write_text
from stgraph.io.frames import FrameSource, open_source

__all__ = ["Pipeline", "component_spec", "build_component", "video_name"]

#: Only classes from these packages are rebuilt from saved specs (no arbitrary imports).
TRUSTED_PACKAGES = ("detectors.", "stgraph.")


def component_spec(obj: Any) -> dict:
    """``{"class": "module.Class", "params": obj.get_params()}``: enough to rebuild ``obj``."""
    if not hasattr(obj, "get_params"):
        raise TypeError(f"{type(obj).__name__} has no get_params(); it cannot be saved in a pipeline")
    return {"class": component_class(obj), "params": obj.get_params()}


def build_component(spec: dict) -> Any:
    """Inverse of :func:`component_spec` (nested specs in params are rebuilt too)."""
    path = spec.get("class", "")
    if not path.startswith(TRUSTED_PACKAGES):
        raise ValueError(f"refusing to build {path!r}: only classes from {TRUSTED_PACKAGES} are loaded")
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    params = {k: build_component(v) if isinstance(v, dict) and "class" in v else
              [build_component(x) if isinstance(x, dict) and "class" in x else x for x in v]
              if isinstance(v, list) else v for k, v in spec.get("params", {}).items()}
    return cls(**params)


def video_name(video: Any, default: str = "video") -> str:
    """A readable name for a video argument (file stem, folder name, item name)."""
    if hasattr(video, "name") and isinstance(getattr(video, "name"), str) and not isinstance(video, (str, Path)):
        name = video.name
        return Path(name).stem if ("/" in name or "\\" in name) else name
    if isinstance(video, (str, Path)):
        p = Path(video)
        return p.stem if p.suffix else p.name
    return default


class Pipeline:
    """Detector + feature producer + graph model, applied to raw videos.

    Args:
        detector: a :class:`detectors.base.Detector`.
        features: a :class:`stgraph.features.FeatureProducer`.
        model: a graph model with ``fit(list[list[Detections]])`` and
            ``score(list[Detections], video=...) -> ScoreTable`` (e.g. :class:`stgraph.models.AnoGraph`).
        resize: ``(W, H)`` to resize frames to before detection (``None`` = native size).
        stride: use every ``stride``-th frame.
        cache_dir: folder for cached detections + features (``None`` = no cache).
        progress: show progress bars.
    """

    def __init__(self, detector: Any, features: Any, model: Any, resize: tuple[int, int] | None = None,
                 stride: int = 1, cache_dir: str | Path | None = None, progress: bool = True):
        self.detector = detector
        self.features = features
        self.model = model
        self.resize = resize
        self.stride = stride
        self.cache_dir = cache_dir
        self.progress = progress
        self.timings_: dict[str, float] = {}

    # ------------------------------------------------------------------ stage 1-3: video -> Detections with features
    def _source(self, video: Any) -> FrameSource:
        if hasattr(video, "source") and callable(video.source):  # a dataset VideoItem
            return video.source(resize=self.resize, stride=self.stride)
        return open_source(video, resize=self.resize, stride=self.stride)

    def _settings(self) -> dict:
        return {"detector": component_spec(self.detector), "features": component_spec(self.features),
                "resize": self.resize, "stride": self.stride}

    def extract(self, video: Any) -> list[Detections]:
        """Detections with ``features`` for every frame of ``video`` (cached when ``cache_dir`` is set)."""
        from stgraph.cache import DetectionCache, fingerprint, settings_key

        source = self._source(video)
        cache = key = None
        path = getattr(source, "path", None)
        if self.cache_dir is not None and path is not None:
            cache = DetectionCache(self.cache_dir)
            key = settings_key(fingerprint(path), self._settings())
            cached = cache.load(key)
            if cached is not None:
                return cached
        detections = self.detect_frames(source)
        if cache is not None and key is not None:
            cache.save(key, detections, {"video": str(path), **self._settings()})
        return detections

    def detect_frames(self, source: Iterable[Any]) -> list[Detections]:
        """Detections with ``features`` for every frame of ``source`` (a FrameSource or any
        iterable of ``Frame``s), never cached; ``timings_`` records the seconds per stage."""
        from tqdm.auto import tqdm

        from stgraph.stream import analyse_frames

        try:
            total = len(source)
        except TypeError:
            total = None
        frames = tqdm(source, total=total, desc=f"extract {video_name(source)}", unit="frame",
                      disable=not self.progress, leave=False)
        out: list[Detections] = []
        t_detect = t_features = 0.0
        for item in analyse_frames(self.detector, self.features, frames, keep_images=False):
            out.append(item.detections)
            t_detect += item.timings["detect"]
            t_features += item.timings["features"]
        self.timings_ = {"frames": len(out), "detect_s": t_detect, "features_s": t_features}
        if not out:
            raise ValueError(f"video {video_name(source)} yielded no frames")
        return out

    # ------------------------------------------------------------------ fit / score
    def fit(self, videos: Iterable[Any]) -> "Pipeline":
        """Extract every training (normal) video and fit the model on them; returns self."""
        videos = list(videos)
        if not videos:
            raise ValueError("Pipeline.fit needs at least one training video")
        self.model.fit([self.extract(v) for v in videos])
        return self

    def score(self, video: Any, name: str | None = None):
        """ScoreTable of one video (every object in every frame, with its box and score).

        The source's frame rate, when it knows one, goes to ``model.score(fps=...)`` (per kept
        frame, so divided by ``stride``): the default test window is then 1 s of video.
        """
        source = self._source(video)
        detections = self.extract(source)
        return self.model.score(detections, video=name or video_name(video), fps=known_fps(source))

    def stream(self, source: Any, *, radius: int | None = None, prefetch: int = 4,
               keep_images: bool = True, explain_top_k: int = 0):
        """Score frames as they arrive: yields one :class:`stgraph.stream.FrameResult` per frame.

        Frame t's result comes once frame ``t + radius`` has arrived (the end of the source
        releases the last ones); its object scores equal :meth:`score`'s. Memory stays flat:
        only the sliding window is kept. ``prefetch`` > 0 runs decoding, detection and features
        in a background thread, that many frames ahead. See :mod:`stgraph.stream`.
        """
        from stgraph.stream import stream_pipeline

        return stream_pipeline(self, source, radius=radius, prefetch=prefetch,
                               keep_images=keep_images, explain_top_k=explain_top_k)

    def score_many(self, videos: Sequence[Any]):
        """One ScoreTable over several videos (video column = each video's name)."""
        from stgraph.scores import ScoreTable

        return ScoreTable.concat([self.score(v) for v in videos])

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Save model (``model/``) and the detector/feature settings (``pipeline.json``)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / "model")
        spec = {"format": "stgraph.Pipeline", "version": 1, "model_class": component_class(self.model),
                **self._settings()}
        atomic_write_text(directory / "pipeline.json", json.dumps(spec, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | Path | None = None, progress: bool = True) -> "Pipeline":
        """Rebuild a pipeline saved with :meth:`save`."""
        directory = Path(directory)
        spec_path = directory / "pipeline.json"
        if not spec_path.is_file():
            raise FileNotFoundError(f"not a saved stgraph pipeline (no pipeline.json): {directory}")
        spec = json.loads(spec_path.read_text())
        model_cls_path = spec["model_class"]
        if not model_cls_path.startswith(TRUSTED_PACKAGES):
            raise ValueError(f"refusing to load model class {model_cls_path!r}")
        module, _, name = model_cls_path.rpartition(".")
        model = getattr(importlib.import_module(module), name).load(directory / "model")
        resize = tuple(spec["resize"]) if spec.get("resize") else None
        return cls(build_component(spec["detector"]), build_component(spec["features"]), model,
                   resize=resize, stride=spec.get("stride", 1), cache_dir=cache_dir, progress=progress)

    def __repr__(self) -> str:
        return f"Pipeline(detector={self.detector!r}, features={self.features!r}, model={self.model!r})"


def component_class(obj: Any) -> str:
    """``"module.Class"`` of ``obj``: how saved specs name a class."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def known_fps(source: FrameSource) -> float | None:
    """Frames per second of the frames ``source`` yields (its rate / stride), or ``None`` when the
    source does not know its rate (``FrameSource.fps`` then only reports a 25 fps default)."""
    rate = getattr(source, "_fps", None)
    return float(rate) / getattr(source, "stride", 1) if rate else None
