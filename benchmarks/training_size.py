"""How much normal footage a method needs: UCSD Ped2 frame AUC against the number of training
videos (the first 2, 4, 8 and all 16), each fitted and scored with the README's CLI commands.

Usage::

    python benchmarks/training_size.py [--method anograph] [--sizes 2 4 8 16] \\
        [--cache .cache/stgraph] [--out benchmarks/results/ped2_training_size.json]

Each size gets a dataset root of symbolic links (the first k training videos, the test videos and
the ground truth), so detections are cached by content and computed once. Extra ``stgraph fit``
arguments (e.g. ``--method stm_ae --detector none``) go after ``--``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STGRAPH_SHARED_DATA", REPO.parent / "shared" / "data"))
DETECTOR = ["--detector", "yolox", "--weights", str(DATA / "models" / "yolox_nano.onnx")]


def stgraph(*args: str, cwd: Path | None = None) -> tuple[float, str]:
    """Run one quiet ``stgraph`` command (the console script's module) in ``cwd``; returns
    (seconds, stdout) or fails loudly."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stgraph.cli", "--quiet", *args], cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"stgraph {args[0]} failed: {done.stderr.strip()}")
    return time.perf_counter() - t0, done.stdout


def subset_root(ped2: Path, k: int, where: Path) -> Path:
    """A Ped2 root whose training split holds only the first ``k`` training videos (symlinks)."""
    root = where / f"ped2_{k}"
    (root / "training" / "frames").mkdir(parents=True)
    for video in sorted((ped2 / "training" / "frames").iterdir())[:k]:
        (root / "training" / "frames" / video.name).symlink_to(video)
    for name in ("testing", "ground_truth"):
        (root / name).symlink_to(ped2 / name)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--cache", default=str(REPO / ".cache" / "stgraph"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                         "ped2_training_size.json"))
    ap.add_argument("fit_args", nargs="*", help="extra `stgraph fit` arguments (after --); "
                    "default: the YOLOX-nano detector and the method's defaults")
    args = ap.parse_args()
    ped2 = DATA / "ucsd_ped2"
    fit_args = args.fit_args or DETECTOR
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for k in args.sizes:
            root = subset_root(ped2, k, tmp)
            model, scores, metrics = tmp / f"model_{k}", tmp / f"scores_{k}.csv", tmp / f"m_{k}.json"
            t0 = time.perf_counter()
            stgraph("fit", "--train", str(root), *fit_args, "--cache", args.cache, "--out", str(model))
            t1 = time.perf_counter()
            stgraph("score", "--model", str(model), "--video", str(ped2), "--cache", args.cache,
                    "--out", str(scores))
            stgraph("eval", "--scores", str(scores), "--labels",
                    str(ped2 / "ground_truth" / "frame_labels.npz"), "--out", str(metrics))
            result = json.loads(metrics.read_text())
            n_frames = sum(len(list(v.iterdir())) for v in (root / "training" / "frames").iterdir())
            row = {"training_videos": k, "training_frames": n_frames,
                   "micro_auc": 100 * result["micro_auc"], "macro_auc": 100 * result["macro_auc"],
                   "eer": 100 * result["eer"], "fit_s (cache warm after the first size)": t1 - t0}
            rows.append(row)
            print(f"{k:2d} training videos ({n_frames} frames): micro AUC {row['micro_auc']:.2f}  "
                  f"macro {row['macro_auc']:.2f}  EER {row['eer']:.2f}  fit {t1 - t0:.1f} s")
    out = {"benchmark": "ped2_training_size", "fit_args": fit_args, "rows": rows,
           "command": "python benchmarks/training_size.py " + " ".join(sys.argv[1:]),
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
