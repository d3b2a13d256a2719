"""Engines for per-video work: ``local`` (this process, video after video) or ``ray``.

Extraction (detection + node features) and scoring are independent per video, so a corpus is a
map over its videos. :class:`LocalEngine` runs the map here; :class:`RayEngine` runs one Ray task
per video, on a local Ray instance or on a cluster (``address``). Both write the same detection
cache (:class:`stgraph.cache.DetectionCache`, keyed by the video's content and every setting) and
return the same results, in the order of the videos::

    from stgraph.engine import make_engine
    engine = make_engine("ray", address="auto")        # or make_engine("local")
    pipe.fit(train_videos, engine=engine)                # extraction as Ray tasks, fit here
    table = engine.score(pipe, test_videos)              # one ScoreTable, same as local
    engine.close()

What travels to a task is the pipeline in its saved form (registered component specs, fitted
feature-producer state, the saved model's files: :func:`pack_pipeline`), never a live detector or
network; each worker process rebuilds it once and keeps it. Videos, detector weights and the cache
folder are paths: on a cluster they must be visible from every node (a shared file system).

Ray is optional (``pip install 'stgraph[ray]'``); it is imported only when the Ray engine is made.
"""
from __future__ import annotations

import hashlib
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "make_engine", "pack_pipeline",
           "unpack_pipeline", "import_ray", "RAY_INSTALL"]

#: Engine names the CLI accepts (``--engine``).
ENGINES = ("local", "ray")
#: How to install the Ray engine's dependency.
RAY_INSTALL = "pip install 'stgraph[ray]'  (tested with ray==2.60.0)"


def import_ray() -> Any:
    """The ``ray`` module; ImportError naming the install command when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"the Ray engine needs Ray, which is not installed: {RAY_INSTALL}") \
            from exc
    return ray


def make_engine(name: str = "local", address: str | None = None,
                num_cpus: int | None = None, progress: bool = True) -> "Engine":
    """An engine by name (:data:`ENGINES`).

    Args:
        name: "local" or "ray".
        address: Ray only: a running cluster (``"auto"``, ``"HOST:6379"``, or a Ray client
            address ``"ray://HOST:10001"``); None starts a local Ray instance.
        num_cpus: Ray only, local instance: CPUs it may use (None: all).
        progress: show a progress bar over videos.
    """
    if name == "local":
        if address is not None:
            raise ValueError("--address is for --engine ray")
        return LocalEngine(progress)
    if name == "ray":
        return RayEngine(address, num_cpus, progress)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


# ====================================================================== the pipeline, packed
def pack_pipeline(pipe: Any, with_model: bool) -> dict[str, Any]:
    """The saved form of ``pipe`` as plain data: component specs, frame settings, cache folder,
    the fitted feature producer's state and (``with_model``) the saved model's files."""
    from stgraph.registry import component_spec

    packed: dict[str, Any] = {
        "detector": None if pipe.detector is None else component_spec(pipe.detector),
        "features": None if pipe.features is None else component_spec(pipe.features),
        "resize": pipe.resize, "stride": pipe.stride,
        "cache_dir": None if pipe.cache_dir is None else str(pipe.cache_dir),
        "features_state": pipe._features_state(), "model_files": None,
    }
    if with_model:
        with tempfile.TemporaryDirectory(prefix="stgraph-model-") as tmp:
            root = Path(tmp) / "model"
            pipe.model.save(root)
            packed["model_files"] = {str(p.relative_to(root)): p.read_bytes()
                                     for p in sorted(root.rglob("*")) if p.is_file()}
    packed["digest"] = hashlib.sha256(pickle.dumps(packed)).hexdigest()
    return packed


_UNPACKED: dict[str, Any] = {}  # digest -> Pipeline, per worker process


def unpack_pipeline(packed: dict[str, Any]) -> Any:
    """The :class:`~stgraph.pipeline.Pipeline` of :func:`pack_pipeline` (built once per
    process, then reused), without progress bars."""
    pipe = _UNPACKED.get(packed["digest"])
    if pipe is not None:
        return pipe
    from stgraph.models.base import load_model
    from stgraph.pipeline import Pipeline
    from stgraph.registry import build_component

    detector = None if packed["detector"] is None else build_component(packed["detector"],
                                                                        "detector")
    features = None if packed["features"] is None else build_component(packed["features"],
                                                                        "features")
    if packed["features_state"] is not None:
        features.restore(packed["features_state"])
    model = None
    if packed["model_files"] is not None:
        with tempfile.TemporaryDirectory(prefix="stgraph-model-") as tmp:
            for name, data in packed["model_files"].items():
                path = Path(tmp) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            model = load_model(tmp)
        if hasattr(model, "progress"):
            model.progress = False
    pipe = Pipeline(detector, features, model, resize=packed["resize"], stride=packed["stride"],
                    cache_dir=packed["cache_dir"], progress=False)
    _UNPACKED[packed["digest"]] = pipe
    return pipe


def _extract_task(video: Any, packed: dict[str, Any], start: int, frames: int | None) -> Any:
    return unpack_pipeline(packed).extract(video, start, frames)


def _extract_count_task(video: Any, packed: dict[str, Any], start: int,
                        frames: int | None) -> int:
    return len(_extract_task(video, packed, start, frames))


def _score_task(video: Any, packed: dict[str, Any], start: int, frames: int | None) -> Any:
    return unpack_pipeline(packed).score(video, start=start, frames=frames)


# ====================================================================== engines
class Engine:
    """Runs a function over videos; :meth:`map` is the only thing engines differ in."""

    name = "engine"

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any,
            desc: str = "videos") -> list[Any]:
        """``[fn(item, *shared) for item in items]``, in order (``fn`` a module-level function)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the engine started (a local Ray instance)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ pipeline work
    def extract(self, pipe: Any, videos: Sequence[Any], start: int = 0,
                frames: int | None = None) -> list[int]:
        """Fill ``pipe``'s cache with the detections and features of ``videos``; frames each."""
        if pipe.cache_dir is None:
            raise ValueError("extract fills the detection cache: the pipeline needs a cache_dir")
        return self.map(_extract_count_task, list(videos), pack_pipeline(pipe, False), start,
                        frames, desc="extract")

    def model_inputs(self, pipe: Any, videos: Sequence[Any], start: int = 0,
                     frames: int | None = None) -> list[Any]:
        """What ``pipe.model`` consumes for each video (``Pipeline.model_input``). Detections are
        extracted by the engine; frame sources and snippet features are prepared here."""
        if pipe.consumes not in ("detections", "frames+detections"):
            return [pipe.model_input(v, start, frames) for v in videos]
        detections = self.map(_extract_task, list(videos), pack_pipeline(pipe, False), start,
                              frames, desc="extract")
        if pipe.consumes == "detections":
            return detections
        from stgraph.models.late_fusion import FramesAndDetections

        return [FramesAndDetections(pipe.source(v, start, frames), d)
                for v, d in zip(videos, detections)]

    def score(self, pipe: Any, videos: Sequence[Any], start: int = 0,
              frames: int | None = None) -> Any:
        """One :class:`~stgraph.scores.ScoreTable` over ``videos`` (``Pipeline.score`` each)."""
        from stgraph.scores import ScoreTable

        pipe.model.check_is_fitted("score")
        tables = self.map(_score_task, list(videos), pack_pipeline(pipe, True), start, frames,
                          desc="score")
        return ScoreTable.concat(tables)


class LocalEngine(Engine):
    """This process, one video after the other (the default)."""

    name = "local"

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any,
            desc: str = "videos") -> list[Any]:
        from tqdm.auto import tqdm

        return [fn(item, *shared) for item in tqdm(items, desc=desc, unit="video",
                                                   disable=not self.progress or len(items) < 2)]

    def score(self, pipe: Any, videos: Sequence[Any], start: int = 0,
              frames: int | None = None) -> Any:
        from stgraph.scores import ScoreTable

        return ScoreTable.concat([pipe.score(v, start=start, frames=frames) for v in videos])

    def model_inputs(self, pipe: Any, videos: Sequence[Any], start: int = 0,
                     frames: int | None = None) -> list[Any]:
        return [pipe.model_input(v, start, frames) for v in videos]


class RayEngine(Engine):
    """One Ray task (1 CPU) per video.

    Args:
        address: a running Ray cluster (``"auto"`` on a cluster node, ``"HOST:6379"``, or
            ``"ray://HOST:10001"`` through the Ray client); None starts a local instance that
            :meth:`close` stops. When Ray is already initialised in this process, it is used.
        num_cpus: CPUs of the local instance (None: all); ignored with ``address``.
        progress: progress bar over finished videos.
        init_options: more keyword arguments for ``ray.init`` (e.g. ``_temp_dir``,
            ``runtime_env``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 progress: bool = True, **init_options: Any) -> None:
        super().__init__(progress)
        self.ray = import_ray()
        self._started = False
        if not self.ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, **init_options}
            if address is None:
                options["num_cpus"] = num_cpus
            self.ray.init(address=address, **options)
            self._started = True

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *shared: Any,
            desc: str = "videos") -> list[Any]:
        from tqdm.auto import tqdm

        ray = self.ray
        task = ray.remote(num_cpus=1)(fn)
        shared_refs = [ray.put(value) for value in shared]
        refs = [task.remote(item, *shared_refs) for item in items]
        pending = list(refs)
        with tqdm(total=len(refs), desc=f"{desc} (ray)", unit="video",
                  disable=not self.progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                bar.update(len(done))
        return ray.get(refs)

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False
