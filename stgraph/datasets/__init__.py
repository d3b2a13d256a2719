"""Datasets: benchmark readers (official layouts), video folders, synthetic scenes, PyG graph datasets.

* :func:`load_dataset` — any layout below, detected (``kind="auto"``) or named;
* :func:`load_ucsd`, :func:`load_avenue`, :func:`load_shanghaitech`, :func:`load_ucf_crime` —
  UCSD Ped1/Ped2, CUHK Avenue, ShanghaiTech Campus, UCF-Crime as their authors distribute them;
* :func:`load_video_folder` — ``training/`` + ``testing/`` folders of frame folders or video files
  (your own cameras), labels from npz / npy / interval csv or none;
* :class:`ObjectGraphDataset` — cached PyG dataset of object graphs of a set of videos;
* :func:`make_video`, :func:`make_normal_videos`, :func:`make_test_videos` — seeded synthetic
  walkway videos with injected anomalies and exact ground truth.
"""
from stgraph.datasets.folders import (DatasetError, VideoDataset, VideoItem, load_frame_labels,
                                      load_video_folder)
from stgraph.datasets.avenue import load_avenue
from stgraph.datasets.labels import (intervals_to_labels, masks_to_labels, read_interval_csv, read_pixel_masks,
                                     read_ucsd_m)
from stgraph.datasets.loader import DATASET_READERS, detect_kind, load_dataset
from stgraph.datasets.shanghaitech import load_shanghaitech
from stgraph.datasets.ucf_crime import load_ucf_crime, read_ucf_annotation
from stgraph.datasets.ucsd import load_ucsd
from stgraph.datasets.synthetic import (ANOMALY_KINDS, CLASS_NAMES, SceneObject, SyntheticVideo,
                                        make_normal_videos, make_test_videos, make_video)

__all__ = ["VideoItem", "VideoDataset", "DatasetError", "load_video_folder", "load_frame_labels",
           "ANOMALY_KINDS", "CLASS_NAMES", "SceneObject", "SyntheticVideo", "make_video",
           "make_normal_videos", "make_test_videos", "load_dataset", "detect_kind", "DATASET_READERS",
           "load_ucsd", "load_avenue", "load_shanghaitech", "load_ucf_crime", "read_ucf_annotation",
           "intervals_to_labels", "masks_to_labels", "read_interval_csv", "read_pixel_masks", "read_ucsd_m",
           "ObjectGraphDataset"]


def __getattr__(name: str):
    """Import :class:`ObjectGraphDataset` (torch + PyG, seconds) only when it is asked for."""
    if name == "ObjectGraphDataset":
        from stgraph.datasets.graph_dataset import ObjectGraphDataset

        return ObjectGraphDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
