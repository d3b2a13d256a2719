"""``stgraph fit --method evidence`` with motion features: one evidence group per producer, and
live scores equal to batch scores."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stgraph.cli import main
from stgraph.datasets.synthetic import make_normal_videos, make_test_videos
from stgraph.pipeline import Pipeline

SIZE = (96, 128)


def test_fit_and_score_evidence_with_speed_and_track_features(tmp_path: Path):
    for split, videos in (("training", make_normal_videos(2, seed=1, n_frames=10, n_people=3,
                                                          size=SIZE)),
                          ("testing", make_test_videos(1, seed=1, n_frames=10, n_people=3,
                                                       size=SIZE))):
        for video in videos:
            video.write_video(tmp_path / "data" / split / "videos" / f"{video.name}.avi")
    out = tmp_path / "model"
    assert main(["--quiet", "fit", "--train", str(tmp_path / "data"), "--detector", "motion",
                 "--method", "evidence", "--features", "geometry+speed+track",
                 "--param", "k=2", "--out", str(out)]) == 0
    pipe = Pipeline.load(out, progress=False)
    assert pipe.model.groups == [8, 1, 5]
    video = next((tmp_path / "data" / "testing" / "videos").glob("*.avi"))
    table = pipe.score(video)
    batch = table.frame_scores()[table.videos[0]].scores
    streamed = np.array([r.frame_score for r in pipe.stream(video, prefetch=0)])
    scored = np.isfinite(streamed)
    assert scored.any()
    np.testing.assert_allclose(streamed[scored], batch[scored], rtol=1e-6)
