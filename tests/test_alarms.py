"""Alarm thresholds, debouncing on a hand-made score series, and the JSON-lines event log."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detectors.base import Detections
from stgraph.alarms import (AlarmTracker, EventWriter, default_threshold, detect_alarms,
                            read_events)
from stgraph.models.base import ScoreQuantiles
from stgraph.stream import FrameResult

#            frame: 0    1    2    3    4    5    6    7    8    9    10   11   12   13   14   15
SERIES = np.array([0.1, 0.9, 0.1, 0.1, 0.8, 0.9, 0.2, 0.95, 0.9, 0.1, 0.1, 0.1, 0.1, 0.7, 0.8,
                   0.9])


def spans(events):
    return [(e.start_frame, e.end_frame) for e in events]


def test_min_duration_drops_short_blips():
    events = detect_alarms(np.arange(16), SERIES, threshold=0.5, min_duration=3)
    # 1 (one frame) and 4-5 (two frames) are too short; 7-8 too; 13-15 ends the stream.
    assert spans(events) == [(13, 15)]


def test_merge_gap_joins_runs_separated_by_few_cold_frames():
    events = detect_alarms(np.arange(16), SERIES, threshold=0.5, min_duration=3, merge_gap=1)
    # 4-5 and 7-8 are one cold frame apart: one event 4-8; frame 1 is two cold frames away.
    assert spans(events) == [(4, 8), (13, 15)]
    first = events[0]
    assert first.peak_score == 0.95 and first.peak_frame == 7 and first.hot_frames == 4
    assert first.duration_frames == 5
    events = detect_alarms(np.arange(16), SERIES, threshold=0.5, min_duration=1, merge_gap=2)
    assert spans(events) == [(1, 8), (13, 15)]


def test_threshold_is_strict_and_nan_frames_are_cold():
    scores = np.array([0.5, 0.6, np.nan, 0.6, 0.5])
    assert spans(detect_alarms(np.arange(5), scores, threshold=0.5)) == [(1, 1), (3, 3)]
    assert spans(detect_alarms(np.arange(5), scores, threshold=0.5, merge_gap=1)) == [(1, 3)]


def test_times_and_skipped_frames():
    frames = np.array([0, 2, 4, 20, 22])  # a strided stream: 20 comes 15 frames after 4
    events = detect_alarms(frames, [0.9] * 5, threshold=0.5, merge_gap=3, fps=2.0)
    assert spans(events) == [(0, 4), (20, 22)]
    assert (events[0].start_time, events[0].end_time) == (0.0, 2.0)


def test_tracker_reports_an_event_as_soon_as_it_cannot_grow():
    tracker = AlarmTracker(0.5, min_duration=2, merge_gap=2)
    closed_at = {}
    for frame, score in enumerate([0.9, 0.9, 0.1, 0.1, 0.1, 0.1]):
        for event in tracker.update(frame, frame / 10, score):
            closed_at[frame] = event
        if frame == 1:
            assert tracker.active
    assert list(closed_at) == [4]  # two cold frames may still merge; the third closes it
    assert not tracker.active and tracker.close() == []
    with pytest.raises(ValueError, match="increase"):
        tracker.update(3, 0.3, 0.9)


def test_default_threshold_is_a_quantile_of_training_scores():
    class Fitted:
        train_scores_ = ScoreQuantiles.from_scores(np.linspace(0, 1, 1001))

    assert default_threshold(Fitted(), 0.99) == pytest.approx(0.99)
    assert default_threshold(Fitted(), 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="train_scores_"):
        default_threshold(object())
    with pytest.raises(ValueError, match="threshold"):
        AlarmTracker(math.nan)
    with pytest.raises(ValueError, match="min_duration"):
        AlarmTracker(0.5, min_duration=0)


def result(frame, scores, track_ids=None):
    n = len(scores)
    boxes = np.tile([[10.0, 10.0, 30.0, 50.0]], (n, 1)) + np.arange(n)[:, None]
    dets = Detections(boxes, np.ones(n), np.zeros(n, np.int64), frame_index=frame,
                      image_size=(100, 100), class_names=("person",), track_ids=track_ids)
    scores = np.asarray(scores, np.float64)
    return FrameResult(frame, frame / 25, dets, scores, float(scores.max()) if n else math.nan,
                       {})


def test_events_name_the_objects_involved_and_round_trip_as_json_lines(tmp_path):
    tracker = AlarmTracker(0.5, min_duration=2, merge_gap=0, video="cam", top_objects=2)
    stream = [result(0, [0.2]), result(1, [0.6, 0.9, 0.3], track_ids=[4, 5, 6]),
              result(2, [0.7, 0.1]), result(3, []), result(4, [0.2])]
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as log:
        for item in stream:
            for event in tracker.update_result(item):
                log.write(event)
                assert len(path.read_text().splitlines()) == log.count  # flushed at once
    events = read_events(path)
    assert len(events) == 1
    event = events[0]
    assert (event.video, event.start_frame, event.end_frame) == ("cam", 1, 2)
    assert event.start_time == pytest.approx(0.04) and event.peak_score == 0.9
    assert [(o["frame"], o["object_id"]) for o in event.objects] == [(1, 1), (2, 0)]
    assert event.objects[0]["track_id"] == 5 and event.objects[0]["class_name"] == "person"
    assert "track_id" not in event.objects[1]
    record = json.loads(path.read_text().splitlines()[0])
    assert record["objects"][0]["box"] == [11.0, 11.0, 31.0, 51.0]


def test_read_events_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_events(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video": "v"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_events(bad)
