"""`stgraph eval --report`: the report folder of a tiny synthetic scene (stgraph/report.py)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from stgraph.cli import main
from stgraph.metrics import evaluate_frames
from stgraph.report import crop_around, pick_examples, write_report
from stgraph.scores import FrameScores, ScoreTable

H, W, T = 120, 160, 20
ANOMALY_BOX = [20, 10, 36, 30]       # the anomalous object, frames 10..19 of both videos
FP_BOX = [40, 30, 60, 44]            # a false alarm in video 02, frame 3
MISSED = ("01", 12)                  # the anomalous object scored low there


def scene_table() -> ScoreTable:
    rows = []  # (video, frame, box, score)
    rng = np.random.default_rng(0)
    for video in ("01", "02"):
        for frame in range(T):
            rows.append((video, frame, [2, 2, 12, 12], 0.1 + 0.01 * rng.random()))
            if frame >= 10:
                score = 0.05 if (video, frame) == MISSED else 0.8 + 0.01 * rng.random()
                rows.append((video, frame, ANOMALY_BOX, score))
    rows.append(("02", 3, FP_BOX, 0.95))
    rows.sort(key=lambda r: (r[0], r[1]))
    object_id = [sum(1 for r in rows[:i] if r[:2] == row[:2]) for i, row in enumerate(rows)]
    boxes = np.array([r[2] for r in rows], np.float32)
    n = len(rows)
    return ScoreTable({
        "video": [r[0] for r in rows], "kind": np.full(n, "object"), "frame": [r[1] for r in rows],
        "object_id": object_id,
        "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        "label": np.zeros(n, np.int64), "class_name": np.full(n, "person"),
        "det_score": np.ones(n, np.float32), "score": [r[3] for r in rows]})


def frame_labels() -> dict[str, np.ndarray]:
    labels = np.zeros(T, np.uint8)
    labels[10:] = 1
    return {"01": labels, "02": labels.copy()}


@pytest.fixture()
def scene(tmp_path):
    """Score table, labels, Ped2-style 1-based mask folders and 0-based frame folders."""
    table = scene_table()
    table.to_csv(tmp_path / "scores.csv")
    np.savez(tmp_path / "labels.npz", **frame_labels())
    for video in ("01", "02"):
        masks = tmp_path / "masks" / f"Test0{video}"
        frames = tmp_path / "frames" / video
        masks.mkdir(parents=True)
        frames.mkdir(parents=True)
        for t in range(T):
            mask = np.zeros((H, W), np.uint8)
            if t >= 10:
                x1, y1, x2, y2 = ANOMALY_BOX
                mask[y1:y2, x1:x2] = 255
            cv2.imwrite(str(masks / f"{t + 1:03d}.png"), mask)
            cv2.imwrite(str(frames / f"{t:03d}.png"), np.full((H, W, 3), 8 * t, np.uint8))
    return tmp_path


def test_pick_examples_finds_the_planted_errors():
    table = scene_table()
    fs = table.frame_scores()
    false_positives, missed = pick_examples(fs, frame_labels(), n=3, min_gap=5)
    assert (false_positives[0].video, false_positives[0].frame) == ("02", 3)
    assert false_positives[0].score == pytest.approx(0.95)
    assert (missed[0].video, missed[0].frame) == MISSED
    # min_gap: no two picks of one kind within 5 frames of each other in one video
    for picks in (false_positives, missed):
        for i, a in enumerate(picks):
            later = picks[i + 1:]
            assert all(not (a.video == b.video and abs(a.frame - b.frame) < 5) for b in later)


def test_crop_around_widens_and_clips():
    image = np.zeros((100, 200, 3), np.uint8)
    assert crop_around(image, [[90, 40, 110, 60]], margin=1.0, min_size=10).shape == (60, 60, 3)
    # centre (5, 5), half side 20, clipped at the top-left corner: 0..25
    assert crop_around(image, [[0, 0, 10, 10]], margin=0.0, min_size=40).shape == (25, 25, 3)
    assert crop_around(image, np.zeros((0, 4))).shape == image.shape


def test_eval_report_folder_with_masks_and_frames(scene, capsys):
    out = scene / "report"
    code = main(["eval", "--scores", str(scene / "scores.csv"),
                 "--labels", str(scene / "labels.npz"),
                 "--masks", str(scene / "masks"), "--report", str(out),
                 "--video-root", str(scene / "frames")])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "RBDC" in printed and "report" in printed

    metrics = json.loads((out / "metrics.json").read_text())
    expected = evaluate_frames(scene_table().frame_scores(), frame_labels())
    assert metrics["micro_auc"] == pytest.approx(expected["micro_auc"])
    region = metrics["region"]
    assert region["n_regions"] == 20 and region["n_tracks"] == 2
    # 19 of 20 regions are found by boxes scored 0.8+ ahead of any false positive; the 0.95
    # false alarm costs 1/40 FP per frame first: RBDR 0 until 1/40, then 19/20 (the missed
    # region's 0.05 box only enters after 40 normal boxes = 1 FP per frame)
    assert region["rbdc"] == pytest.approx((1 - 1 / 40) * 19 / 20)
    assert region["tbdc"] == pytest.approx(1 - 1 / 40)
    assert 0.5 < region["pixel_auc"] <= 1.0

    for name in ("summary.md", "roc.png", "region_curves.png", "curves/01.png", "curves/02.png"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    assert "RBDC" in summary and "video 02 frame 3" in summary and "video 01 frame 12" in summary
    crops = sorted(p.name for p in (out / "examples").iterdir())
    assert any(n.startswith("false_positive_00_02_000003") for n in crops)
    assert any(n.startswith("missed_00_01_000012") for n in crops)
    crop = cv2.imread(str(out / "examples" / next(n for n in crops if "_02_000003" in n)))
    # window around FP_BOX: x 2..98, y 0..85 (96 px minimum), enlarged x3 to >= 240 px; legend under
    from stgraph.report import LEGEND_HEIGHT

    assert crop.shape == (85 * 3 + LEGEND_HEIGHT, 96 * 3, 3)
    blue, green, red = (crop[..., c].astype(int) for c in range(3))
    assert np.any((red > 150) & (green < 80) & (blue < 80))  # the top-scored box, drawn red


def test_report_without_frames_or_masks(tmp_path):
    table = scene_table()
    fs = table.frame_scores()
    metrics = evaluate_frames(fs, frame_labels())
    written = write_report(tmp_path / "r", table, fs, frame_labels(), metrics)
    assert not any(key.startswith("example:") for key in written)
    assert "region_curves" not in written
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "No frames given for videos" in summary and "Object level" not in summary
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["n_frames"] == 2 * T


def test_eval_report_errors_name_the_problem(scene, capsys):
    code = main(["eval", "--scores", str(scene / "scores.csv"),
                 "--labels", str(scene / "labels.npz"), "--masks", str(scene / "nowhere")])
    assert code == 2
    captured = capsys.readouterr()
    assert "mask root folder not found" in captured.err
    assert captured.out == ""  # checked before any metric is computed or printed
    (scene / "a_file").write_text("x")
    for flag, path, message in (("--report", scene / "a_file", "is a file; give a folder"),
                                ("--out", scene / "masks", "is a folder; give a file name")):
        code = main(["eval", "--scores", str(scene / "scores.csv"),
                     "--labels", str(scene / "labels.npz"), flag, str(path)])
        captured = capsys.readouterr()
        assert code == 2 and message in captured.err and captured.out == ""
