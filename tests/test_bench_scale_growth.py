"""benchmarks/scale.py --growth helpers: synthetic detections and the log-log slope."""
import numpy as np
import pytest

from stgraph.graphs import ObjectGraphBuilder
from _bench import load_benchmark


@pytest.fixture(scope="module")
def scale():
    return load_benchmark("scale")


def test_random_detections_shapes_and_graph(scale):
    frames = scale.random_detections(6, 4, width=8, seed=3)
    assert [d.frame_index for d in frames] == list(range(6))
    assert all(d.boxes.shape == (4, 4) and d.features.shape == (4, 8) for d in frames)
    height, width = scale.GROWTH_IMAGE_HW
    boxes = np.stack([d.boxes for d in frames])
    assert boxes.min() >= 0 and boxes[..., 2].max() <= width and boxes[..., 3].max() <= height
    graph = ObjectGraphBuilder(iou_threshold=0.01, temporal_knn=3).build(frames)
    assert graph.num_nodes == 24


def test_loglog_slope(scale):
    sizes = [10.0, 100.0, 1000.0]
    assert scale.loglog_slope(sizes, [3 * s for s in sizes]) == pytest.approx(1.0)
    assert scale.loglog_slope(sizes, [s * s for s in sizes]) == pytest.approx(2.0)
