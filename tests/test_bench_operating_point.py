"""benchmarks/operating_point.py: false alarms per minute and anomalous events caught."""
import numpy as np
import pytest

from stgraph.scores import ScoreTable
from _bench import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("operating_point")


def test_runs_of_anomalous_frames(bench):
    assert bench.runs(np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1])) == [(1, 2), (5, 5), (7, 9)]
    assert bench.runs(np.zeros(4)) == []


def test_false_alarms_and_caught_events_at_the_threshold(bench):
    # 60 frames at 10 fps; anomalous 30..39 and 50..59; alarms at 5..9 (false), 32..36 (caught)
    scores = np.zeros(60)
    scores[5:10] = 2.0
    scores[32:37] = 3.0
    labels = np.zeros(60, np.int64)
    labels[30:40] = 1
    labels[50:60] = 1
    table = ScoreTable.from_frames("v", np.arange(60), scores, video_frames=np.arange(60))
    result = bench.operating_point(table, {"v": labels}, threshold=1.0, fps=10.0,
                                   min_duration=3, merge_gap=5)["summary"]
    assert result["alarms"] == 2 and result["false_alarms"] == 1
    assert result["gt_events"] == 2 and result["gt_events_caught"] == 1
    assert result["normal_frames"] == 40
    assert result["false_alarms_per_minute_of_normal_footage"] == pytest.approx(1 / (40 / 600))
    assert result["frame_tpr"] == pytest.approx(5 / 20) and result["frame_fpr"] == pytest.approx(5 / 40)
