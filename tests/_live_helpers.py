"""Small fitted pipelines and videos shared by the streaming, watch and explanation tests."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from detectors.motion import MotionRegionDetector
from stgraph.datasets.synthetic import SyntheticVideo, make_video
from stgraph.features import GeometryFeatures
from stgraph.models import AnoGraph
from stgraph.pipeline import Pipeline

SIZE = (120, 160)  # (H, W): small frames keep detection cheap


def small_video(seed: int, n_frames: int = 40, anomalies: tuple[str, ...] = ()) -> SyntheticVideo:
    return make_video(seed, n_frames=n_frames, n_people=4, anomalies=anomalies, size=SIZE,
                      fps=10.0, anomaly_start=8 if anomalies else None)


@lru_cache(maxsize=None)
def fitted_pipeline(window_radius: int | None = 3, **model_options) -> Pipeline:
    """Motion detector + box geometry + a tiny AnoGraph fitted on two short normal videos.

    Cached: test modules share one fit per radius, so callers must not modify it.
    """
    model = AnoGraph(hidden=16, epochs=3, batch_size=8, window_radius=window_radius,
                     progress=False, **model_options)
    pipe = Pipeline(MotionRegionDetector(), GeometryFeatures(), model, progress=False)
    return pipe.fit([small_video(seed) for seed in (1, 2)])


def saved_pipeline(directory: Path, window_radius: int | None = 3) -> Path:
    return fitted_pipeline(window_radius).save(directory)
