"""Writers of tiny fake benchmark datasets in their official layouts (for tests/test_datasets_*.py).

Frames are 16×24 noise images (a different seed per frame, so videos are not constant); videos are
MJPG .avi files, which OpenCV writes and counts exactly on every platform.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

H, W = 16, 24


def frame(seed: int) -> np.ndarray:
    """A 16×24×3 uint8 noise frame."""
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def write_frames(folder: Path, n: int, ext: str = ".jpg", first: int = 0, digits: int = 3, prefix: str = "") -> Path:
    """``n`` frames ``{prefix}{first:0digits}{ext}`` ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        assert cv2.imwrite(str(folder / f"{prefix}{first + i:0{digits}d}{ext}"), frame(i))
    return folder


def write_video(path: Path, n: int, fps: float = 25.0) -> Path:
    """An MJPG .avi with ``n`` frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened(), path
    for i in range(n):
        writer.write(frame(i))
    writer.release()
    return path


def masks_for(labels: Sequence[int], seed: int = 0) -> np.ndarray:
    """Masks uint8 [T, H, W]: a small random rectangle set to 255 in each frame labelled 1."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((len(labels), H, W), np.uint8)
    for t, lab in enumerate(labels):
        if lab:
            y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
            masks[t, y:y + 3, x:x + 3] = 255
    return masks


def write_mask_images(folder: Path, masks: np.ndarray, ext: str = ".bmp", first: int = 1, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(masks):
        assert cv2.imwrite(str(folder / f"{prefix}{first + i:03d}{ext}"), m)
    return folder


def write_avenue_mat(path: Path, masks: np.ndarray) -> Path:
    """``volLabel``: a 1×T MATLAB cell of H×W uint8 masks, as in ``{N}_label.mat``."""
    import scipy.io

    cell = np.empty((1, len(masks)), dtype=object)
    for i, m in enumerate(masks):
        cell[0, i] = (m > 0).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"volLabel": cell})
    return path


def write_synthetic_dataset(root: Path, n_train: int, n_test: int, n_frames: int,
                            size: tuple[int, int] = (96, 128), labels: bool = False) -> Path:
    """ROOT/training/videos/*.avi and ROOT/testing/videos/*.avi from the synthetic scene
    generator (seed 3, 3 people), plus ROOT/ground_truth/frame_labels.npz with ``labels``."""
    from stgraph.datasets.synthetic import make_normal_videos, make_test_videos

    for video in make_normal_videos(n_train, seed=3, n_frames=n_frames, n_people=3, size=size):
        video.write_video(root / "training" / "videos" / f"{video.name}.avi")
    tests = make_test_videos(n_test, seed=3, n_frames=n_frames, n_people=3, size=size)
    for video in tests:
        video.write_video(root / "testing" / "videos" / f"{video.name}.avi")
    if labels:
        (root / "ground_truth").mkdir()
        np.savez(root / "ground_truth" / "frame_labels.npz", **{v.name: v.labels for v in tests})
    return root
