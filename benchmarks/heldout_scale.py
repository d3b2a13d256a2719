"""Late fusion on an in-sample or a held-out training scale, and the alarm threshold it gives.

``LateFusion`` puts each member's frame scores on the scale of that member's own training
scores, ``z = (s - q50) / (q99 - q50)``, and sets its alarm threshold at the 0.99 quantile of
the fused training scores. Most members score their training videos **in sample** (the
autoencoders reconstruct what they were trained on), so their training scale is too tight and
the threshold too low: on Avenue the default fusion alarms on 98% of the normal test frames
(``benchmarks/results/avenue_operating_point_default.json``).

This benchmark measures the alternative, ``LateFusion(heldout_folds=2)``: **cross-fitted**
training scores. The training videos are split in two folds (alternate videos), each member is
fitted on one fold and scores the other, so every training frame gets a score from a model that
never saw it. Reported per dataset, for the fusion of ``--methods`` (and each member alone; each
member runs through the CLI's pipeline):

- frame micro / macro AUC with the in-sample and with the held-out member scales;
- the operating point at the 0.99 quantile of the fused training scores, in-sample vs held-out:
  frame TPR / FPR, false alarms per minute of normal footage, anomalous events caught
  (``benchmarks/operating_point.py``'s definitions, ``--min-duration 3 --merge-gap 5``).

No test label chooses anything here: both scales come from training videos only.

Usage (data in ``../shared/data``, one pinned core per dataset)::

    taskset -c 0 .venv/bin/python benchmarks/heldout_scale.py --datasets ped2 \\
        --dump /tmp/heldout --out benchmarks/results/heldout_scale_ped2.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import fusion as fusion_bench  # noqa: E402  (sets sys.path and the thread environment)
import ped2_autoencoders  # noqa: E402
from accuracy import DATA  # noqa: E402
from operating_point import operating_point  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.models.base import ScoreQuantiles  # noqa: E402
from stgraph.scores import ScoreTable  # noqa: E402
from stgraph.scores.fusion import fuse, scored_frame_scores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "heldout_scale.json"
FPS = {"ped2": 10.0, "avenue": 25.0}
QUANTILE = 0.99


def fitted_tables(method: str, train: Sequence[Path], test: Sequence[Path], weights: Path,
                  cache: Path, seed: int, dump: Path | None) -> dict[str, Any]:
    """One member: its test table and in-sample training table (fitted on all training videos),
    its held-out training table (2-fold cross-fit) and its own ``train_scores_``."""
    cached = None if dump is None else dump / f"{method}.npz"
    if cached is not None and cached.exists():
        print(f"  {method}: reused {cached}", flush=True)
        saved = np.load(cached)
        return {key: (ScoreTable.read_csv(dump / f"{method}_{key}.csv")
                      if key.endswith("table") else saved[key]) for key in
                ("test_table", "train_table", "heldout_table", "own_train_scores", "timing")}
    out: dict[str, Any] = {}
    pipe = fusion_bench.make_pipeline(method, weights, cache, seed)
    t0 = time.perf_counter()
    pipe.fit([str(p) for p in train])
    fit_s = time.perf_counter() - t0
    out["test_table"] = ScoreTable.concat([pipe.score(str(p), name=p.stem) for p in test])
    out["train_table"] = ScoreTable.concat([pipe.score(str(p), name=p.stem) for p in train])
    out["own_train_scores"] = np.asarray(pipe.model.train_scores_.values)
    folds = [list(train[0::2]), list(train[1::2])]
    parts = []
    t0 = time.perf_counter()
    for k in (0, 1):
        half = fusion_bench.make_pipeline(method, weights, cache, seed)
        half.fit([str(p) for p in folds[k]])
        parts += [half.score(str(p), name=p.stem) for p in folds[1 - k]]
    crossfit_s = time.perf_counter() - t0
    out["heldout_table"] = ScoreTable.concat(parts)
    out["timing"] = np.asarray([fit_s, crossfit_s])
    print(f"  {method}: fit {fit_s:.0f} s, cross-fit {crossfit_s:.0f} s", flush=True)
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        for key in ("test_table", "train_table", "heldout_table"):
            out[key].to_csv(dump / f"{method}_{key}.csv")
        np.savez(cached, own_train_scores=out["own_train_scores"], timing=out["timing"])
    return out


def run_dataset(name: str, data: Path, methods: Sequence[str], cache: Path, seed: int,
                dump: Path | None) -> dict:
    ped2_autoencoders.SHARED = data
    train, test, labels, _ = ped2_autoencoders.videos_of(name, data / "ucsd_ped2")
    labels = {p.stem: np.asarray(labels[p.stem]) for p in test}
    weights = data / "models" / "yolox_nano.onnx"
    runs = {m: fitted_tables(m, train, test, weights, cache, seed,
                             None if dump is None else dump / name) for m in methods}
    scales = {
        # LateFusion(heldout_folds=0): each member's own train_scores_
        "in_sample": {m: ScoreQuantiles(np.asarray(r["own_train_scores"], np.float64),
                                        len(r["own_train_scores"])) for m, r in runs.items()},
        "heldout": {m: ScoreQuantiles.from_scores(scored_frame_scores([r["heldout_table"]]))
                    for m, r in runs.items()},
    }
    results: dict[str, Any] = {}
    sets = {m: (m,) for m in methods}
    sets["+".join(methods)] = tuple(methods)
    for label, members in sets.items():
        for scale_name, scale in scales.items():
            q = [scale[m] for m in members]
            test_fused = fuse([runs[m]["test_table"] for m in members], train_scores=q)
            train_key = "train_table" if scale_name == "in_sample" else "heldout_table"
            train_fused = fuse([runs[m][train_key] for m in members], train_scores=q)
            threshold = float(np.quantile(scored_frame_scores([train_fused]), QUANTILE))
            op = operating_point(test_fused, labels, threshold, FPS[name], 3, 5)["summary"]
            results.setdefault(label, {})[scale_name] = {
                **fusion_bench.metrics(test_fused, labels)["raw"],
                "threshold": threshold,
                "frame_tpr": op["frame_tpr"], "frame_fpr": op["frame_fpr"],
                "false_alarms_per_minute": op["false_alarms_per_minute_of_normal_footage"],
                "events_caught": op["anomalous_events_caught"],
                "member_scale": {m: {"median": float(scale[m].quantile(0.5)),
                                     "q99": float(scale[m].quantile(0.99))} for m in members},
            }
    timing = {m: {"fit_s": float(r["timing"][0]), "crossfit_s": float(r["timing"][1])}
              for m, r in runs.items()}
    return {"results": results, "timing": timing,
            "videos": {"train": len(train), "test": len(test)}}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "fusion")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"], choices=["ped2", "avenue"])
    p.add_argument("--methods", nargs="+",
                   default=["anograph", "stm_ae", "frame_difference", "patch_knn"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dump", type=Path, default=None,
                   help="write (and reuse) every member's tables here")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "heldout_scale",
        "command": "python benchmarks/heldout_scale.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {"methods": args.methods, "seed": args.seed, "folds": "alternate videos",
                     "threshold_quantile": QUANTILE, "min_duration": 3, "merge_gap": 5},
        "datasets": {}}
    for name in args.datasets:
        print(f"[{name}]", flush=True)
        report["datasets"][name] = run_dataset(name, args.data, args.methods, args.cache,
                                               args.seed, args.dump)
    report["machine"] = {"cpu": platform.processor() or platform.machine(),
                         "threads": torch.get_num_threads(), "note": "2-core CPU, 1 core pinned"}
    report["wall_s"] = time.perf_counter() - start
    atomic_write_text(args.out, json.dumps(report, indent=2))
    for name, ds in report["datasets"].items():
        for label, by_scale in ds["results"].items():
            for scale_name, r in by_scale.items():
                print(f"{name:7s} {label:48s} {scale_name:9s} micro {r['micro_auc']:5.1f} "
                      f"macro {r['macro_auc']:5.1f}  thr {r['threshold']:8.3f} "
                      f"TPR {100 * r['frame_tpr']:5.1f} FPR {100 * r['frame_fpr']:5.1f} "
                      f"FA/min {r['false_alarms_per_minute']:5.2f} "
                      f"events {100 * r['events_caught']:4.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
