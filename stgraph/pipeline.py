"""``Pipeline``: raw videos -> what the model consumes -> ScoreTable.

The pipeline feeds each model what it consumes (:attr:`~stgraph.models.base.BaseEstimator.consumes`):

====================  ====================================================================
model consumes        the pipeline runs
====================  ====================================================================
"detections"          detector -> node features -> ``model.fit`` / ``model.score`` (Ano-Graph)
"frames"              the frame source itself (frames are read lazily by the model); a
                      detector is optional: its boxes become object rows
                      (``model.score(..., detections=...)``) (FrameDifference, STRL, ...)
"snippets"            a snippet extractor (``features=``) -> ``SnippetFeatures`` per video (SSRL)
"frames+detections"   both: the frame source and detector -> node features, as a
                      ``FramesAndDetections`` pair (LateFusion of Ano-Graph and STM-AE)
====================  ====================================================================

::

    from detectors.yolox_onnx import YoloxOnnxDetector
    from stgraph.features import ConcatFeatures, GeometryFeatures, ClassFeatures
    from stgraph.models import AnoGraph, FrameDifference
    from stgraph.pipeline import Pipeline

    pipe = Pipeline(YoloxOnnxDetector("yolox_nano.onnx"),
                    ConcatFeatures([GeometryFeatures(), ClassFeatures()]),
                    AnoGraph(), cache_dir=".cache/stgraph")
    pipe.fit(["train/01.avi", "train/02.avi"])
    table = pipe.score("test/01.avi")            # ScoreTable: every object in every frame
    pipe.save("model/");  Pipeline.load("model/")

    Pipeline(model=FrameDifference()).fit(["train/01.avi"]).score("test/01.avi")  # frame rows

Video-level labels go to weakly supervised models: ``pipe.fit(videos, y=[0, 0, 1])``. Feature
producers may learn (``requires_fit = True``, e.g. an autoencoder's box features): ``fit`` fits
them on the training videos first, and their learned state is saved inside the pipeline
directory. Detections and features of each video are cached on disk when ``cache_dir`` is given
(keyed by the video, every setting and the fitted producer state), so re-runs skip detection.

Saved pipelines name their components by registered name (:mod:`stgraph.registry`); loading
builds only registered classes and never imports a module a file names. Weight files (the
detector's, a RoI backbone's) are saved by absolute path with their sha256, so a model scores
from any folder; loading refuses a missing or changed file unless ``weights=`` names the
detector weights to use instead (``stgraph score/watch --weights``).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from detectors.base import Detections
from stgraph.fileio import atomic_dir, check_output_dir
from stgraph.io.frames import FrameSource, FrameWindow, open_source
from stgraph.registry import RegistryError, build_component, component_spec

__all__ = ["Pipeline", "PipelineFileError", "video_name", "known_fps", "settings_of",
           "PIPELINE_FORMAT",
           "PIPELINE_VERSION"]

logger = logging.getLogger(__name__)

PIPELINE_FORMAT = "stgraph.Pipeline"
#: 2: registered component names, PyG edge order, fitted producer state (stgraph 0.2).
PIPELINE_VERSION = 2
_SPEC_FILE = "pipeline.json"
_MODEL_DIR = "model"
_FEATURES_STATE = "features_state.pt"


class PipelineFileError(ValueError):
    """A saved pipeline directory is unreadable, of another version, or names unknown parts."""


def video_name(video: Any, default: str = "video") -> str:
    """A readable name for a video argument (file stem, folder name, item name)."""
    if hasattr(video, "name") and isinstance(getattr(video, "name"), str) \
            and not isinstance(video, (str, Path)):
        name = video.name
        return Path(name).stem if ("/" in name or "\\" in name) else name
    if isinstance(video, (str, Path)):
        p = Path(video)
        return p.stem if p.suffix else p.name
    return default


def known_fps(source: FrameSource) -> float | None:
    """Frames per second of the frames ``source`` yields (:attr:`FrameSource.known_fps` / stride),
    or ``None`` when the source does not know its rate (``FrameSource.fps`` then only reports a
    25 fps default). Batch scoring and live scoring both take their window from it."""
    rate = getattr(source, "known_fps", None)
    return float(rate) / getattr(source, "stride", 1) if rate else None


def settings_of(component: Any) -> dict | None:
    """Class and parameters of a component, for cache keys (registered or not)."""
    if component is None:
        return None
    cls = type(component)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": component.get_params()}


def _state_digest(state: dict) -> str:
    """Short sha256 of a producer's fitted tensors (part of cache keys)."""
    import torch

    buffer = io.BytesIO()
    torch.save({k: state[k] for k in sorted(state)}, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()[:16]


#: Parameter names that may name a weights / config file (``model_path``, ``weights``, ...).
_FILE_PARAM = re.compile(r"path|weights|file|config|backbone")


def _pin_files(value: Any, files: dict[str, str], key: str = "") -> Any:
    """``value`` (a component spec) with every file-naming parameter (:data:`_FILE_PARAM`) that
    names an existing file replaced by its absolute path; ``files`` gets {absolute path: sha256}."""
    from stgraph.cache import _names_file, file_digest

    if isinstance(value, dict):
        return {k: _pin_files(item, files, k) for k, item in value.items()}
    if isinstance(value, list):
        return [_pin_files(item, files, key) for item in value]
    if isinstance(value, str) and _FILE_PARAM.search(key) and _names_file(value):
        path = str(Path(value).expanduser().resolve())
        files[path] = file_digest(path)
        return path
    return value


def _strings(value: Any) -> Iterable[str]:
    """Every string in a (nested) spec."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _weights_param(spec: dict, files: dict[str, str]) -> str | None:
    """The detector parameter that names its saved weights file (None: it has none)."""
    params = spec.get("params", {})
    return next((key for key, value in params.items() if isinstance(value, str) and value in files),
                next((key for key in ("model_path", "weights") if key in params), None))


def _check_files(spec_path: Path, spec: dict, files: dict[str, str]) -> None:
    """Refuse a pipeline whose weight files are gone or changed since it was saved."""
    from stgraph.cache import file_digest

    detector_files = set(_strings(spec.get("detector")))
    for path, digest in files.items():
        where = "the detector weights" if path in detector_files else "the feature weights"
        if not Path(path).is_file():
            hint = ("pass the weights to use with --weights PATH (Pipeline.load(..., weights=))"
                    if where == "the detector weights" else "put the file back or fit again")
            raise PipelineFileError(f"{spec_path}: {where} {path} the model was fitted with are "
                                    f"missing; {hint}")
        if file_digest(path) != digest:
            raise PipelineFileError(
                f"{spec_path}: {where} {path} changed since the model was fitted (sha256 "
                f"{file_digest(path)[:12]}, fitted with {digest[:12]}); fit again, or pass "
                "--weights PATH (Pipeline.load(..., weights=)) to score with them anyway")


class Pipeline:
    """Detector + feature producer + model, applied to raw videos.

    Args:
        detector: a :class:`detectors.base.Detector`; None for frame-level models without
            object rows (and for snippet models).
        features: a :class:`stgraph.features.FeatureProducer` (detection models), a snippet
            extractor (snippet models), or None.
        model: an estimator (:class:`stgraph.models.base.BaseEstimator`).
        resize: ``(W, H)`` to resize frames to before anything else (``None`` = native size).
        stride: use every ``stride``-th frame.
        cache_dir: folder for cached detections + features (``None`` = no cache).
        progress: show progress bars.
    """

    def __init__(self, detector: Any = None, features: Any = None, model: Any = None,
                 resize: tuple[int, int] | None = None, stride: int = 1,
                 cache_dir: str | Path | None = None, progress: bool = True):
        self.detector = detector
        self.features = features
        self.model = model
        self.resize = resize
        self.stride = stride
        self.cache_dir = cache_dir
        self.progress = progress
        self.timings_: dict[str, float] = {}

    # ------------------------------------------------------------------ checks
    @property
    def consumes(self) -> str:
        """What the model consumes ("detections" when there is no model yet: extraction only)."""
        return getattr(self.model, "consumes", "detections")

    def check_components(self) -> None:
        """Raise ValueError when the parts do not fit the model's input (names what is missing)."""
        kind = self.consumes
        fused = kind == "frames+detections"
        if fused:
            kind = "detections"  # what the object-level half needs; the frames come anyway
        if kind == "detections" and (self.detector is None or self.features is None):
            missing = [n for n, v in (("detector", self.detector), ("features", self.features))
                       if v is None]
            hint = (" (it fuses an object-level method; for frames alone use a frame-level "
                    "method, e.g. --method stm_ae --detector none)" if fused else "")
            raise ValueError(f"{type(self.model).__name__} scores objects: the pipeline needs a "
                             f"{' and '.join(missing)}{hint}")
        if kind == "detections":
            _ = self.features.dim  # builds a RoI backbone now: a bad weights file fails up front
        if kind == "frames" and self.features is not None:
            raise ValueError(f"{type(self.model).__name__} scores frames and takes no feature "
                             "producer (features=None); a detector is optional")
        if kind == "snippets" and (self.features is None
                                   or not callable(getattr(self.features, "extract_video", None))):
            raise ValueError(f"{type(self.model).__name__} consumes snippet features: pass a "
                             "snippet extractor as features= (e.g. "
                             "stgraph.features.snippets.SnippetExtractor)")

    # ------------------------------------------------------------------ sources
    def source(self, video: Any, start: int = 0, frames: int | None = None) -> FrameSource:
        """The frames of ``video`` the pipeline reads (resized, strided, from ``start``, at most
        ``frames``); frame indices stay those of the whole video."""
        if hasattr(video, "source") and callable(video.source):  # a dataset VideoItem
            source = video.source(resize=self.resize, stride=self.stride)
        else:
            source = open_source(video, resize=self.resize, stride=self.stride)
        if start or frames is not None:
            source = FrameWindow(source, start, frames)
        return source

    def _settings(self) -> dict:
        """Everything that decides the extracted detections and features (for cache keys)."""
        settings = {"detector": settings_of(self.detector), "features": settings_of(self.features),
                    "resize": self.resize, "stride": self.stride}
        state = self._features_state()
        if state is not None:
            settings["features_state"] = _state_digest(state)
        return settings

    def _features_state(self) -> dict | None:
        if self.features is None or not getattr(self.features, "requires_fit", False):
            return None
        return self.features.fitted_state()

    # ------------------------------------------------------------------ stage 1-3: frames -> Detections
    def extract(self, video: Any, start: int = 0, frames: int | None = None) -> list[Detections]:
        """Detections (with ``features`` when a producer is set) of every frame of ``video``,
        cached when ``cache_dir`` is set. A detector that needs earlier frames (the motion
        detector) sees up to its ``warmup_frames`` frames before ``start`` first."""
        from stgraph.cache import DetectionCache, component_key, fingerprint, settings_key

        source = self.source(video)
        cache = key = None
        path = getattr(source, "path", None)
        if self.cache_dir is not None and path is not None:
            cache = DetectionCache(self.cache_dir)
            key = settings_key(fingerprint(path), component_key(self._settings()), start, frames)
            cached = cache.load(key)
            if cached is not None:
                return cached
        warmup = min(start, int(getattr(self.detector, "warmup_frames", 0) or 0))
        window = (FrameWindow(source, start - warmup, None if frames is None else frames + warmup)
                  if start or frames is not None else source)
        detections = [d for d in self.detect_frames(window) if d.frame_index >= start]
        if not detections:
            raise ValueError(f"video {video_name(video)} has no frames from index {start}")
        if cache is not None and key is not None:
            cache.save(key, detections, {"video": str(path), "start": start, "frames": frames,
                                         **self._settings()})
        return detections

    def detect_frames(self, source: Iterable[Any]) -> list[Detections]:
        """Detections (with ``features``) for every frame of ``source`` (a FrameSource or any
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

    def model_input(self, video: Any, start: int = 0, frames: int | None = None) -> Any:
        """What the model consumes for one video (see the module docstring)."""
        kind = self.consumes
        if kind == "detections":
            return self.extract(video, start, frames)
        source = self.source(video, start, frames)
        if kind == "frames":
            return source
        if kind == "frames+detections":
            from stgraph.models.late_fusion import FramesAndDetections

            return FramesAndDetections(source, self.extract(video, start, frames))
        return self.features.extract_video(source, cache_dir=self.cache_dir)

    # ------------------------------------------------------------------ fit / score
    def fit(self, videos: Iterable[Any], y: Sequence[int] | np.ndarray | None = None,
            start: int = 0, frames: int | None = None, engine: Any = None) -> "Pipeline":
        """Fit learnable feature producers, then the model, on ``videos``; returns self.

        Args:
            videos: training videos (paths, frame folders, arrays, dataset items).
            y: video-level labels [n_videos] (0/1) for weakly supervised models, else None.
            start, frames: use only frames ``start .. start + frames - 1`` of each video.
            engine: a :class:`stgraph.engine.Engine` that extracts the videos' detections (e.g.
                one Ray task per video); None: here, one video after the other.
        """
        videos = list(videos)
        if not videos:
            raise ValueError("Pipeline.fit needs at least one training video")
        if self.model is None:
            raise ValueError("Pipeline.fit needs a model")
        self.check_components()
        if self.features is not None and getattr(self.features, "requires_fit", False):
            self.features.fit([self.source(v, start, frames) for v in videos])
        if engine is not None:
            inputs = engine.model_inputs(self, videos, start, frames)
        else:
            inputs = [self.model_input(v, start, frames) for v in videos]
        quiet = not self.progress and getattr(self.model, "progress", False) is True
        if quiet:  # Pipeline(progress=False) silences the model's training bars too
            self.model.progress = False
        try:
            self.model.fit(inputs, y)
        finally:
            if quiet:
                self.model.progress = True
        return self

    def score(self, video: Any, name: str | None = None, start: int = 0,
              frames: int | None = None):
        """ScoreTable of one video (object, frame or patch rows, as the model gives).

        The source's frame rate, when it knows one, goes to ``model.score(fps=...)`` (per kept
        frame, so divided by ``stride``). A frame-level model with a detector also gets the
        detector's boxes, which become object rows.
        """
        if self.model is None:
            raise ValueError("Pipeline.score needs a model")
        self.check_components()
        name = name or video_name(video)
        fps = known_fps(self.source(video))
        options: dict[str, Any] = {"video": name, "fps": fps}
        if self.consumes == "frames" and self.detector is not None:
            options["detections"] = self.extract(video, start, frames)
        return self.model.score(self.model_input(video, start, frames), **options)

    def stream(self, source: Any, *, radius: int | None = None, prefetch: int = 4,
               keep_images: bool = True, explain_top_k: int = 0):
        """Score frames as they arrive: yields one :class:`stgraph.stream.FrameResult` per frame.

        Results come after the model's latency (``model.stream_scorer().latency_frames``: the
        window radius for graph models, 0 for frame models); the end of the source releases the
        last ones. Scores equal :meth:`score`'s for models that stream exactly. ``prefetch`` > 0
        runs decoding, detection and features in a background thread, that many frames ahead.
        See :mod:`stgraph.stream`.
        """
        from stgraph.stream import stream_pipeline

        self.check_components()
        return stream_pipeline(self, source, radius=radius, prefetch=prefetch,
                               keep_images=keep_images, explain_top_k=explain_top_k)

    def score_many(self, videos: Sequence[Any]):
        """One ScoreTable over several videos (video column = each video's name)."""
        from stgraph.scores import ScoreTable

        return ScoreTable.concat([self.score(v) for v in videos])

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Save the pipeline as one directory, atomically: ``pipeline.json`` (registered names
        and parameters of the detector and features, frame settings), ``model/`` and, for a
        fitted feature producer, ``features_state.pt``."""
        import torch

        if self.model is None:
            raise ValueError("Pipeline.save needs a model")
        self.model.check_is_fitted("save")
        directory = check_output_dir(directory, "pipeline directory")
        files: dict[str, str] = {}
        spec = {"format": PIPELINE_FORMAT, "version": PIPELINE_VERSION,
                "resize": list(self.resize) if self.resize else None, "stride": self.stride,
                "detector": None if self.detector is None
                else _pin_files(component_spec(self.detector), files),
                "features": None if self.features is None
                else _pin_files(component_spec(self.features), files)}
        spec["files"] = files  # {absolute path: sha256} of every weights file named above
        text = json.dumps(spec, indent=2, allow_nan=False)
        state = self._features_state()
        with atomic_dir(directory) as tmp:
            self.model.save(tmp / _MODEL_DIR)
            if state is not None:
                torch.save(state, tmp / _FEATURES_STATE)
            (tmp / _SPEC_FILE).write_text(text, encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | Path | None = None,
             progress: bool = True, weights: str | Path | None = None) -> "Pipeline":
        """Rebuild a pipeline saved with :meth:`save`.

        Only registered components (:mod:`stgraph.registry`) are built; a file naming anything
        else, or of another format version, is refused with :class:`PipelineFileError` and
        nothing is imported, called or written. So is a weights file that is missing or whose
        sha256 differs from the one saved, unless ``weights`` names the detector weights file to
        use instead (a warning is logged when its content differs from the fitted one's).
        """
        import torch

        from stgraph.models.base import load_model

        directory = Path(directory)
        spec_path = directory / _SPEC_FILE
        if not spec_path.is_file():
            raise FileNotFoundError(f"not a saved stgraph pipeline (no {_SPEC_FILE}): {directory}")
        try:
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PipelineFileError(f"{spec_path} is not valid JSON: {exc}") from exc
        if not isinstance(spec, dict) or spec.get("format") != PIPELINE_FORMAT:
            raise PipelineFileError(f"{spec_path} is not a saved stgraph pipeline")
        if spec.get("version") != PIPELINE_VERSION:
            raise PipelineFileError(
                f"{spec_path} has pipeline format version {spec.get('version')!r}; this stgraph "
                f"reads version {PIPELINE_VERSION}. It was saved by another stgraph version "
                "(older ones used the opposite graph edge order): fit it again with stgraph fit")
        files = spec.get("files") or {}
        if weights is not None:
            cls._use_weights(spec, spec_path, files, weights)
        _check_files(spec_path, spec, files)
        try:
            detector = (None if spec.get("detector") is None
                        else build_component(spec["detector"], "detector"))
            features = (None if spec.get("features") is None
                        else build_component(spec["features"], "features"))
        except RegistryError as exc:
            raise PipelineFileError(f"{spec_path}: {exc}") from exc
        state_path = directory / _FEATURES_STATE
        if features is not None and getattr(features, "requires_fit", False):
            if not state_path.is_file():
                raise PipelineFileError(f"{directory}: the fitted feature producer's state "
                                        f"{_FEATURES_STATE} is missing")
            features.restore(torch.load(state_path, map_location="cpu", weights_only=True))
        model = load_model(directory / _MODEL_DIR)
        resize = tuple(spec["resize"]) if spec.get("resize") else None
        return cls(detector, features, model, resize=resize, stride=spec.get("stride", 1),
                   cache_dir=cache_dir, progress=progress)

    @staticmethod
    def _use_weights(spec: dict, spec_path: Path, files: dict[str, str],
                     weights: str | Path) -> None:
        """Point the saved detector at ``weights`` (in place; ``files`` loses the old entry)."""
        from stgraph.cache import file_digest

        detector = spec.get("detector")
        key = None if detector is None else _weights_param(detector, files)
        if key is None:
            raise PipelineFileError(f"{spec_path}: the saved detector "
                                    f"({'none' if detector is None else detector.get('class')}) "
                                    "takes no weights file; leave out --weights")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--weights: no such weights file: {weights}")
        path = path.resolve()
        old = detector["params"][key]
        fitted = files.pop(old, None) if isinstance(old, str) else None
        if fitted is not None and file_digest(path) != fitted:
            logger.warning("detector weights %s differ from the ones the model was fitted with "
                           "(%s): scores may not match the training scores", path, old)
        detector["params"][key] = str(path)

    def __repr__(self) -> str:
        return (f"Pipeline(detector={self.detector!r}, features={self.features!r}, "
                f"model={self.model!r})")
