"""`stgraph eval` and `stgraph plot` on hand-made tables of every kind: --kind, --normalize,
--smooth, label-length errors, pixel maps in the report (stgraph/cli.py, stgraph/report.py)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from _score_helpers import patch_table
from stgraph.cli import main
from stgraph.metrics import evaluate_frames
from stgraph.scores import ScoreTable

H, W, T = 96, 128, 12
SQUARE = 20          # the anomalous bright square, frames 6..11, moving right 4 px per frame


def square_box(t: int) -> list[int]:
    return [8 + 4 * t, 40, 8 + 4 * t + SQUARE, 40 + SQUARE]


def labels() -> dict[str, np.ndarray]:
    return {"01": (np.arange(T) >= 6).astype(np.uint8)}


def frame_table() -> ScoreTable:
    """Frame rows from frame 2 on (history of 2) with 24x32 pixel maps bright on the square."""
    rng = np.random.default_rng(0)
    maps = rng.random((T - 2, 24, 32)) * 0.2
    scores = rng.random(T - 2) * 0.3
    for i, t in enumerate(range(2, T)):
        if t >= 6:
            x1, y1, x2, y2 = (np.array(square_box(t)) / 4).astype(int)
            maps[i, y1:y2, x1:x2] = 0.9
            scores[i] += 1.0
    return ScoreTable.from_frames("01", np.arange(2, T), scores, n_frames=T, image_hw=(H, W),
                                  pixel_maps=maps)


def object_table() -> ScoreTable:
    """One object per frame on the square (scored high from frame 6) plus a background box."""
    frames, boxes, scores = [], [], []
    for t in range(T):
        frames += [t, t]
        boxes += [square_box(t), [80, 60, 120, 88]]
        scores += [0.9 if t >= 6 else 0.2, 0.3]
    n = len(frames)
    boxes = np.array(boxes, np.float32)
    return ScoreTable({"video": ["01"] * n, "kind": ["object"] * n, "frame": frames,
                       "object_id": np.arange(n) % 2, "x1": boxes[:, 0], "y1": boxes[:, 1],
                       "x2": boxes[:, 2], "y2": boxes[:, 3], "label": np.zeros(n, int),
                       "class_name": ["person"] * n, "det_score": np.ones(n), "score": scores})


def grid_patch_table() -> ScoreTable:
    """Patch rows of a 2x2 and a 4x4 grid; cells holding the square's centre score high once it
    is anomalous."""
    rng = np.random.default_rng(1)
    cells = [(g, name, [c * W // n, r * H // n, (c + 1) * W // n, (r + 1) * H // n])
             for g, (name, n) in enumerate((("grid2x2", 2), ("grid4x4", 4)))
             for r in range(n) for c in range(n)]
    frames, boxes, scores, names, grids = [], [], [], [], []
    for t in range(T):
        x1, y1, x2, y2 = square_box(t)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for g, name, box in cells:
            inside = box[0] <= cx < box[2] and box[1] <= cy < box[3]
            frames.append(t)
            boxes.append(box)
            scores.append(rng.random() * 0.3 + (1.0 if inside and t >= 6 else 0.0))
            names.append(name)
            grids.append(g)
    return ScoreTable.from_patches("01", frames, boxes, scores, names, grid_index=grids)


@pytest.fixture
def scene(tmp_path) -> Path:
    """labels.npz, Ped2-style masks (1-based) and a 0-based frame folder of video 01."""
    np.savez(tmp_path / "labels.npz", **labels())
    np.savez(tmp_path / "long.npz", **{"01": np.zeros(T + 3, np.uint8)})
    np.savez(tmp_path / "short.npz", **{"01": np.zeros(T - 1, np.uint8)})
    masks, frames = tmp_path / "masks" / "Test001", tmp_path / "frames" / "01"
    masks.mkdir(parents=True)
    frames.mkdir(parents=True)
    for t in range(T):
        mask = np.zeros((H, W), np.uint8)
        image = np.full((H, W, 3), 60, np.uint8)
        x1, y1, x2, y2 = square_box(t)
        image[y1:y2, x1:x2] = 220
        if t >= 6:
            mask[y1:y2, x1:x2] = 255
        cv2.imwrite(str(masks / f"{t + 1:03d}.png"), mask)
        cv2.imwrite(str(frames / f"{t:03d}.png"), image)
    return tmp_path


@pytest.mark.parametrize("command", ["eval", "plot"])
@pytest.mark.parametrize("which, count", [("long", T + 3), ("short", T - 1)])
def test_labels_of_another_length_are_an_error(scene, capsys, command, which, count):
    scores = frame_table().to_csv(scene / "scores.csv")
    out = ["--out", str(scene / ("m.json" if command == "eval" else "c.png"))]
    code = main([command, "--scores", str(scores), "--labels", str(scene / f"{which}.npz"), *out])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == (f"stgraph {command}: error: video '01' has {T} frames (0..{T - 1}) "
                            f"but {count} frame labels; labels must give one value per frame\n")
    assert not (scene / "m.json").exists() and not (scene / "c.png").exists()


def test_eval_kind_normalize_smooth(scene, capsys):
    table = ScoreTable.concat([frame_table(), object_table()])
    table.to_csv(scene / "mixed.csv")
    for options, kind, normalize, smooth in (([], None, False, 1),
                                             (["--kind", "object", "--normalize"], "object", True, 1),
                                             (["--kind", "frame", "--smooth", "3"], "frame", False, 3)):
        out = scene / "metrics.json"
        assert main(["eval", "--scores", str(scene / "mixed.csv"), "--labels",
                     str(scene / "labels.npz"), "--out", str(out), *options]) == 0
        printed = capsys.readouterr().out
        metrics = json.loads(out.read_text())
        expected = evaluate_frames(table.frame_scores(kind=kind, normalize=normalize,
                                                      smooth=smooth), labels())
        assert metrics["micro_auc"] == pytest.approx(expected["micro_auc"])
        assert metrics["settings"] == {"kind": kind, "reduce": "max", "smooth": smooth,
                                       "normalize": normalize}
        assert f"frame scores from {kind or 'frame'} rows" in printed
    # object and frame rows rank the frames differently: --kind changes the answer
    by_kind = {k: evaluate_frames(table.frame_scores(kind=k), labels())["youden"]["threshold"]
               for k in ("object", "frame")}
    assert by_kind["object"] != by_kind["frame"]


def test_eval_report_of_a_frame_table_with_pixel_maps(scene, capsys):
    table = frame_table()
    table.to_json(scene / "frames.json")
    out = scene / "report"
    code = main(["eval", "--scores", str(scene / "frames.json"), "--labels",
                 str(scene / "labels.npz"), "--masks", str(scene / "masks"), "--report", str(out),
                 "--video-root", str(scene / "frames"), "--out", str(scene / "m.json")])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "frame rows as regions, pixel scores from maps" in printed
    region = json.loads((scene / "m.json").read_text())["region"]
    assert region["kind"] == "frame" and region["pixel_scores"] == {"01": "maps"}
    assert region["image_hw"] == {"01": [H, W]}
    assert region["pixel_auc"] > 0.9           # the maps are bright on the square
    heatmap = cv2.imread(str(out / "heatmaps" / "01.png"))
    assert heatmap is not None and heatmap.shape[0] >= 300
    summary = (out / "summary.md").read_text()
    peak = int(np.arange(2, T)[np.argmax(table["score"])])
    assert f"video 01 frame {peak}" in summary and "heatmaps/01.png" in summary
    assert "pixel scores from | maps: 01" in summary and "candidate regions | frame rows" in summary
    # frame rows have no box: a false alarm is shown as the whole frame (enlarged x3), legend under
    from stgraph.report import LEGEND_HEIGHT

    false_alarms = sorted((out / "examples").glob("false_positive_*.png"))
    assert false_alarms and all(cv2.imread(str(p)).shape[:2] == (H * 3 + LEGEND_HEIGHT, W * 3)
                                for p in false_alarms)


def test_plot_patch_and_frame_tables_with_overlays(scene, capsys):
    patches = patch_table("01", n_frames=T)
    patches.to_csv(scene / "patches.csv")
    assert main(["plot", "--scores", str(scene / "patches.csv"), "--labels",
                 str(scene / "labels.npz"), "--out", str(scene / "curve.png"), "--normalize",
                 "--overlay", str(scene / "frames" / "01"),
                 "--overlay-out", str(scene / "peak.png")]) == 0
    assert (scene / "curve.png").is_file() and (scene / "peak.png").is_file()
    frame_table().to_csv(scene / "frames.csv")
    assert main(["plot", "--scores", str(scene / "frames.csv"), "--out", str(scene / "c2.png"),
                 "--overlay", str(scene / "frames" / "01"),
                 "--overlay-out", str(scene / "peak2.png")]) == 0
    peak = cv2.imread(str(scene / "peak2.png"))
    assert peak.shape[:2] == (H, W)
    # the pixel map is blended in: the grey square (map 0.9 = the top of the colour scale) turns
    # yellow, the grey background (map < 0.2) dark purple
    x1, y1, x2, y2 = square_box(int(np.arange(2, T)[np.argmax(frame_table()["score"])]))
    blue, green, red = peak[(y1 + y2) // 2, (x1 + x2) // 2].astype(int)
    assert red > 200 and green > 200 and red - blue > 30
    blue, green, red = peak[H - 5, W - 5].astype(int)
    assert red < 100 and green < 60 and blue > green
    assert main(["plot", "--scores", str(scene / "frames.csv"), "--out", str(scene / "c3.png"),
                 "--kind", "patch"]) == 2
    assert "the table has no patch rows" in capsys.readouterr().err


def test_eval_report_of_a_patch_table_draws_the_top_patches(scene, capsys):
    table = grid_patch_table()
    table.to_csv(scene / "patches.csv")
    out = scene / "report"
    assert main(["eval", "--scores", str(scene / "patches.csv"), "--labels",
                 str(scene / "labels.npz"), "--masks", str(scene / "masks"), "--report", str(out),
                 "--video-root", str(scene / "frames"), "--out", str(scene / "m.json")]) == 0
    assert "patch rows as regions, pixel scores from boxes" in capsys.readouterr().out
    metrics = json.loads((scene / "m.json").read_text())
    assert metrics["micro_auc"] == pytest.approx(1.0)   # the square's cells win from frame 6 on
    assert metrics["region"]["kind"] == "patch" and metrics["region"]["n_detections"] == T * 20
    missed = sorted((out / "examples").glob("missed_*.png"))
    assert missed and not (out / "heatmaps").exists()
    crop = cv2.imread(str(missed[0]))
    blue, green, red = (crop[..., c].astype(int) for c in range(3))
    assert np.any((red > 150) & (green < 80) & (blue < 80))  # the top patch, drawn red
