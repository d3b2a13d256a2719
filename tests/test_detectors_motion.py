"""Moving-region detector (STRL Algorithm 1): hand-checked maps and boxes, synthetic video, Ped2."""
from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from detectors.base import DetectionError
from detectors.motion import MotionRegionDetector, motion_maps, region_boxes

HEIGHT, WIDTH = 240, 360


def _scaled(boxes: np.ndarray, factor: float) -> np.ndarray:
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * factor / 2
    return np.concatenate([centres - half, centres + half], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[Na, Nb] IoU of xyxy boxes."""
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a, area_b = (np.prod(x[:, 2:] - x[:, :2], axis=1) for x in (a, b))
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _video(num_frames: int = 10, moving: bool = True,
           seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Textured static background, two textured rectangles (4 px/frame right; 3 px left and 2 up)
    and sensor noise. Returns BGR uint8 frames and the true [2, 4] xyxy boxes of each frame."""
    rng = np.random.default_rng(seed)
    texture = rng.uniform(0, 255, (HEIGHT, WIDTH)).astype(np.float32)
    background = (cv2.GaussianBlur(texture, (0, 0), 2) - texture.mean()) * 3 + 110
    objects = [((40, 60), (4, 0), rng.uniform(150, 250, (50, 30))),
               ((250, 150), (-3, -2), rng.uniform(0, 60, (30, 40)))]
    frames, truth = [], []
    for t in range(num_frames):
        image, boxes = background.copy(), []
        for (x0, y0), (vx, vy), patch in objects:
            x, y = x0 + vx * t * moving, y0 + vy * t * moving
            image[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
            boxes.append([x, y, x + patch.shape[1], y + patch.shape[0]])
        image += rng.normal(0, 2.0, image.shape)
        frames.append(cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
        truth.append(np.array(boxes, np.float32))
    return frames, truth


def test_motion_maps_by_hand():
    # frames 0, 0, ramp: first differences (0, ramp), second difference ramp -> B = A = ramp
    slope = 0.002
    ramp = np.tile(np.arange(WIDTH, dtype=np.float32) * slope, (40, 1))
    clip = np.stack([np.zeros_like(ramp), np.zeros_like(ramp), ramp])
    edges, motion = motion_maps(clip)
    np.testing.assert_allclose(motion, ramp, atol=1e-6)
    # a blurred linear ramp is the same ramp; the normalised 5x5 Sobel gives its slope
    np.testing.assert_allclose(edges[10:-10, 10:-10], slope, rtol=1e-3)
    static_edges, static_motion = motion_maps(np.repeat(ramp[None], 4, axis=0))
    assert static_edges.max() == 0 and static_motion.max() == 0


def test_region_boxes_by_hand():
    mask = np.zeros((40, 60), np.uint8)
    mask[5:15, 10:30] = 1     # 20 x 10 region: kept
    mask[25:37, 45:53] = 1    # 8 px wide: not wider than min_size 8, dropped
    energy = np.full(mask.shape, 0.25, np.float32)
    boxes, scores = region_boxes(mask, energy, min_size=8, box_scale=1.5)
    # centre (20, 10), enlarged half sizes 15 and 7.5
    np.testing.assert_allclose(boxes, [[5, 2.5, 35, 17.5]])
    np.testing.assert_allclose(scores, [0.25])
    boxes, _ = region_boxes(mask, energy, min_size=8, box_scale=4.0)   # clipped to the mask
    np.testing.assert_allclose(boxes, [[0, 0, 60, 30]])


@pytest.mark.parametrize("work_size", [None, 256, (180, 120)])
def test_one_box_per_moving_object(work_size):
    detector = MotionRegionDetector(work_size=work_size)
    frames, truth = _video()
    outputs = [detector.detect(frame, frame_index=10 + i) for i, frame in enumerate(frames)]
    assert all(len(out) == 0 for out in outputs[:4])          # clip of 5 frames not yet full
    for out, boxes in zip(outputs[4:], truth[4:]):
        assert len(out) == 2
        assert out.image_size == (HEIGHT, WIDTH) and out.names == ["moving", "moving"]
        overlap = _iou(out.boxes, _scaled(boxes, 1.5))
        assert overlap.max(axis=0).min() > 0.3                # every object is covered by a box
        assert np.all((out.scores > 0) & (out.scores <= 1))
    assert [out.frame_index for out in outputs] == list(range(10, 20))


def test_static_sequence_gives_no_box():
    detector = MotionRegionDetector()
    frames, _ = _video(moving=False)
    assert sum(len(detector.detect(frame, i)) for i, frame in enumerate(frames)) == 0


def test_reset_empties_the_clip():
    detector = MotionRegionDetector(clip_length=3)
    frames, _ = _video(num_frames=6)
    assert [len(detector.detect(f, i)) for i, f in enumerate(frames[:3])] == [0, 0, 2]
    detector.reset()
    assert [len(detector.detect(f, i)) for i, f in enumerate(frames[3:])] == [0, 0, 2]


def test_frame_size_change_needs_reset():
    detector = MotionRegionDetector()
    detector.detect(np.zeros((HEIGHT, WIDTH, 3), np.uint8), 0)
    with pytest.raises(DetectionError, match=r"frame 1 has size \(100, 100\).*reset\(\)"):
        detector.detect(np.zeros((100, 100, 3), np.uint8), 1)
    detector.reset()
    assert len(detector.detect(np.zeros((100, 100, 3), np.uint8), 1)) == 0


@pytest.mark.parametrize("image, match", [
    ([[0, 1], [2, 3]], "numpy image"),
    (np.zeros((10, 10, 4), np.uint8), r"H×W×3"),
    (np.zeros((10, 10, 3), np.float32), "uint8"),
])
def test_bad_images_raise(image, match):
    with pytest.raises(DetectionError, match=match):
        MotionRegionDetector().detect(image)


@pytest.mark.parametrize("kwargs, match", [
    (dict(clip_length=2), "clip_length"), (dict(opening_size=-1), "opening_size"),
    (dict(box_scale=0), "box_scale"), (dict(work_size=(10, 10, 3)), "work_size"),
])
def test_bad_params_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MotionRegionDetector(**kwargs)


def test_params_round_trip_and_repr():
    detector = MotionRegionDetector(work_size=(256, 256), edge_threshold=0.02)
    params = json.loads(json.dumps(detector.get_params()))
    assert MotionRegionDetector(**params).get_params() == params
    assert repr(detector).startswith("MotionRegionDetector(clip_length=5, work_size=[256, 256]")


def test_runs_in_a_few_milliseconds_per_frame():
    detector = MotionRegionDetector()
    frames, _ = _video(num_frames=25)
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        detector.detect(frame, i)
    per_frame_ms = (time.perf_counter() - start) / len(frames) * 1000
    assert per_frame_ms < 30  # about 1.5 ms on a shared 2-core CPU; loose against load spikes


@pytest.mark.slow
def test_ped2_walkers_are_found(shared_data):
    folder = shared_data / "ucsd_ped2" / "testing" / "frames" / "01"
    frames = [cv2.imread(str(folder / f"{i:03d}.jpg")) for i in range(12)]
    detector = MotionRegionDetector()
    outputs = [detector.detect(frame, i) for i, frame in enumerate(frames)]
    for out in outputs[4:]:
        assert len(out) >= 3                                   # a crowd of walkers is in view
        assert np.all(out.boxes[:, 3] - out.boxes[:, 1] > 12)
        assert np.all(out.boxes[:, 2] <= WIDTH) and np.all(out.boxes[:, 3] <= HEIGHT)
        assert np.all(out.centers[:, 1] > 60)                  # on the walkway, not the lawn
