"""Operating point of a fitted model at its default alarm threshold (what a camera operator sees).

The threshold is the model's ``threshold_`` (0.99 quantile of its training scores: normal data
only, no test labels). Alarms are debounced as ``stgraph watch`` does (``--min-duration 3
--merge-gap 5`` frames by default). Reported, over the test videos of a score file:

- frame level: true/false positive rates of ``score >= threshold``;
- **false alarms per minute of normal footage**: alarm events that overlap no anomalous frame,
  divided by the minutes of normal frames (frames / fps / 60);
- **anomalous events caught**: ground-truth events (runs of anomalous frames) with at least one
  frame inside an alarm event.

Usage::

    stgraph fit   --train ../shared/data/ucsd_ped2 --detector yolox \\
                  --weights ../shared/data/models/yolox_nano.onnx --out model/
    stgraph score --model model/ --video ../shared/data/ucsd_ped2 --out scores.csv
    python benchmarks/operating_point.py --model model/ --scores scores.csv \\
        --labels ../shared/data/ucsd_ped2/ground_truth/frame_labels.npz --fps 10 \\
        --out benchmarks/results/ped2_operating_point.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stgraph.alarms import detect_alarms  # noqa: E402
from stgraph.cli import _saved_model, read_labels  # noqa: E402
from stgraph.scores import ScoreTable  # noqa: E402


def runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` index pairs of the runs of 1 in a 0/1 array [T]."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def operating_point(table: ScoreTable, labels: dict[str, np.ndarray], threshold: float,
                    fps: float, min_duration: int, merge_gap: int) -> dict:
    """The operating-point summary of the module docstring (per video and in total)."""
    totals = {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "false_alarms": 0, "normal_frames": 0,
              "gt_events": 0, "gt_events_caught": 0, "alarms": 0}
    per_video = {}
    for video, series in table.frame_scores().items():
        y = np.asarray(labels[video]).astype(bool)
        hot = series.scores >= threshold
        events = detect_alarms(series.frames, series.scores, threshold, min_duration, merge_gap,
                               video=video, fps=fps)
        alarmed = np.zeros(len(y), bool)
        false_alarms = 0
        for event in events:
            alarmed[event.start_frame:event.end_frame + 1] = True
            false_alarms += not y[event.start_frame:event.end_frame + 1].any()
        truth = runs(y)
        caught = sum(alarmed[a:b + 1].any() for a, b in truth)
        row = {"tp": int((hot & y).sum()), "fp": int((hot & ~y).sum()),
               "tn": int((~hot & ~y).sum()), "fn": int((~hot & y).sum()),
               "false_alarms": false_alarms, "normal_frames": int((~y).sum()),
               "gt_events": len(truth), "gt_events_caught": int(caught), "alarms": len(events)}
        per_video[video] = row
        for key in totals:
            totals[key] += row[key]
    minutes = totals["normal_frames"] / fps / 60.0
    summary = {
        "threshold": threshold,
        "frame_tpr": totals["tp"] / max(totals["tp"] + totals["fn"], 1),
        "frame_fpr": totals["fp"] / max(totals["fp"] + totals["tn"], 1),
        "false_alarms_per_minute_of_normal_footage": (totals["false_alarms"] / minutes
                                                      if minutes else float("nan")),
        "normal_minutes": minutes,
        "anomalous_events_caught": totals["gt_events_caught"] / max(totals["gt_events"], 1),
        **totals,
    }
    return {"summary": summary, "per_video": per_video}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="folder written by `stgraph fit`")
    ap.add_argument("--scores", required=True, help="ScoreTable written by `stgraph score`")
    ap.add_argument("--labels", required=True, help="frame labels (anything `stgraph eval --labels` reads)")
    ap.add_argument("--fps", type=float, required=True, help="frame rate of the test videos")
    ap.add_argument("--min-duration", type=int, default=3)
    ap.add_argument("--merge-gap", type=int, default=5)
    ap.add_argument("--out", help="result JSON")
    args = ap.parse_args()
    model = _saved_model(args.model)
    table = ScoreTable.read_json(args.scores) if args.scores.endswith(".json") \
        else ScoreTable.read_csv(args.scores)
    labels = read_labels(args.labels)
    result = operating_point(table, labels, float(model.threshold_), args.fps,
                             args.min_duration, args.merge_gap)
    result["settings"] = {"model": type(model).__name__, "scores": args.scores,
                          "fps": args.fps, "min_duration": args.min_duration,
                          "merge_gap": args.merge_gap, "threshold_quantile": 0.99}
    s = result["summary"]
    print(f"threshold {s['threshold']:.4g} (0.99 quantile of the training scores)")
    print(f"frames: TPR {100 * s['frame_tpr']:.1f}%  FPR {100 * s['frame_fpr']:.1f}%")
    print(f"false alarms per minute of normal footage: "
          f"{s['false_alarms_per_minute_of_normal_footage']:.2f} "
          f"({s['false_alarms']} in {s['normal_minutes']:.2f} min)")
    print(f"anomalous events caught: {s['gt_events_caught']} of {s['gt_events']} "
          f"({100 * s['anomalous_events_caught']:.0f}%); {s['alarms']} alarm events in all")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"-> {args.out}")


if __name__ == "__main__":
    main()
