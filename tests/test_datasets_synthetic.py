"""Synthetic walkway videos: determinism, ground truth, anomaly kinematics, video round trip."""
from __future__ import annotations

import numpy as np
import pytest

from stgraph.datasets.synthetic import (ANOMALY_KINDS, CLASS_NAMES, SyntheticVideo,
                                        make_normal_videos, make_test_videos, make_video)
from stgraph.io.frames import ArraySource, VideoFileSource

N_FRAMES = 60
START = 20


@pytest.fixture(scope="module")
def videos() -> dict[str, SyntheticVideo]:
    """One video per anomaly kind (same seed), anomalies starting at frame START."""
    return {kind: make_video(3, n_frames=N_FRAMES, anomalies=(kind,), anomaly_start=START)
            for kind in ANOMALY_KINDS}


def centres(obj) -> np.ndarray:
    return (obj.boxes[:, :2] + obj.boxes[:, 2:]) / 2  # [T, 2]


def steps(obj, frames: np.ndarray) -> np.ndarray:
    """[K, 2] centre displacement between consecutive frames where the object is visible in both."""
    both = obj.visible[:-1] & obj.visible[1:] & frames[:-1]
    return np.diff(centres(obj), axis=0)[both]


def test_same_seed_same_video_different_seed_different():
    a, b = (make_video(7, n_frames=20, anomalies=("fast",)) for _ in range(2))
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    for x, y in zip(a.object_boxes, b.object_boxes):
        np.testing.assert_array_equal(x, y)
    c = make_video(8, n_frames=20, anomalies=("fast",))
    assert not np.array_equal(a.frames, c.frames)


def test_frames_and_labels_shapes(videos):
    video = videos["fast"]
    assert video.frames.shape == (N_FRAMES, 240, 360, 3) and video.frames.dtype == np.uint8
    assert video.labels.shape == (N_FRAMES,) and video.labels.dtype == np.uint8
    np.testing.assert_array_equal(video.frames[..., 0], video.frames[..., 2])  # grey: B = G = R
    assert video.anomaly_kinds == ("fast",) and "anomalies=('fast',)" in repr(video)


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_labels_match_gt_boxes_and_start(videos, kind):
    video = videos[kind]
    has_box = np.array([len(b) > 0 for b in video.gt_boxes], np.uint8)
    np.testing.assert_array_equal(video.labels, has_box)
    assert video.labels[:START].sum() == 0 and video.labels.sum() > 0
    anomalous = [o for o in video.objects if o.kind == kind]
    assert len(anomalous) == 1
    visible = np.array([kind in k for k in video.object_kinds])
    np.testing.assert_array_equal(video.labels, visible & (np.arange(N_FRAMES) >= START))
    if kind != "loitering":  # the others enter the frame at START; the loiterer walks in before
        assert not visible[:START].any()


def test_fast_object_moves_at_least_three_times_normal_speed(videos):
    video = videos["fast"]
    everywhere = np.ones(N_FRAMES, bool)
    fast = next(o for o in video.objects if o.kind == "fast")
    normal = [o for o in video.objects if o.kind == "normal"]
    fast_speed = np.linalg.norm(steps(fast, everywhere), axis=1).mean()
    normal_steps = np.concatenate([steps(o, everywhere) for o in normal])
    normal_speed = np.linalg.norm(normal_steps, axis=1).mean()
    assert fast_speed >= 3 * normal_speed
    assert 1.0 <= normal_speed <= 2.0


def test_normal_people_walk_horizontally_and_wrong_direction_vertically(videos):
    video = videos["wrong_direction"]
    everywhere = np.ones(N_FRAMES, bool)
    for obj in video.objects:
        dx, dy = np.abs(steps(obj, everywhere)).mean(axis=0)
        if obj.kind == "normal":
            assert dx >= 1.0 and dy <= 0.1
        else:
            assert dx == 0 and dy >= 1.0


def test_shape_anomaly_is_a_wide_vehicle(videos):
    video = videos["shape"]
    vehicle = next(o for o in video.objects if o.kind == "shape")
    w, h = (vehicle.boxes[0, 2:] - vehicle.boxes[0, :2])
    assert w > 1.5 * h and vehicle.shape == "vehicle"
    person = next(o for o in video.objects if o.kind == "normal")
    pw, ph = person.boxes[0, 2:] - person.boxes[0, :2]
    assert ph > 1.5 * pw


def test_loiterer_stands_still_from_the_start_frame(videos):
    video = videos["loitering"]
    loiterer = next(o for o in video.objects if o.kind == "loitering")
    after = np.arange(N_FRAMES) >= START
    assert np.all(steps(loiterer, after) == 0)
    assert loiterer.anomalous[START:].all() and not loiterer.anomalous[:START].any()
    walking = steps(loiterer, ~after)
    assert len(walking) == 0 or np.abs(walking[:, 0]).min() >= 1.0


@pytest.mark.parametrize("kind", ["fast", "shape"])
def test_visible_boxes_stay_inside_the_frame(videos, kind):
    video = videos[kind]
    h, w = video.size
    boxes = np.concatenate(video.object_boxes)
    assert len(boxes) > 0
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= w) and np.all(boxes[:, 3] <= h)
    assert np.all(boxes[:, 2:] > boxes[:, :2])
    # objects enter and leave: some frame boxes are clipped at an edge, trajectories leave the frame
    assert any((b[:, 0] == 0).any() or (b[:, 2] == w).any() for b in video.object_boxes)


def test_people_are_visible_to_frame_differencing(videos):
    video = videos["fast"]
    frames = video.frames[..., 0].astype(np.float32)
    background = np.median(frames, axis=0)
    inside_diff, outside_diff, contrast = [], [], []
    for t in range(0, N_FRAMES - 1, 5):
        occupied = np.zeros(video.size, bool)
        both = np.concatenate([video.object_boxes[t], video.object_boxes[t + 1]])
        for x1, y1, x2, y2 in both.astype(int):
            occupied[y1:y2, x1:x2] = True
        diff = np.abs(frames[t + 1] - frames[t])
        inside_diff.append(diff[occupied].mean())
        outside_diff.append(diff[~occupied].mean())
        for x1, y1, x2, y2 in video.object_boxes[t].astype(int):
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            core = np.s_[cy - 3:cy + 3, cx - 2:cx + 2]  # inside the body
            contrast.append(np.abs(frames[t][core] - background[core]).mean())
    assert np.mean(inside_diff) > 5 * np.mean(outside_diff)
    assert np.mean(outside_diff) < 4  # sensor noise only
    assert np.median(contrast) > 50


def test_ground_truth_detections_align_with_views(videos):
    video = videos["shape"]
    dets = video.ground_truth_detections()
    assert len(dets) == N_FRAMES
    for t, d in enumerate(dets):
        assert d.frame_index == t and d.image_size == video.size and d.class_names == CLASS_NAMES
        np.testing.assert_array_equal(d.boxes, video.object_boxes[t])
        np.testing.assert_array_equal(d.track_ids, video.track_ids[t])
        expected = ["vehicle" if k == "shape" else "person" for k in video.object_kinds[t]]
        assert d.names == expected


def test_source_and_video_file_round_trip(videos, tmp_path):
    video = videos["fast"]
    source = video.source()
    assert isinstance(source, ArraySource) and len(source) == N_FRAMES and source.fps == 10
    first = next(iter(source))
    np.testing.assert_array_equal(first.image, video.frames[0])
    path = video.write_video(tmp_path / "clip.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    read = VideoFileSource(path).read_all()
    assert len(read) == N_FRAMES and read[0].image.shape == video.frames[0].shape
    error = np.abs(read[10].image.astype(int) - video.frames[10]).mean()
    assert error < 6  # lossy codec, same picture


def test_normal_and_test_sets():
    normal = make_normal_videos(2, seed=1, n_frames=30, n_people=4)
    tests = make_test_videos(3, seed=1, n_frames=40, kinds=("fast", "shape"))
    assert [v.name for v in normal] == ["train-00", "train-01"]
    assert all(v.labels.sum() == 0 and v.anomaly_kinds == () for v in normal)
    assert not np.array_equal(normal[0].frames, normal[1].frames)
    assert [v.anomaly_kinds for v in tests] == [("fast",), ("shape",), ("fast",)]
    assert all(0 < v.labels.sum() < len(v) for v in tests)
    assert not np.array_equal(make_normal_videos(1, seed=1, n_frames=30)[0].frames[0],
                              make_test_videos(1, seed=1, n_frames=30)[0].frames[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown anomaly kinds"):
        make_video(0, anomalies=("explosion",))
    with pytest.raises(ValueError, match="anomaly_start"):
        make_video(0, n_frames=10, anomalies=("fast",), anomaly_start=10)
    with pytest.raises(ValueError, match="n_frames"):
        make_video(0, n_frames=1)
    with pytest.raises(ValueError, match="size"):
        make_video(0, size=(32, 400))
