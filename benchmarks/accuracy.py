"""Object-level accuracy on UCSD Ped2 and CUHK Avenue, side by side, in one run.

One command from the repository root (data in ``../shared/data``)::

    .venv/bin/python benchmarks/accuracy.py            # ~10 min on one CPU core

For each dataset (its training videos -> its testing videos, as shipped in ``../shared/data``):

1. **Extract** once per video, cached in ``--cache`` (:class:`stgraph.cache.DetectionCache` for
   boxes, :func:`stgraph.features.flow.video_flow` for flow): YOLOX-Nano at confidence 0.05 with
   all 80 classes, the motion region detector's boxes, DIS "fast" optical flow, frame difference.
2. **Views** (nothing recomputed): ``yolox`` = the CLI's detector (confidence >= 0.3, its 7
   classes); ``yolox+motion`` = those boxes plus the moving regions no YOLOX box covers
   (:class:`detectors.composite.CompositeDetector`). Node features of every view: geometry (8),
   class (81), flow (16, :class:`stgraph.features.motion.FlowFeatures` pooled from the cached
   flow: the same numbers as the live producer) and track (5,
   :class:`stgraph.features.tracks.TrackFeatures`).
3. **Methods**: the one-line rule (highest non-person YOLOX confidence, all classes, conf 0.05),
   frame motion energy (mean |frame difference|), the current AnoGraph default (yolox view,
   geometry+class), :class:`stgraph.models.evidence.EvidenceFusion` on each evidence group
   alone, and fused (all groups, equal weights, calibrated on cross-fitted training scores),
   plus ablations (scorer, detector view, groups).
4. **Metrics**: frame micro/macro AUC and EER on raw scores (max over objects per frame, as live
   scoring sees them) and under the papers' protocol (per-video min-max, 15-frame mean filter);
   RBDC/TBDC (IoU 0.1, up to 1 false positive per frame) of the object rows against the pixel
   masks; fit and score seconds. Seeded methods run ``--seeds`` seeds and report the mean.

Writes ``benchmarks/results/accuracy.json`` and prints a table.
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
from types import SimpleNamespace
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detectors.base import Detections  # noqa: E402
from detectors.composite import CompositeDetector  # noqa: E402
from detectors.motion import MotionRegionDetector  # noqa: E402
from detectors.yolox_onnx import YoloxOnnxDetector  # noqa: E402
from stgraph.baselines import class_confidence_scores, frame_difference_scores  # noqa: E402
from stgraph.cache import DetectionCache, component_key, fingerprint, settings_key  # noqa: E402
from stgraph.cli import DEFAULT_CLASSES  # noqa: E402
from stgraph.datasets.avenue import load_avenue  # noqa: E402
from stgraph.datasets.ucsd import load_ucsd  # noqa: E402
from stgraph.features import ClassFeatures, GeometryFeatures  # noqa: E402
from stgraph.features.flow import video_flow  # noqa: E402
from stgraph.features.motion import FlowFeatures, box_flow_features  # noqa: E402
from stgraph.features.tracks import TrackFeatures  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.metrics import evaluate_frames  # noqa: E402
from stgraph.models import AnoGraph  # noqa: E402
from stgraph.models.evidence import EvidenceFusion  # noqa: E402
from stgraph.pipeline import settings_of  # noqa: E402
from stgraph.region_metrics import GroundTruthRegions, rbdc_tbdc  # noqa: E402
from stgraph.scores import ScoreTable, smooth_and_normalize  # noqa: E402

#: ``../shared/data`` of the checkout (or of the checkout's parent, for a git worktree).
DATA = next((p / "shared" / "data" for p in (REPO.parent, REPO.parent.parent)
             if (p / "shared" / "data").is_dir()), REPO.parent / "shared" / "data")
OUT = REPO / "benchmarks" / "results" / "accuracy.json"
CACHE = REPO / ".cache" / "accuracy"
PAPER_SMOOTH = 15
#: Feature groups of every view, in column order: name -> width.
GROUPS = {"geometry": 8, "class": 81, "flow": 16, "track": 5}


# ---------------------------------------------------------------------------- extraction
def extract_video(item, yolox: YoloxOnnxDetector, cache: DetectionCache) -> dict:
    """Raw YOLOX (0.05, all classes) and motion boxes, flow and frame difference of one video."""
    motion = MotionRegionDetector()
    key = settings_key("accuracy-v1", fingerprint(item.path),
                       component_key({"yolox": settings_of(yolox), "motion": settings_of(motion)}))
    flow_producer = FlowFeatures()
    t0 = time.perf_counter()
    flow = video_flow(item.source(), flow_producer.optical_flow(), cache_dir=CACHE / "flow")
    flow_s = time.perf_counter() - t0
    cached = cache.load(key)
    timing = {"flow_or_cache_s": flow_s}
    if cached is None:
        t0 = time.perf_counter()
        raw, moving, diff, previous = [], [], [], None
        for frame in item.source():
            raw.append(yolox.detect(frame.image, frame.index))
            moving.append(motion.detect(frame.image, frame.index))
        timing["detect_s"] = time.perf_counter() - t0
        n = len(raw)
        diff = frame_difference_scores(item.source())
        cached = raw + moving
        for d, v in zip(cached[:n], diff):
            d.meta["frame_difference"] = float(v)
        cache.save(key, cached, {"video": str(item.path)})
    n = len(cached) // 2
    raw, moving = cached[:n], cached[n:]
    diff = np.array([d.meta.get("frame_difference", np.nan) for d in raw])
    if not np.all(np.isfinite(diff)):
        diff = frame_difference_scores(item.source())
    return {"raw": raw, "motion": moving, "flow": flow, "frame_difference": diff,
            "timing": timing}


def cli_view(d: Detections, conf: float = 0.3) -> Detections:
    """The CLI's YOLOX output: confidence >= ``conf``, classes :data:`DEFAULT_CLASSES`."""
    keep = (d.scores >= conf) & np.isin(np.asarray(d.names), DEFAULT_CLASSES)
    return d[np.flatnonzero(keep)]


def with_all_features(dets: Sequence[Detections], flow: np.ndarray) -> list[Detections]:
    """``dets`` with geometry | class | flow | track features [N, 110] (see :data:`GROUPS`)."""
    geometry, classes, tracks = GeometryFeatures(), ClassFeatures(), TrackFeatures()
    blank = np.zeros((*dets[0].image_size, 3), np.uint8)
    out, previous = [], None
    for t, d in enumerate(dets):
        f = np.concatenate([geometry.extract(None, d, previous), classes.extract(blank, d),
                            box_flow_features(flow[t], d.boxes, d.image_size),
                            tracks.extract(None, d)], axis=1)
        previous = d.with_features(f)
        out.append(previous)
    return out


#: Column subsets of the [N, 110] features an evidence group can take (absolute indices).
SUBSETS = {"geometry": list(range(0, 8)), "class": list(range(8, 89)),
           "flow": list(range(89, 105)), "speed": [89], "flow4": list(range(89, 93)),
           "orientation": list(range(93, 101)), "track": list(range(105, 110))}


def columns(dets: Sequence[Detections], names: Sequence[str]) -> list[Detections]:
    """``dets`` with only the column subsets ``names`` (:data:`SUBSETS`), in the given order."""
    cols = np.concatenate([SUBSETS[n] for n in names])
    return [d.with_features(d.features[:, cols]) for d in dets]


def widths_of(names: Sequence[str]) -> list[int]:
    return [len(SUBSETS[n]) for n in names]


# ---------------------------------------------------------------------------- evaluation
def frame_metrics(frame_scores: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    raw = evaluate_frames(frame_scores, labels)
    paper = evaluate_frames({v: smooth_and_normalize(s, PAPER_SMOOTH, True)
                             for v, s in frame_scores.items()}, labels)
    return {"micro_auc": 100 * raw["micro_auc"], "macro_auc": 100 * raw["macro_auc"],
            "eer": raw["eer"], "paper_protocol_micro_auc": 100 * paper["micro_auc"],
            "paper_protocol_macro_auc": 100 * paper["macro_auc"]}


def table_metrics(table: ScoreTable, labels: dict, regions: GroundTruthRegions) -> dict:
    scores = {v: fs.scores for v, fs in table.frame_scores().items()}
    out = frame_metrics(scores, labels)
    region = rbdc_tbdc(table, regions)
    out.update({"rbdc": 100 * region["rbdc"], "tbdc": 100 * region["tbdc"]})
    return out


def mean_over(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    out = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    if len(runs) > 1:
        out["micro_auc_std"] = float(np.std([r["micro_auc"] for r in runs]))
    out["seeds"] = len(runs)
    return out


def run_model(make: Callable[[int], Any], train: list, test: dict, labels: dict,
              regions: GroundTruthRegions, seeds: Sequence[int]) -> dict:
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        model = make(seed).fit(train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = ScoreTable.concat([model.score(d, video=v) for v, d in test.items()])
        score_s = time.perf_counter() - t0
        runs.append({**table_metrics(table, labels, regions), "fit_s": fit_s, "score_s": score_s})
    return mean_over(runs)


# ---------------------------------------------------------------------------- main
#: Candidate defaults judged on training data only (speed-up pseudo-anomalies, :func:`proxy_auc`):
#: (name, evidence groups, EvidenceFusion params). Geometry, class and track evidence are in all.
CANDIDATES = (
    ("flow_knn", ["geometry", "class", "flow", "track"], {}),
    ("speed_knn", ["geometry", "class", "speed", "track"], {}),
    ("flow4_knn", ["geometry", "class", "flow4", "track"], {}),
    ("speed_mahalanobis", ["geometry", "class", "speed", "track"], {"scoring": "mahalanobis"}),
)
#: Pseudo-anomaly speed-up: every SPEEDUP-th frame of a held-out training video, flow x SPEEDUP.
SPEEDUP = 3


def prepare(name: str, dataset, yolox: YoloxOnnxDetector) -> dict:
    """Extraction (cached), labels, ground-truth regions and both views with features."""
    cache = DetectionCache(CACHE / "detections")
    print(f"[{name}] extracting ...", flush=True)
    t0 = time.perf_counter()
    extracted = {split: {item.name: extract_video(item, yolox, cache) for item in items}
                 for split, items in (("train", dataset.train), ("test", dataset.test))}
    extract_s = time.perf_counter() - t0
    labels = {item.name: np.asarray(item.labels) for item in dataset.test}
    regions = GroundTruthRegions.concat([
        GroundTruthRegions.from_video_masks(item.name, enumerate(item.pixel_masks()))
        for item in dataset.test])
    t0 = time.perf_counter()
    views: dict[str, dict[str, dict[str, list[Detections]]]] = {"yolox": {}, "yolox+motion": {}}
    pseudo: dict[str, list[Detections]] = {}
    for split, videos in extracted.items():
        views["yolox"][split], views["yolox+motion"][split] = {}, {}
        for video, e in videos.items():
            base = [cli_view(d) for d in e["raw"]]
            names = tuple(dict.fromkeys([*base[0].class_names, "moving"]))
            merged = [_merge(b, m, names) for b, m in zip(base, e["motion"])]
            views["yolox"][split][video] = with_all_features(base, e["flow"])
            views["yolox+motion"][split][video] = with_all_features(merged, e["flow"])
            if split == "train":  # speed-up pseudo-anomalies: skip frames, scale the flow
                pseudo[video] = with_all_features(merged[::SPEEDUP],
                                                  e["flow"][::SPEEDUP] * SPEEDUP)
    features_s = time.perf_counter() - t0
    frames = sum(len(e["raw"]) for split in extracted.values() for e in split.values())
    return {"name": name, "dataset": dataset, "extracted": extracted, "labels": labels,
            "regions": regions, "views": views, "pseudo": pseudo,
            "timing": {"frames": frames, "extract_s": extract_s,
                       "features_from_cache_s": features_s}}


def proxy_auc(state: dict, groups: Sequence[str], params: dict, folds: int = 2) -> float:
    """Frame AUC (x100) of held-out normal training frames against their speed-up
    pseudo-anomalies (training videos only; ``folds`` groups of videos held out in turn)."""
    videos = list(state["views"]["yolox+motion"]["train"])
    normal, abnormal = [], []
    for k in range(min(folds, len(videos))):
        held = videos[k::folds]
        rest = [columns(state["views"]["yolox+motion"]["train"][v], groups)
                for v in videos if v not in held]
        if not rest:
            continue
        model = EvidenceFusion(groups=widths_of(groups), **params).fit(rest)
        for v in held:
            for target, frames in ((normal, state["views"]["yolox+motion"]["train"][v]),
                                   (abnormal, state["pseudo"][v])):
                table = model.score(columns(frames, groups), video=v)
                target.append(table.frame_scores()[v].scores)
    scores = np.concatenate(normal + abnormal)
    truth = np.concatenate([np.zeros(sum(map(len, normal))), np.ones(sum(map(len, abnormal)))])
    from sklearn.metrics import roc_auc_score
    return 100 * float(roc_auc_score(truth, scores))


def evaluate(state: dict, seeds: Sequence[int], default: tuple, quick: bool) -> dict:
    """Every method of the module docstring on the test videos of one prepared dataset."""
    name, extracted, labels, regions = (state[k] for k in ("name", "extracted", "labels",
                                                             "regions"))
    views = state["views"]

    def data(view: str, groups: Sequence[str]):
        train = [columns(v, groups) for v in views[view]["train"].values()]
        test = {k: columns(v, groups) for k, v in views[view]["test"].items()}
        return train, test

    results: dict[str, Any] = {}
    results["one_line_rule"] = frame_metrics(
        {v: class_confidence_scores(e["raw"]) for v, e in extracted["test"].items()}, labels)
    results["frame_difference"] = frame_metrics(
        {v: e["frame_difference"] for v, e in extracted["test"].items()}, labels)
    print(f"[{name}] baselines: {results['one_line_rule']['micro_auc']:.1f} / "
          f"{results['frame_difference']['micro_auc']:.1f}", flush=True)

    train, test = data("yolox", ["geometry", "class"])
    results["anograph_default"] = run_model(
        lambda s: AnoGraph(seed=s, progress=False), train, test, labels, regions, seeds)
    print(f"[{name}] anograph: {results['anograph_default']['micro_auc']:.1f}", flush=True)

    _, groups, params = default
    motion = [g for g in groups if g not in ("geometry", "class", "track")]
    experiments: list[tuple[str, str, list[str], dict]] = [
        *[(f"evidence_{g}", "yolox+motion", [g], params)
          for g in ["geometry", "class", *motion, "track"]],
        ("fused_default", "yolox+motion", groups, params),
        ("fused_yolox_only", "yolox", groups, params),
        ("fused_no_class", "yolox+motion", [g for g in groups if g != "class"], params),
        ("fused_no_geometry", "yolox+motion", [g for g in groups if g != "geometry"], params),
        *[(f"fused_{c}", "yolox+motion", g, p) for c, g, p in CANDIDATES if c != default[0]],
    ]
    if not quick:
        experiments.append(("fused_gmm", "yolox+motion", groups, {**params, "scoring": "gmm"}))
    for label, view, groups_, params_ in experiments:
        train, test = data(view, groups_)
        results[label] = run_model(
            lambda s: EvidenceFusion(groups=widths_of(groups_), **{**params_, "seed": s}),
            train, test, labels, regions, seeds if label == "fused_default" else seeds[:1])
        results[label].update({"view": view, "groups": list(groups_), **params_})
        print(f"[{name}] {label}: {results[label]['micro_auc']:.1f} "
              f"(paper protocol {results[label]['paper_protocol_micro_auc']:.1f})", flush=True)
    timing = {**state["timing"], "flow_ms_per_frame": _flow_ms(state["dataset"].test[0])}
    return {"results": results, "timing": timing,
            "videos": {"train": len(state["dataset"].train), "test": len(state["dataset"].test)}}


def _merge(base: Detections, moving: Detections, names: tuple[str, ...]) -> Detections:
    """One frame of the ``yolox+motion`` view (:meth:`CompositeDetector.merge`)."""
    merger = _MERGERS.get(names)
    if merger is None:
        merger = _MERGERS[names] = _NamedComposite(names)
    return merger.merge([base, moving], base.frame_index, base.image_size)


class _NamedComposite(CompositeDetector):
    """A CompositeDetector that only merges (class names given, no detectors to run)."""

    def __init__(self, names: tuple[str, ...]) -> None:  # noqa: D107
        self.detectors, self.overlap, self.class_names = [], 0.5, names


_MERGERS: dict[tuple[str, ...], _NamedComposite] = {}


def _flow_ms(item) -> float:
    """Milliseconds per frame of live FlowFeatures (flow + pooling) on one test video, fresh."""
    producer, source = FlowFeatures(), item.source()
    frames = [f for f in source][:100]
    d = Detections([[10, 10, 60, 120]], [1.0], [0], image_size=frames[0].image.shape[:2])
    t0 = time.perf_counter()
    for frame in frames:
        producer.extract(frame.image, Detections(d.boxes, d.scores, d.labels, frame.index,
                                                 d.image_size))
    return 1000 * (time.perf_counter() - t0) / len(frames)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--seeds", type=int, default=3, help="seeds of the seeded methods")
    p.add_argument("--quick", action="store_true", help="skip the GMM ablation")
    p.add_argument("--videos", type=int, default=None,
                   help="use only the first N training and N testing videos (smoke runs)")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"], choices=["ped2", "avenue"])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    start = time.perf_counter()
    yolox = YoloxOnnxDetector(str(args.data / "models" / "yolox_nano.onnx"), conf_threshold=0.05,
                              num_threads=1)
    seeds = list(range(args.seeds))
    report = {"benchmark": "accuracy", "command": "python benchmarks/accuracy.py "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "settings": {"yolox": settings_of(yolox), "cli_view": {"conf": 0.3,
                           "classes": list(DEFAULT_CLASSES)}, "groups": GROUPS, "subsets": SUBSETS,
                           "flow": FlowFeatures().get_params(), "paper_smooth": PAPER_SMOOTH,
                           "seeds": seeds, "evidence_defaults": EvidenceFusion().get_params()},
              "datasets": {}}
    loaders = {"ped2": lambda: load_ucsd(args.data / "ucsd_ped2"),
               "avenue": lambda: load_avenue(args.data / "avenue")}
    states = {}
    for name in args.datasets:
        dataset = loaders[name]()
        if args.videos:
            dataset = SimpleNamespace(train=dataset.train[:args.videos],
                                      test=dataset.test[:args.videos])
        states[name] = prepare(name, dataset, yolox)
    # choose the default on training data only: mean speed-up proxy AUC over the datasets
    selection = {}
    for cand, groups, params in CANDIDATES:
        selection[cand] = {name: proxy_auc(state, groups, params)
                           for name, state in states.items()}
        selection[cand]["mean"] = float(np.mean(list(selection[cand].values())))
        print(f"proxy {cand}: {selection[cand]}", flush=True)
    chosen = max(CANDIDATES, key=lambda c: selection[c[0]]["mean"])
    report["selection"] = {"proxy": f"frame AUC, held-out training frames vs the same frames "
                           f"sped up x{SPEEDUP} (every {SPEEDUP}rd frame, flow x {SPEEDUP}); "
                           "2 folds of training videos", "auc": selection,
                           "chosen": chosen[0], "groups": chosen[1], "params": chosen[2]}
    for name, state in states.items():
        report["datasets"][name] = evaluate(state, seeds, chosen, args.quick)
    report["machine"] = {"cpu": platform.processor() or platform.machine(),
                         "threads": torch.get_num_threads(), "note": "2-core CPU, 1 core pinned"}
    report["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2, default=float))
    print(f"\n{'method':24s} " + "  ".join(f"{d:>28s}" for d in report["datasets"]))
    names = list(next(iter(report["datasets"].values()))["results"])
    for method in names:
        cells = []
        for d in report["datasets"].values():
            r = d["results"][method]
            cells.append(f"micro {r['micro_auc']:5.1f} macro {r['macro_auc']:5.1f} "
                         f"pp {r['paper_protocol_micro_auc']:5.1f}")
        print(f"{method:24s} " + "  ".join(cells))
    print(f"wall {report['wall_s']:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
