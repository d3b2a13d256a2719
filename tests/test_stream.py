"""Live scoring: streaming equals batch scoring, fixed latency, bounded state, read-ahead thread."""
from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
from _live_helpers import fitted_pipeline, small_video

from detectors.base import Detections
from stgraph.stream import STAGES, AnalysedFrame, GraphStreamScorer, ReadAhead


@pytest.fixture(scope="module")
def pipe():
    return fitted_pipeline(window_radius=3)


@pytest.fixture(scope="module")
def video():
    return small_video(5, anomalies=("fast",))


@pytest.fixture(scope="module")
def detections(pipe, video):
    return pipe.extract(video)


def with_radius(model, radius):
    """The same fitted model with another test window radius."""
    other = copy.copy(model)
    other.window_radius = radius
    return other


def test_pipeline_stream_equals_batch_score(pipe, video):
    table = pipe.score(video)
    results = list(pipe.stream(video, prefetch=2))
    assert [r.frame_index for r in results] == list(range(len(video)))
    assert sum(len(r.detections) for r in results) == len(table) > 0
    for result in results:
        rows = table.objects_in_frame(table.videos[0], result.frame_index)
        np.testing.assert_allclose(result.scores, rows.column("score"), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(result.detections.boxes,
                                      np.stack([rows.column(c) for c in ("x1", "y1", "x2", "y2")],
                                               axis=1).reshape(-1, 4))
        expected = rows.column("score").max() if len(rows) else np.nan
        np.testing.assert_allclose(result.frame_score, expected, atol=1e-6)
        assert set(result.timings) == set(STAGES)
        assert result.image is not None and result.image.shape[:2] == video.size
        assert result.time_s == pytest.approx(result.frame_index / video.fps)


@pytest.mark.parametrize("radius", [0, 1, 4])
def test_stream_scorer_equals_batch_for_any_radius(pipe, detections, radius):
    model = with_radius(pipe.model, radius)
    batch = model.score(detections, video="v")
    results = list(GraphStreamScorer(model).run(detections))
    streamed = np.concatenate([r.scores for r in results])
    np.testing.assert_allclose(streamed, batch.column("score"), rtol=0, atol=1e-6)


def test_latency_is_radius_frames_and_flush_releases_the_rest(pipe, detections):
    radius = 3
    scorer = GraphStreamScorer(pipe.model, radius=radius)
    assert scorer.latency_frames == radius
    released = []
    for pushed, frame in enumerate(detections):
        out = scorer.push(frame)
        if pushed < radius:
            assert out == []
        else:
            assert [r.frame_index for r in out] == [detections[pushed - radius].frame_index]
        released += out
    rest = scorer.flush()
    assert [r.frame_index for r in rest] == [d.frame_index for d in detections[-radius:]]
    assert len(released) + len(rest) == len(detections)
    with pytest.raises(RuntimeError, match="flushed"):
        scorer.push(detections[0])


def test_video_shorter_than_the_window(pipe, detections):
    model = with_radius(pipe.model, 6)
    short = detections[4:7]
    batch = model.score(short, video="v", exact_windows=True)
    results = list(GraphStreamScorer(model).run(short))
    assert [r.frame_index for r in results] == [d.frame_index for d in short]
    np.testing.assert_allclose(np.concatenate([r.scores for r in results]),
                               batch.column("score"), atol=1e-6)


def test_retained_state_never_exceeds_the_window(pipe, detections):
    radius = 2
    scorer = GraphStreamScorer(pipe.model, radius=radius)
    features = next(d.features for d in detections if len(d))
    for t in range(40):  # a stream longer than the video: reuse one frame's objects
        frame = Detections(detections[10].boxes, detections[10].scores, detections[10].labels,
                           frame_index=t, image_size=detections[10].image_size,
                           features=np.resize(features, (len(detections[10]), features.shape[1])))
        scorer.push(frame)
        in_window, waiting = scorer.held_frames
        assert in_window <= 2 * radius + 1 and waiting <= radius + 1
        assert len(scorer.windows.window.frames) == in_window
    assert scorer.windows.window.frames == list(range(40 - (2 * radius + 1), 40))


def test_scorer_rejects_bad_frames(pipe, detections):
    scorer = GraphStreamScorer(pipe.model, radius=2)
    frame = next(d for d in detections if len(d))
    with pytest.raises(ValueError, match="no features"):
        scorer.push(Detections(frame.boxes, frame.scores, frame.labels, frame_index=0))
    with pytest.raises(ValueError, match="width"):
        scorer.push(frame.with_features(np.zeros((len(frame), 3), np.float32)))
    with pytest.raises(ValueError, match="radius"):
        GraphStreamScorer(pipe.model, radius=-1)


def test_read_ahead_passes_items_errors_and_stops_its_thread():
    def numbers(stop):
        for k in range(1000):
            if stop.is_set():
                return
            yield k

    with ReadAhead(numbers, maxsize=3) as items:
        got = [k for _, k in zip(range(10), items)]  # leave early: the thread must end
    assert got == list(range(10))
    assert not any(t.name == "stgraph-read-ahead" and t.is_alive() for t in threading.enumerate())

    def failing(stop):
        yield 1
        raise OSError("camera unplugged")

    with pytest.raises(OSError, match="unplugged"):
        with ReadAhead(failing, maxsize=2) as items:
            assert list(items)


def test_analysed_frames_are_scored_with_their_time(pipe, detections):
    scorer = GraphStreamScorer(pipe.model, radius=1)
    frames = [AnalysedFrame(d, 0.5 * k, timings={"decode": 0.01}) for k, d in enumerate(detections)]
    results = list(scorer.run(frames))
    assert [r.time_s for r in results] == [0.5 * k for k in range(len(detections))]
    assert all(r.timings["decode"] == 0.01 and r.timings["latency"] >= 0 for r in results)
