"""``stgraph graph`` on real footage from ../shared/data (marked slow; skipped when it is absent)."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest
import torch
from torch_geometric.data import Data

from stgraph.cli import main

pytestmark = pytest.mark.slow


def run_graph(capsys, tmp_path: Path, video: Path, *detector_args: str) -> tuple:
    """Run ``stgraph graph`` on 5 frames; returns (Data, stdout)."""
    out, plot = tmp_path / "graph.pt", tmp_path / "graph.png"
    code = main(["--quiet", "graph", "--video", str(video), *detector_args, "--features", "geometry",
                 "--start", "10", "--frames", "5", "--out", str(out), "--plot", str(plot)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    return Data.from_dict(torch.load(out, weights_only=True)), captured.out


def check_graph(data, stdout: str) -> None:
    assert data.num_nodes > 0 and data.x.shape == (data.num_nodes, 8)
    assert set(data.frame.tolist()) <= set(range(10, 15))
    assert int((data.edge_type == 1).sum()) > 0  # objects linked across frames
    reported = int(re.search(r"(\d+) objects/nodes", stdout).group(1))
    assert reported == data.num_nodes


def test_graph_vtest_motion(shared_data: Path, tmp_path: Path, capsys):
    data, stdout = run_graph(capsys, tmp_path, shared_data / "videos" / "vtest.avi",
                             "--detector", "motion")
    check_graph(data, stdout)


def test_graph_vtest_yolox_finds_people(shared_data: Path, tmp_path: Path, capsys):
    data, stdout = run_graph(capsys, tmp_path, shared_data / "videos" / "vtest.avi",
                             "--detector", "yolox", "--weights",
                             str(shared_data / "models" / "yolox_nano.onnx"), "--classes", "person")
    check_graph(data, stdout)
    assert data.num_nodes >= 5 * 3  # vtest.avi is a busy pedestrian scene: several people a frame
    assert (data.det_score >= 0.3).all()


def test_graph_ped2_frame_folder(shared_data: Path, tmp_path: Path, capsys):
    data, stdout = run_graph(capsys, tmp_path, shared_data / "ucsd_ped2" / "testing" / "frames" / "01",
                             "--detector", "motion")
    check_graph(data, stdout)
