"""COCO class names, and turning a class filter given by names or ids into ids.

Two numberings are in use:

- ``COCO_CLASSES`` (80 names, ids 0..79): YOLOX, ultralytics YOLO, detectron2 model-zoo models.
- ``COCO_91_CATEGORIES`` (91 entries, ids 0..90): torchvision detection models, whose labels are the
  original COCO category ids; id 0 is ``"__background__"`` and unused ids are ``"N/A"``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["COCO_CLASSES", "COCO_91_CATEGORIES", "resolve_class_ids", "class_filter_param"]

#: torchvision's category list (``weights.meta["categories"]`` of its COCO detection models).
COCO_91_CATEGORIES: tuple[str, ...] = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A",
    "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A", "toilet",
    "N/A", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

#: The 80 contiguous COCO classes (0 = person, 1 = bicycle, 2 = car, ..., 79 = toothbrush).
COCO_CLASSES: tuple[str, ...] = tuple(name for name in COCO_91_CATEGORIES[1:] if name != "N/A")


def resolve_class_ids(classes: Iterable[int | str] | int | str | None, class_names: Sequence[str],
                      who: str) -> tuple[int, ...] | None:
    """Turn a class filter (names and/or ids, e.g. ``("person", 2)``) into sorted unique ids.

    Args:
        classes: names from ``class_names`` and/or integer ids; ``None`` keeps every class.
        class_names: the detector's names; id ``i`` is ``class_names[i]``.
        who: the caller's name, used in error messages.

    Returns:
        ``None`` when ``classes`` is ``None``, else a tuple of ids.

    Raises:
        ValueError: a name that is not in ``class_names``, or an id outside
            ``[0, len(class_names))``.
    """
    if classes is None:
        return None
    if isinstance(classes, (str, int)):
        classes = [classes]
    ids = set()
    for item in classes:
        if isinstance(item, str):
            if item not in class_names:
                raise ValueError(f"{who}: unknown class name {item!r}; "
                                 f"known names: {list(class_names)}")
            ids.add(list(class_names).index(item))
        else:
            index = int(item)
            if not 0 <= index < len(class_names):
                raise ValueError(f"{who}: class id {index} outside [0, {len(class_names)})")
            ids.add(index)
    return tuple(sorted(ids))


def class_filter_param(classes: Iterable[int | str] | int | str | None) -> list[int | str] | None:
    """A class filter as a JSON-serialisable list (for ``get_params``); ``None`` stays ``None``."""
    if classes is None:
        return None
    if isinstance(classes, (str, int)):
        return [classes]
    return [item if isinstance(item, str) else int(item) for item in classes]
