"""Backend adapters (ultralytics, torchvision, detectron2) on random-init models; COCO names."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from detectors.base import Detections
from detectors.coco import COCO_91_CATEGORIES, COCO_CLASSES, class_filter_param, resolve_class_ids


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------ COCO names
def test_coco_names_match_torchvision_and_the_80_classes():
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights as Weights

    assert COCO_91_CATEGORIES == tuple(Weights.DEFAULT.meta["categories"])
    assert len(COCO_CLASSES) == 80
    assert [COCO_CLASSES[i] for i in (0, 1, 2, 3, 7, 79)] == [
        "person", "bicycle", "car", "motorcycle", "truck", "toothbrush"]


def test_resolve_class_ids():
    names = ("person", "bicycle", "car")
    assert resolve_class_ids(None, names, "t") is None
    assert resolve_class_ids(("car", 0, "person"), names, "t") == (0, 2)
    assert resolve_class_ids("bicycle", names, "t") == (1,)
    with pytest.raises(ValueError, match="t: unknown class name 'bus'"):
        resolve_class_ids(["bus"], names, "t")
    with pytest.raises(ValueError, match=r"class id 3 outside \[0, 3\)"):
        resolve_class_ids([3], names, "t")
    assert class_filter_param("car") == ["car"]
    assert class_filter_param((np.int64(2), "car")) == [2, "car"]


# ------------------------------------------------------------------------------ ultralytics
def _yolo(**kwargs):
    from detectors.ultralytics_yolo import UltralyticsDetector

    return UltralyticsDetector("yolov8n.yaml", conf_threshold=1e-4, imgsz=320, **kwargs)


@pytest.fixture(scope="module")
def yolo():
    return _yolo()


def test_ultralytics_random_init_gives_valid_detections(yolo, image):
    out = yolo.detect(image, frame_index=7)
    assert isinstance(out, Detections) and out.frame_index == 7 and out.image_size == (240, 320)
    assert out.class_names == COCO_CLASSES
    assert out.boxes.shape == (len(out), 4) and np.all(out.scores >= 1e-4)
    batch = yolo.detect_batch([image, image[:200]], start_index=3)
    assert [d.frame_index for d in batch] == [3, 4]
    assert [d.image_size for d in batch] == [(240, 320), (200, 320)]


def test_ultralytics_class_filter_and_seeded_init(yolo, image):
    everything = yolo.detect(image)
    assert len(everything) > 0                     # at conf 1e-4 an untrained head fires
    label = int(np.bincount(everything.labels).argmax())
    kept = _yolo(classes=[COCO_CLASSES[label]]).detect(image)
    assert len(kept) > 0 and np.all(kept.labels == label)      # same seed -> same network
    absent = [i for i in range(80) if i not in set(everything.labels.tolist())][:3]
    assert len(_yolo(classes=absent).detect(image)) == 0


def test_ultralytics_missing_weights_and_params(yolo, tmp_path):
    from detectors.ultralytics_yolo import UltralyticsDetector

    with pytest.raises(FileNotFoundError, match="ultralytics weights file not found: .*yolov8n.pt"):
        UltralyticsDetector(tmp_path / "yolov8n.pt")
    with pytest.raises(FileNotFoundError, match="config not found: nosuchmodel.yaml"):
        UltralyticsDetector("nosuchmodel.yaml")
    params = json.loads(json.dumps(yolo.get_params()))
    assert params["weights"] == "yolov8n.yaml" and params["imgsz"] == 320
    assert repr(yolo) == ("UltralyticsDetector(weights='yolov8n.yaml', conf_threshold=0.0001, "
                          "classes=None, imgsz=320, device='cpu')")


# ------------------------------------------------------------------------------ torchvision
def test_torchvision_random_init_gives_valid_detections(image):
    from detectors.torchvision_rcnn import TorchvisionDetector

    detector = TorchvisionDetector(allow_random=True)
    out = detector.detect(image[:120, :160], frame_index=4)
    assert isinstance(out, Detections) and out.frame_index == 4 and out.image_size == (120, 160)
    assert out.class_names == COCO_91_CATEGORIES and out.class_names[1] == "person"
    assert np.all(out.scores >= 0.5)
    params = json.loads(json.dumps(detector.get_params()))
    assert params["arch"] == "fasterrcnn_mobilenet_v3_large_fpn" and params["weights"] is None
    assert repr(detector).startswith(
        "TorchvisionDetector(arch='fasterrcnn_mobilenet_v3_large_fpn', weights=None")


def test_torchvision_weights_file_is_loaded(image, tmp_path):
    import torch

    from detectors.torchvision_rcnn import TorchvisionDetector

    small = image[:120, :160]
    source = TorchvisionDetector(conf_threshold=0.01, random_state=0, allow_random=True)
    torch.save(source.model_.state_dict(), tmp_path / "frcnn.pt")
    loaded = TorchvisionDetector(tmp_path / "frcnn.pt", conf_threshold=0.01, random_state=1)
    expected = source.detect(small)
    assert len(expected) > 0
    np.testing.assert_allclose(loaded.detect(small).boxes, expected.boxes, atol=1e-4)
    reseeded = TorchvisionDetector(conf_threshold=0.01, random_state=1,
                                   allow_random=True).detect(small)
    assert len(reseeded) != len(expected) or not np.allclose(reseeded.boxes, expected.boxes)


def test_torchvision_errors(tmp_path):
    import torch

    from detectors.torchvision_rcnn import TorchvisionDetector

    with pytest.raises(ValueError, match="unknown arch 'fasterrcnn_resnet9'"):
        TorchvisionDetector(arch="fasterrcnn_resnet9")
    with pytest.raises(FileNotFoundError, match="torchvision weights file not found: .*missing.pt"):
        TorchvisionDetector(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read .*junk.pt as a torch state_dict"):
        TorchvisionDetector(tmp_path / "junk.pt")
    torch.save({"roi_heads.box_predictor.cls_score.weight": torch.zeros(3, 1024)},
               tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt is not a state_dict of fasterrcnn_mobilenet"):
        TorchvisionDetector(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="2 class_names for num_classes=3"):
        TorchvisionDetector(num_classes=3, class_names=("a", "b"), allow_random=True)


# ------------------------------------------------------------------------------ detectron2
@pytest.mark.skipif(importlib.util.find_spec("detectron2") is not None,
                    reason="detectron2 is installed")
def test_detectron2_missing_package_says_how_to_install(tmp_path):
    from detectors.detectron2_rcnn import Detectron2Detector

    install = r"pip install 'git\+https://github.com/facebookresearch/detectron2.git'"
    with pytest.raises(ImportError, match=f"not on PyPI.*{install}"):
        Detectron2Detector(tmp_path / "faster_rcnn_R_50_FPN_3x.yaml", tmp_path / "model_final.pkl")
