"""Bad-input matrix (issue 10): every bad input gets one clear line naming the problem.

Each case builds its bad input in ``tmp_path``, calls the API and checks the exception type, that
the message is one line, names the file or value at fault, says what is wrong, and never advises
unsafe loading. Cases that write files also check that no partial output is left behind.
(The command-line cases, run through ``python -m stgraph.cli``, join this matrix with the new CLI.)
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from detectors.base import DetectionError, Detections
from detectors.files import read_detections, write_detections
from stgraph.features.base import FeatureError

ONNX_HEAD = b"\x08\x07\x12\x07pytorch\x1a\x052.1.0"  # how an ONNX protobuf file begins


def onnx_file(tmp: Path, name: str = "backbone.onnx") -> Path:
    (tmp / name).write_bytes(ONNX_HEAD + bytes(256))
    return tmp / name


def torch_file(tmp: Path, name: str, cut: int | None = None) -> Path:
    """A torch.save archive, optionally cut to ``cut`` bytes (negative: from the end)."""
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4000)}, buffer)
    data = buffer.getvalue()
    (tmp / name).write_bytes(data if cut is None else data[:cut])
    return tmp / name


def text_file(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("these are not weights\n")
    return tmp / name


def roi_dim(weights: Path) -> int:
    from stgraph.features.roi import RoIAlignFeatures

    return RoIAlignFeatures(weights=str(weights)).dim      # loads the backbone


def mobilenet(weights: Path):
    from stgraph.features.roi import load_mobilenet_v2_features

    return load_mobilenet_v2_features(weights)


def torchvision(**kwargs):
    from detectors.torchvision_rcnn import TorchvisionDetector

    return TorchvisionDetector(**kwargs)


def yolox(tmp: Path, **kwargs):
    from detectors.yolox_onnx import YoloxOnnxDetector

    return YoloxOnnxDetector(tmp / "never_opened.onnx", **kwargs)


def ultralytics(weights, **kwargs):
    pytest.importorskip("ultralytics")
    from detectors.ultralytics_yolo import UltralyticsDetector

    return UltralyticsDetector(weights, **kwargs)


def detectron2(tmp: Path, **kwargs):
    from detectors.detectron2_rcnn import Detectron2Detector

    return Detectron2Detector(tmp / "config.yaml", tmp / "model.pkl", **kwargs)


def frames(n: int = 2, features_width: Callable[[int], int] = lambda i: 3) -> list[Detections]:
    return [Detections([[1, 2, 3, 4]], [0.5], [0], frame_index=i, image_size=(10, 10),
                       features=np.zeros((1, features_width(i)), np.float32)) for i in range(n)]


def window(start: int, n: int | None):
    from stgraph.io.frames import ArraySource, FrameWindow

    return list(FrameWindow(ArraySource(np.zeros((6, 8, 8, 3), np.uint8)), start, n))


def score_table():
    from _score_helpers import object_table

    return object_table("clip", {0: [1.0], 1: [], 2: [4.0], 3: [1.0, 2.0], 4: [5.0]})


def fitted_pipeline():
    from stgraph.models.frame_difference import FrameDifference
    from stgraph.pipeline import Pipeline

    return Pipeline(model=FrameDifference()).fit([np.zeros((4, 16, 16, 3), np.uint8)])


def watch_model(tmp: Path, **kwargs):
    from stgraph.watch import watch

    return watch(fitted_pipeline().save(tmp / "m"), np.zeros((4, 16, 16, 3), np.uint8), **kwargs)


def saved_model(tmp: Path):
    from test_bad_inputs_cli import saved_model as save

    return save(tmp / "fit")


def load_pipeline(model: Path, **kwargs):
    from stgraph.pipeline import Pipeline

    return Pipeline.load(model, **kwargs)


def load_moved(tmp: Path):
    model, weights = saved_model(tmp)
    weights.rename(tmp / "elsewhere.onnx")
    return load_pipeline(model)


def load_changed(tmp: Path):
    from test_bad_inputs_cli import tiny_onnx

    model, weights = saved_model(tmp)
    weights.write_bytes(tiny_onnx("retrained"))
    return load_pipeline(model)


def overlay(out: Path):
    from stgraph.overlay import write_overlay

    return write_overlay(np.zeros((5, 16, 16, 3), np.uint8), score_table(), "clip", out)


def report(tmp: Path, videos: dict):
    from stgraph.metrics import evaluate_frames
    from stgraph.report import write_report

    table = score_table()
    labels = {"clip": np.array([0, 0, 1, 1, 0])}
    frame_scores = table.frame_scores()
    return write_report(tmp / "report", table, frame_scores, labels,
                        evaluate_frames(frame_scores, labels), videos=videos)


@dataclass
class Case:
    """``call(tmp_path)`` must raise ``error`` with a one-line message matching every pattern."""

    name: str
    call: Callable[[Path], object]
    error: type[BaseException]
    patterns: tuple[str, ...]


CASES = [
    # defect 2: backbones and detector weights that torch.load / ultralytics cannot read
    Case("roi backbone is an .onnx file", lambda t: roi_dim(onnx_file(t)), FeatureError,
         (r"backbone\.onnx", "ONNX model, not a torch state_dict")),
    Case("roi backbone .pt truncated (zip)", lambda t: roi_dim(torch_file(t, "cut.pt", -200)),
         FeatureError, (r"cut\.pt", "truncated or corrupt")),
    Case("roi backbone .pt truncated to 40 bytes", lambda t: roi_dim(torch_file(t, "cut.pt", 40)),
         FeatureError, (r"cut\.pt", "truncated or corrupt")),
    Case("roi backbone .pt empty", lambda t: roi_dim(torch_file(t, "empty.pt", 0)),
         FeatureError, (r"empty\.pt", "empty")),
    Case("roi backbone is a text file", lambda t: roi_dim(text_file(t, "notes.pt")),
         FeatureError, (r"notes\.pt", "not a file written by torch.save")),
    Case("mobilenet loader, .onnx file", lambda t: mobilenet(onnx_file(t, "m.onnx")), FeatureError,
         (r"m\.onnx", "MobileNetV2 weights file", "ONNX model")),
    Case("mobilenet loader, whole pickled model",
         lambda t: (torch.save(torch.nn.Linear(2, 2), t / "model.pt"), mobilenet(t / "model.pt")),
         FeatureError, (r"model\.pt", r"model\.state_dict\(\)")),
    Case("torchvision weights are an .onnx file",
         lambda t: torchvision(weights=onnx_file(t, "frcnn.onnx")), ValueError,
         (r"frcnn\.onnx", "ONNX model")),
    Case("torchvision weights truncated",
         lambda t: torchvision(weights=torch_file(t, "frcnn.pt", -300)), ValueError,
         (r"frcnn\.pt", "truncated or corrupt")),
    Case("ultralytics weights: a text file named .onnx",
         lambda t: ultralytics(text_file(t, "yolo.onnx")), ValueError,
         (r"yolo\.onnx", "cannot load the weights file", "not a YOLO model")),
    Case("ultralytics weights: a text file named .pt",
         lambda t: ultralytics(text_file(t, "yolo.pt")), ValueError,
         (r"yolo\.pt", "cannot load the weights file")),
    # defect 6: a detector without weights does not run untrained in silence
    Case("torchvision without weights", lambda t: torchvision(), ValueError,
         ("no weights file given", "allow_random=True")),
    # defect 7: thresholds out of range
    Case("yolox conf_threshold=5", lambda t: yolox(t, conf_threshold=5), ValueError,
         ("conf_threshold must be in", r"\(0, 1\]", "got 5")),
    Case("yolox conf_threshold=0", lambda t: yolox(t, conf_threshold=0), ValueError,
         ("conf_threshold must be in", "got 0")),
    Case("yolox conf_threshold=-0.1", lambda t: yolox(t, conf_threshold=-0.1), ValueError,
         ("conf_threshold", "got -0.1")),
    Case("yolox conf_threshold='high'", lambda t: yolox(t, conf_threshold="high"), ValueError,
         ("conf_threshold must be a number", "'high'")),
    Case("yolox conf_threshold=nan", lambda t: yolox(t, conf_threshold=float("nan")), ValueError,
         ("conf_threshold", "nan")),
    Case("yolox nms_threshold=1.5", lambda t: yolox(t, nms_threshold=1.5), ValueError,
         ("nms_threshold", "got 1.5")),
    Case("yolox input_size=0", lambda t: yolox(t, input_size=0), ValueError,
         ("input_size must be an integer >= 1", "got 0")),
    Case("yolox num_threads=0", lambda t: yolox(t, num_threads=0), ValueError,
         ("num_threads", "got 0")),
    Case("torchvision conf_threshold=5", lambda t: torchvision(conf_threshold=5, allow_random=True),
         ValueError, ("TorchvisionDetector: conf_threshold", "got 5")),
    Case("torchvision min_size=0", lambda t: torchvision(min_size=0, allow_random=True),
         ValueError, ("min_size", "got 0")),
    Case("ultralytics conf_threshold=5", lambda t: ultralytics("yolov8n.yaml", conf_threshold=5),
         ValueError, ("UltralyticsDetector: conf_threshold", "got 5")),
    Case("ultralytics imgsz=-32", lambda t: ultralytics("yolov8n.yaml", imgsz=-32), ValueError,
         ("imgsz", "got -32")),
    Case("detectron2 conf_threshold=5 (checked before detectron2 is imported)",
         lambda t: detectron2(t, conf_threshold=5), ValueError,
         ("Detectron2Detector: conf_threshold", "got 5")),
    # defect 1: frame counts and indices
    Case("FrameWindow frames=0", lambda t: window(0, 0), ValueError,
         ("number of frames must be >= 1", "got 0")),
    Case("FrameWindow start=-5", lambda t: window(-5, None), ValueError,
         ("start must be a frame index >= 0", "got -5")),
    Case("watch max_frames=-1", lambda t: watch_model(t, max_frames=-1), ValueError,
         ("max_frames must be a whole number >= 1", "got -1")),
    # defect 4: labels longer than the video
    Case("check_labels with 9 labels for 5 frames",
         lambda t: score_table().check_labels({"clip": np.zeros(9)}), ValueError,
         ("'clip' has 5 frames", "9 frame labels")),
    # defect 5: saved weights that moved or changed; a missing override
    Case("Pipeline.load: the fitted weights moved", lambda t: load_moved(t), ValueError,
         (r"x\.onnx", "the model was fitted with are missing", "weights")),
    Case("Pipeline.load: the fitted weights changed", lambda t: load_changed(t), ValueError,
         (r"x\.onnx", "changed since the model was fitted")),
    Case("Pipeline.load(weights=<missing file>)",
         lambda t: load_pipeline(saved_model(t)[0], weights=t / "gone.onnx"), FileNotFoundError,
         (r"gone\.onnx", "no such weights file")),
    # defect 9: output paths checked before any work
    Case("Pipeline.save onto a file",
         lambda t: ((t / "f").write_text("x"), fitted_pipeline().save(t / "f")), ValueError,
         (r"f exists and is not a directory",)),
    Case("Pipeline.save inside a file",
         lambda t: ((t / "f").write_text("x"), fitted_pipeline().save(t / "f" / "m")), ValueError,
         ("is a file, not a directory",)),
    Case("write_overlay onto a directory",
         lambda t: ((t / "o.png").mkdir(), overlay(t / "o.png")), ValueError,
         (r"o\.png is a directory",)),
    # defect 10: report videos that are not the scored ones
    Case("write_report with videos naming none of the scored ones",
         lambda t: report(t, {"other": t / "other.avi"}), ValueError,
         ("none of the scored videos", r"\['clip'\]", "other")),
    # detections files
    Case("detections .npz truncated",
         lambda t: (write_detections(t / "d.npz", frames(50)),
                    (t / "d.npz").write_bytes((t / "d.npz").read_bytes()[:300]),
                    read_detections(t / "d.npz")),
         DetectionError, (r"d\.npz", "not a readable .npz|corrupt or truncated")),
    Case("detections .jsonl that is binary",
         lambda t: ((t / "d.jsonl").write_bytes(b"\xff\xfe\x00binary"),
                    read_detections(t / "d.jsonl")),
         DetectionError, (r"d\.jsonl", "not a text")),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gives_one_clear_line(case, tmp_path):
    with pytest.raises(case.error) as info:
        case.call(tmp_path)
    assert not (tmp_path / "report").exists(), "partial output left behind"
    message = str(info.value)
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    for pattern in case.patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert "weights_only" not in message and "unsafe" not in message.lower()


# ------------------------------------------------------------------ no partial output files
WRITE_FAILURES = [
    (suffix, "item that is not a Detections", lambda: [*frames(2), "frame"], TypeError,
     "expects Detections; item 2 is str") for suffix in (".npz", ".jsonl")
] + [(".npz", "features of different widths", lambda: frames(3, features_width=lambda i: 3 + i),
      DetectionError, "different widths")]


@pytest.mark.parametrize("suffix, what, items, error, pattern", WRITE_FAILURES,
                         ids=[f"{w[1]} ({w[0]})" for w in WRITE_FAILURES])
def test_failed_detection_writes_leave_no_file_and_keep_the_old_one(tmp_path, suffix, what, items,
                                                                     error, pattern):
    target = tmp_path / f"dets{suffix}"
    with pytest.raises(error, match=pattern):
        write_detections(target, items())
    assert list(tmp_path.iterdir()) == []
    write_detections(target, frames(1))
    before = target.read_bytes()
    with pytest.raises(error, match=pattern):
        write_detections(target, items())
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_writing_onto_a_directory_names_it_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "out.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"out\.npz: it is a directory"):
        write_detections(tmp_path / "out.npz", frames(1))
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]
    assert list((tmp_path / "out.npz").iterdir()) == []
