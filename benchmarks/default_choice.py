"""Which method should ``stgraph fit`` use by default? Judged on training videos only.

No test label is read. Per dataset (Ped2: 16 training videos, Avenue: its 2), the training
videos are held out in 2 folds. For each fold every candidate is fitted on the other fold with
its CLI defaults (:func:`fusion.make_pipeline`) and scores each held-out video twice:

- as it is (normal frames), and
- sped up ``SPEEDUP`` times (every ``SPEEDUP``-th frame, played as consecutive frames): a
  pseudo-anomaly of motion, as the accuracy issue suggests (skipped frames for speed).

The proxy is the frame AUC (x100, raw scores) of the sped-up frames against the normal ones.
Fused candidates use :func:`stgraph.scores.fusion.fuse` on their members' tables with the
members' training scales, exactly as :class:`stgraph.models.late_fusion.LateFusion` does.

    taskset -c 1 .venv/bin/python benchmarks/default_choice.py      # ~15 min on one core

Writes ``benchmarks/results/default_choice.json`` and prints the mean proxy AUC per candidate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import ped2_autoencoders  # noqa: E402
from accuracy import DATA  # noqa: E402
from fusion import make_pipeline  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.scores.fusion import fuse  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "default_choice.json"
SPEEDUP = 3
SINGLE = ("anograph", "stm_ae", "frame_difference")
FUSED = {"anograph+stm_ae": ("anograph", "stm_ae"),
         "anograph+frame_difference": ("anograph", "frame_difference")}


def sped_up(pipe: Any, video: Path) -> np.ndarray:
    """uint8 [T / SPEEDUP, H, W, 3]: every SPEEDUP-th frame of ``video`` as the pipeline reads it."""
    return np.stack([f.image for i, f in enumerate(pipe.source(str(video))) if i % SPEEDUP == 0])


def run_dataset(name: str, data: Path, weights: Path, cache: Path, seed: int,
                folds: int) -> dict:
    ped2_autoencoders.SHARED = data
    train, _, _, _ = ped2_autoencoders.videos_of(name, data / "ucsd_ped2")
    scores: dict[str, dict[str, list[np.ndarray]]] = {
        c: {"normal": [], "pseudo": []} for c in (*SINGLE, *FUSED)}
    timing: dict[str, float] = {}
    for k in range(folds):
        held = train[k::folds]
        rest = [p for p in train if p not in held]
        tables: dict[str, dict[str, Any]] = {}
        quantiles = {}
        for method in SINGLE:
            pipe = make_pipeline(method, weights, cache, seed)
            t0 = time.perf_counter()
            pipe.fit([str(p) for p in rest])
            timing[f"fold{k}_{method}_fit_s"] = time.perf_counter() - t0
            quantiles[method] = pipe.model.train_scores_
            for video in held:
                copy = sped_up(pipe, video)
                tables.setdefault(video.stem, {})[method] = (
                    pipe.score(str(video), name=video.stem), pipe.score(copy, name=video.stem))
            print(f"[{name}] fold {k}: {method} done", flush=True)
        for video, by_method in tables.items():
            for which, idx in (("normal", 0), ("pseudo", 1)):
                for method in SINGLE:
                    scores[method][which].append(
                        by_method[method][idx].frame_scores()[video].scores)
                for pair, members in FUSED.items():
                    fused = fuse([by_method[m][idx] for m in members],
                                 train_scores=[quantiles[m] for m in members])
                    scores[pair][which].append(fused.frame_scores()[video].scores)
    proxy = {}
    for candidate, parts in scores.items():
        normal, pseudo = np.concatenate(parts["normal"]), np.concatenate(parts["pseudo"])
        truth = np.r_[np.zeros(normal.size), np.ones(pseudo.size)]
        proxy[candidate] = 100 * float(roc_auc_score(truth, np.r_[normal, pseudo]))
    return {"proxy_auc": proxy, "timing": timing,
            "frames": {"normal": int(sum(map(len, scores["anograph"]["normal"]))),
                       "pseudo": int(sum(map(len, scores["anograph"]["pseudo"])))}}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "fusion")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"])
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    weights = args.data / "models" / "yolox_nano.onnx"
    start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "default_choice",
        "command": "python benchmarks/default_choice.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "proxy": f"frame AUC (x100, raw) of held-out training videos sped up {SPEEDUP}x "
                 f"against the same videos; {args.folds} folds; no test labels",
        "datasets": {}}
    for name in args.datasets:
        report["datasets"][name] = run_dataset(name, args.data, weights, args.cache, args.seed,
                                               args.folds)
    candidates = list(next(iter(report["datasets"].values()))["proxy_auc"])
    report["mean_proxy_auc"] = {c: float(np.mean([d["proxy_auc"][c]
                                                  for d in report["datasets"].values()]))
                                for c in candidates}
    report["chosen"] = max(report["mean_proxy_auc"], key=report["mean_proxy_auc"].get)
    report["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2))
    print(f"\n{'candidate':28s} " + " ".join(f"{d:>8s}" for d in report["datasets"]) + "     mean")
    for c in candidates:
        print(f"{c:28s} " + " ".join(f"{report['datasets'][d]['proxy_auc'][c]:8.1f}"
                                     for d in report["datasets"])
              + f" {report['mean_proxy_auc'][c]:8.1f}")
    print(f"chosen: {report['chosen']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
