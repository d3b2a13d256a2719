"""Score detections made by any external tool, given as a JSON-lines file per video.

    python examples/own_detections.py train_a.jsonl train_b.jsonl --test test.jsonl

Each line of a file is one frame: ``{"frame_index": 0, "image_size": [H, W], "class_names":
["person", ...], "boxes": [[x1, y1, x2, y2], ...], "scores": [...], "labels": [...]}``
(:func:`detectors.write_detections` writes this format; ``.npz`` works too). Node features are
box geometry, which needs no frames; a test video's per-object scores go to ``scores.csv``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from detectors import read_detections
from stgraph.features import GeometryFeatures
from stgraph.models import AnoGraph


def with_geometry(detections):
    """Detections with box-geometry features (velocity from the previous frame)."""
    producer, previous, out = GeometryFeatures(), None, []
    for frame in detections:
        frame = frame.with_features(producer.extract(None, frame, previous))
        out.append(frame)
        previous = frame
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train", nargs="+", type=Path, help="detections of normal videos")
    ap.add_argument("--test", required=True, type=Path, help="detections of the video to score")
    ap.add_argument("--out", type=Path, default=Path("scores.csv"))
    args = ap.parse_args()

    model = AnoGraph(epochs=30).fit([with_geometry(read_detections(p)) for p in args.train])
    table = model.score(with_geometry(read_detections(args.test)), video=args.test.stem)
    table.to_csv(args.out)
    threshold = model.train_scores_.quantile(0.99)  # estimated on held-out training videos
    print(f"{len(table)} objects scored -> {args.out}; {int((table['score'] > threshold).sum())} "
          f"above the 99th percentile of the training scores ({threshold:.1f}). Highest:")
    for row in np.argsort(-table["score"])[:5]:
        box = [round(float(table[c][row])) for c in ("x1", "y1", "x2", "y2")]
        print(f"  frame {table['frame'][row]:4d}  object {table['object_id'][row]:2d}  box {box}  "
              f"score {table['score'][row]:.1f}")


if __name__ == "__main__":
    main()
