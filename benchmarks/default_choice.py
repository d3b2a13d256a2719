"""Which method should ``stgraph fit`` use by default? Judged on training videos only.

No test label is read. Per dataset (Ped2: 16 training videos, Avenue: its 2), the training
videos are held out in 2 folds. For each fold every method is fitted on the other fold with its
CLI defaults (:func:`fusion.make_pipeline`) and scores each held-out video as it is (normal
frames) and two pseudo-anomalous copies of it (at most ``MAX_FRAMES`` frames each):

- ``speedup``: every ``SPEEDUP``-th frame, played as consecutive frames (skipped frames: an
  object moving too fast);
- ``foreign``: an object the scene never shows, a square crop of the people in another scene
  (``videos/vtest.avi``, OpenCV's pedestrian sample, in grey when the video is grey, its own
  frames playing) a quarter of the frame high, crossing the frame once at a walking pace, on a
  row drawn at random (seeded).

The proxy of a family is the frame AUC (x100, raw scores) of its copies against the normal
frames; a candidate's proxy is the mean over families and datasets. Fused candidates use
:func:`stgraph.scores.fusion.fuse` on their members' tables with the members' training scales,
exactly as :class:`stgraph.models.late_fusion.LateFusion` does.

Candidates for the default (:data:`CANDIDATES`) are the methods that score every object on the
object graph: Ano-Graph alone and fused with any non-empty subset of the frame-level methods
(STM-AE, dissociation, frame difference). The frame-level methods alone are measured too, for reference (they score frames; their object rows are box means of a pixel
map).

    taskset -c 1 .venv/bin/python benchmarks/default_choice.py      # ~40 min on one core

Writes ``benchmarks/results/default_choice.json`` and prints the proxy AUCs.
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
from fusion import METHOD_PARAMS, fusions, make_pipeline  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.scores.fusion import fuse  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "default_choice.json"
SPEEDUP = 3
MAX_FRAMES = 450
#: Every method measured: the object-graph method and the frame-level ones cheap enough to fit
#: at CLI defaults in minutes (STRL takes 10 min per fit and SSRL needs video labels).
SINGLE = ("anograph", "stm_ae", "dissociation", "frame_difference")
#: Ano-Graph fused with every non-empty subset of the frame-level methods.
FUSED = fusions(SINGLE)
#: Methods that may become the default: they score every object on the object graph.
CANDIDATES = ("anograph", *FUSED)
FAMILIES = ("speedup", "foreign")
#: The crop of vtest.avi (y0, y1, x0, x1) where its people walk.
FOREIGN_CROP = (150, 300, 320, 470)


def frames_of(pipe: Any, video: Path) -> np.ndarray:
    """uint8 [T, H, W, 3]: ``video`` as the pipeline reads it."""
    return np.stack([f.image for f in pipe.source(str(video))])


def sped_up(frames: np.ndarray) -> np.ndarray:
    """Every SPEEDUP-th frame, played as consecutive frames (at most MAX_FRAMES)."""
    return np.ascontiguousarray(frames[::SPEEDUP][:MAX_FRAMES])


def with_foreign_object(frames: np.ndarray, source: Path, seed: int) -> np.ndarray:
    """``frames`` (at most MAX_FRAMES) with a square crop of ``source``'s people crossing them."""
    import cv2

    out = frames[:MAX_FRAMES].copy()
    n, h, w = out.shape[:3]
    side = h // 4
    row = int(np.random.default_rng(seed).integers(h // 8, h - side - h // 8))
    grey = bool(np.array_equal(out[0, ..., 0], out[0, ..., 1]))
    capture = cv2.VideoCapture(str(source))
    y0, y1, x0, x1 = FOREIGN_CROP
    for t in range(n):
        ok, image = capture.read()
        if not ok:  # loop the source
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = capture.read()
        patch = cv2.resize(image[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA)
        if grey:
            patch = cv2.cvtColor(cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        x = int(round((w - side) * t / max(n - 1, 1)))
        out[t, row:row + side, x:x + side] = patch
    capture.release()
    return out


def run_dataset(name: str, data: Path, weights: Path, cache: Path, seed: int,
                folds: int, methods: Sequence[str] = SINGLE, dump: Path | None = None) -> dict:
    ped2_autoencoders.SHARED = data
    train, _, _, _ = ped2_autoencoders.videos_of(name, data / "ucsd_ped2")
    fused_candidates = fusions(methods)
    scores: dict[str, dict[str, list[np.ndarray]]] = {
        c: {"normal": [], **{f: [] for f in FAMILIES}} for c in (*methods, *fused_candidates)}
    foreign = data / "videos" / "vtest.avi"
    timing: dict[str, float] = {}
    for k in range(folds):
        held = train[k::folds]
        rest = [p for p in train if p not in held]
        tables: dict[str, dict[str, Any]] = {}
        quantiles = {}
        for method in methods:
            pipe = make_pipeline(method, weights, cache, seed)
            t0 = time.perf_counter()
            pipe.fit([str(p) for p in rest])
            timing[f"fold{k}_{method}_fit_s"] = time.perf_counter() - t0
            quantiles[method] = pipe.model.train_scores_
            for j, video in enumerate(held):
                frames = frames_of(pipe, video)
                copies = {"speedup": sped_up(frames),
                          "foreign": with_foreign_object(frames, foreign, seed=1000 * k + j)}
                tables.setdefault(video.stem, {})[method] = {
                    "normal": pipe.score(str(video), name=video.stem),
                    **{f: pipe.score(c, name=video.stem) for f, c in copies.items()}}
                del frames, copies
            print(f"[{name}] fold {k}: {method} done", flush=True)
        for video, by_method in tables.items():
            for which in ("normal", *FAMILIES):
                for method in methods:
                    scores[method][which].append(
                        by_method[method][which].frame_scores()[video].scores)
                for pair, members in fused_candidates.items():
                    fused = fuse([by_method[m][which] for m in members],
                                 train_scores=[quantiles[m] for m in members])
                    scores[pair][which].append(fused.frame_scores()[video].scores)
    if dump is not None:  # every frame score: {candidate}|{normal or family}|{video number}
        dump.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(dump / f"{name}_proxy_scores.npz", **{
            f"{c}|{which}|{i}": array for c, parts in scores.items()
            for which, arrays in parts.items() for i, array in enumerate(arrays)})
    proxy: dict[str, dict[str, float]] = {}
    for candidate, parts in scores.items():
        normal = np.concatenate(parts["normal"])
        proxy[candidate] = {}
        for family in FAMILIES:
            pseudo = np.concatenate(parts[family])
            truth = np.r_[np.zeros(normal.size), np.ones(pseudo.size)]
            proxy[candidate][family] = 100 * float(roc_auc_score(truth, np.r_[normal, pseudo]))
        proxy[candidate]["mean"] = float(np.mean([proxy[candidate][f] for f in FAMILIES]))
    return {"proxy_auc": proxy, "timing": timing,
            "frames": {w: int(sum(map(len, scores["anograph"][w])))
                       for w in ("normal", *FAMILIES)}}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "fusion")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"])
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=list(SINGLE),
                   help="methods measured; the first must be anograph (its fusions with the "
                        "others are the candidates)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--dump", type=Path, default=None,
                   help="also write every frame score of every candidate here (npz per dataset)")
    p.add_argument("--method-params", type=json.loads, default={},
                   help='JSON {method: {parameter: value}} on top of the CLI defaults')
    args = p.parse_args(argv)
    METHOD_PARAMS.update(args.method_params)
    if args.methods[0] != "anograph":
        p.error("--methods must start with anograph")
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    weights = args.data / "models" / "yolox_nano.onnx"
    start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "default_choice",
        "command": "python benchmarks/default_choice.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "proxy": f"frame AUC (x100, raw) of pseudo-anomalous copies of held-out training videos "
                 f"({', '.join(FAMILIES)}; speed-up {SPEEDUP}x) against the videos, mean over "
                 f"the kinds; {args.folds} folds; no test labels",
        "datasets": {}}
    for name in args.datasets:
        report["datasets"][name] = run_dataset(name, args.data, weights, args.cache, args.seed,
                                               args.folds, args.methods, args.dump)
    methods = list(next(iter(report["datasets"].values()))["proxy_auc"])
    report["mean_proxy_auc"] = {c: float(np.mean([d["proxy_auc"][c]["mean"]
                                                  for d in report["datasets"].values()]))
                                for c in methods}
    candidates = ("anograph", *fusions(args.methods))
    report["candidates"] = list(candidates)
    report["chosen"] = max(candidates, key=report["mean_proxy_auc"].get)
    report["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2))
    cols = [(d, f) for d in report["datasets"] for f in FAMILIES]
    print(f"\n{'method':28s} " + " ".join(f"{d[:5]}:{f[:7]:>7s}" for d, f in cols) + "    mean")
    for c in methods:
        print(f"{c:28s} " + " ".join(f"{report['datasets'][d]['proxy_auc'][c][f]:13.1f}"
                                     for d, f in cols)
              + f" {report['mean_proxy_auc'][c]:7.1f}" + ("" if c in candidates else "  (ref.)"))
    print(f"chosen among {', '.join(candidates)}: {report['chosen']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
