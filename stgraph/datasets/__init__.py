"""Datasets: video folders with frame labels (UCSD Ped2 layout, own cameras) and synthetic scenes.

* :func:`load_video_folder` — ``training/`` + ``testing/`` folders of frame folders or video files;
* :func:`make_video`, :func:`make_normal_videos`, :func:`make_test_videos` — seeded synthetic
  walkway videos with injected anomalies and exact ground truth.
"""
from stgraph.datasets.folders import (DatasetError, VideoDataset, VideoItem, load_frame_labels,
                                      load_video_folder)
from stgraph.datasets.synthetic import (ANOMALY_KINDS, CLASS_NAMES, SceneObject, SyntheticVideo,
                                        make_normal_videos, make_test_videos, make_video)

__all__ = ["VideoItem", "VideoDataset", "DatasetError", "load_video_folder", "load_frame_labels",
           "ANOMALY_KINDS", "CLASS_NAMES", "SceneObject", "SyntheticVideo", "make_video",
           "make_normal_videos", "make_test_videos"]
