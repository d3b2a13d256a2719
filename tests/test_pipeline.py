"""Pipeline: cached extraction, fit/score/save/load round trip, fps handed to the model, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.motion import MotionRegionDetector
from stgraph.datasets.synthetic import make_video
from stgraph.features import GeometryFeatures
from stgraph.io.frames import ArraySource
from stgraph.models import AnoGraph
from stgraph.pipeline import Pipeline, PipelineFileError, known_fps
from stgraph.scores import ScoreTable

SIZE = (96, 128)  # (H, W)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    """Two short synthetic clips written as .avi files at 10 fps (the cache needs a path)."""
    root = tmp_path_factory.mktemp("videos")
    return [make_video(seed, n_frames=16, n_people=3, size=SIZE).write_video(root / f"v{seed}.avi")
            for seed in (1, 2)]


def tiny_model() -> AnoGraph:
    return AnoGraph(hidden=8, epochs=2, train_window=5, batch_size=8, progress=False)


def pipeline(cache: Path | None = None, clip_length: int = 5, model=None) -> Pipeline:
    return Pipeline(MotionRegionDetector(clip_length=clip_length), GeometryFeatures(),
                    model if model is not None else tiny_model(), cache_dir=cache, progress=False)


class CountingDetector(MotionRegionDetector):
    """MotionRegionDetector that counts its detect calls."""

    calls = 0

    def detect(self, image, frame_index=0):
        CountingDetector.calls += 1
        return super().detect(image, frame_index=frame_index)


def same_detections(a, b) -> bool:
    return len(a) == len(b) and all(
        x.frame_index == y.frame_index and np.array_equal(x.boxes, y.boxes)
        and np.array_equal(x.scores, y.scores) and np.array_equal(x.features, y.features)
        for x, y in zip(a, b))


def test_second_extract_hits_the_cache(videos, tmp_path: Path):
    cache = tmp_path / "cache"
    pipe = Pipeline(CountingDetector(), GeometryFeatures(), None, cache_dir=cache, progress=False)
    CountingDetector.calls = 0
    first = pipe.extract(videos[0])
    assert CountingDetector.calls == 16 and sum(len(d) for d in first) > 0
    second = pipe.extract(videos[0])
    assert CountingDetector.calls == 16  # nothing detected again
    assert same_detections(first, second)
    assert len(list(cache.glob("*.npz"))) == 1


def test_cache_key_changes_with_settings(videos, tmp_path: Path):
    cache = tmp_path / "cache"
    default = pipeline(cache).extract(videos[0])
    other = pipeline(cache, clip_length=3).extract(videos[0])
    assert len(list(cache.glob("*.npz"))) == 2
    # clip_length 3 fills its buffer two frames earlier: really recomputed, not served from cache
    assert len(default[2]) == 0 and not same_detections(default, other)
    pipeline(cache).extract(videos[1])
    assert len(list(cache.glob("*.npz"))) == 3


def test_fit_score_save_load_round_trip(videos, tmp_path: Path):
    pipe = pipeline(tmp_path / "cache").fit([videos[0]])
    table = pipe.score(videos[1])
    assert isinstance(table, ScoreTable) and table.videos == ["v2"]
    assert list(table.video_frames["v2"]) == list(range(16)) and len(table) > 0
    loaded = Pipeline.load(pipe.save(tmp_path / "saved"), progress=False)
    assert isinstance(loaded.detector, MotionRegionDetector)
    assert loaded.detector.get_params() == pipe.detector.get_params()
    assert loaded.score(videos[1]) == table


class FpsRecorder:
    """A stand-in model that records the fps ``Pipeline.score`` hands it."""

    def score(self, detections, video="video", fps=None):
        self.fps = fps
        return ScoreTable.from_detections(video, detections, [np.zeros(len(d)) for d in detections])


@pytest.mark.parametrize("stride, expected", [(1, 10.0), (2, 5.0)])
def test_score_passes_the_source_fps_per_kept_frame(videos, stride, expected):
    model = FpsRecorder()
    pipe = Pipeline(MotionRegionDetector(), GeometryFeatures(), model, stride=stride, progress=False)
    pipe.score(videos[0])
    assert model.fps == pytest.approx(expected)


def test_unknown_fps_leaves_the_model_default():
    frames = np.zeros((6, *SIZE, 3), np.uint8)
    assert known_fps(ArraySource(frames)) is None
    model = FpsRecorder()
    Pipeline(MotionRegionDetector(), GeometryFeatures(), model, progress=False).score(frames)
    assert model.fps is None


def test_errors(tmp_path: Path):
    pipe = pipeline(tmp_path / "cache")
    with pytest.raises(ValueError, match="no frames"):
        pipe.extract(np.zeros((0, *SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match="at least one training video"):
        pipe.fit([])
    with pytest.raises(OSError, match="nothing.avi"):
        pipe.extract(tmp_path / "nothing.avi")
    with pytest.raises(FileNotFoundError, match="pipeline.json"):
        Pipeline.load(tmp_path)


@pytest.mark.parametrize("spec", [
    {"class": "stgraph.fileio.atomic_write_text", "params": {"path": "PWNED", "text": "x"}},
    {"class": "os:system", "params": {"command": "touch PWNED"}},
    {"class": "MotionRegionDetector", "params": {"__class__": "x"}},
])
def test_a_crafted_pipeline_file_is_refused_and_writes_nothing(videos, tmp_path: Path,
                                                               monkeypatch, spec):
    saved = pipeline(tmp_path / "cache").fit([videos[0]]).save(tmp_path / "saved")
    config = json.loads((saved / "pipeline.json").read_text())
    config["detector"] = spec
    (saved / "pipeline.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(PipelineFileError, match="pipeline.json"):
        Pipeline.load(saved, progress=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
