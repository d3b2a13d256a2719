"""How long a trailing mean should ``LateFusion(smooth=...)`` use? Judged on training videos only.

Reads the frame scores that ``benchmarks/default_choice.py --dump DIR`` wrote (every candidate's
scores of each held-out training video, as it is and as its speed-up and foreign-object copies)
and builds **segment pseudo-anomalies** from them, with no new model fit: in each held-out
video the middle third of the frames (``[T // 3, 2 T // 3)``) takes the scores of the same
frames of the pseudo-anomalous copy (the foreign-object copy is the video itself with the object
pasted in, frame for frame; the speed-up copy contributes its first ``T // 3`` frames). Those
frames are labelled anomalous, the rest normal. A trailing mean of ``w`` frames
(:func:`stgraph.scores.fusion.trailing_mean`, as ``LateFusion`` applies it) then trades noise
against a late onset and a late end; the proxy of ``w`` is the frame AUC over all spliced
videos, averaged over the two kinds and the datasets. The rule (middle third; the windows in
:data:`WINDOWS`; the largest mean wins, ties to the shorter window) was fixed before any number
was seen.

    .venv/bin/python benchmarks/default_choice.py --methods ... --dump /tmp/choice_dump
    .venv/bin/python benchmarks/smoothing_choice.py --dump /tmp/choice_dump \\
        --candidate anograph+stm_ae+dissociation+frame_difference+patch_knn

Writes ``benchmarks/results/smoothing_choice.json`` and prints the proxy AUC per window.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.scores.fusion import trailing_mean  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "smoothing_choice.json"
WINDOWS = (1, 3, 5, 9, 15, 25)
FAMILIES = ("speedup", "foreign")


def spliced(normal: np.ndarray, copy: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores float64 [T'], labels uint8 [T']) of one held-out video whose middle third takes
    the pseudo-anomalous copy's scores (T' = the frames both have)."""
    n = len(normal) if family == "speedup" else min(len(normal), len(copy))
    start, stop = n // 3, 2 * n // 3
    scores = np.asarray(normal[:n], np.float64).copy()
    part = copy[start:stop] if family == "foreign" else copy[:stop - start]
    stop = start + len(part)
    scores[start:stop] = part
    labels = np.zeros(n, np.uint8)
    labels[start:stop] = 1
    return scores, labels


def proxy_auc(dump: dict[str, np.ndarray], candidate: str, family: str, window: int) -> float:
    """Frame AUC (x100) of the spliced videos of one family after a trailing mean."""
    scores, labels = [], []
    i = 0
    while f"{candidate}|normal|{i}" in dump:
        s, y = spliced(dump[f"{candidate}|normal|{i}"], dump[f"{candidate}|{family}|{i}"], family)
        scores.append(trailing_mean(s, window))
        labels.append(y)
        i += 1
    if not scores:
        raise SystemExit(f"the dump has no scores of {candidate!r}")
    return 100 * float(roc_auc_score(np.concatenate(labels), np.concatenate(scores)))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", type=Path, required=True,
                   help="the folder default_choice.py --dump wrote")
    p.add_argument("--candidate", required=True, help="the method whose window is chosen")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    report = {"benchmark": "smoothing_choice",
              "command": "python benchmarks/smoothing_choice.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "candidate": args.candidate,
              "proxy": "frame AUC (x100) of held-out training videos whose middle third takes "
                       "the scores of a pseudo-anomalous copy, after a trailing mean of w frames",
              "datasets": {}}
    for name in args.datasets:
        with np.load(args.dump / f"{name}_proxy_scores.npz") as data:
            dump = dict(data)
        report["datasets"][name] = {str(w): {f: proxy_auc(dump, args.candidate, f, w)
                                             for f in FAMILIES} for w in WINDOWS}
    report["mean_proxy_auc"] = {str(w): float(np.mean([d[str(w)][f] for d in
                                                       report["datasets"].values()
                                                       for f in FAMILIES])) for w in WINDOWS}
    report["chosen"] = int(max(WINDOWS, key=lambda w: (round(report["mean_proxy_auc"][str(w)], 6),
                                                       -w)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2))
    cols = [(d, f) for d in report["datasets"] for f in FAMILIES]
    print(f"{'window':>6s} " + " ".join(f"{d[:5]}:{f[:7]:>7s}" for d, f in cols) + "    mean")
    for w in WINDOWS:
        print(f"{w:6d} " + " ".join(f"{report['datasets'][d][str(w)][f]:13.1f}" for d, f in cols)
              + f" {report['mean_proxy_auc'][str(w)]:7.1f}")
    print(f"chosen: smooth={report['chosen']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
