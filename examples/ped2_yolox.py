"""UCSD Ped2 with YOLOX-nano: fit on the training videos, score the test videos, evaluate.

    python examples/ped2_yolox.py [--data ../shared/data] [--out outputs/ped2]

The same as ``stgraph fit --method anograph`` + ``stgraph score`` + ``stgraph eval`` on the
command line, written out with the API (the CLI's default method fuses Ano-Graph with three
frame-level methods: ``LateFusion()``). Detections and features are cached in ``.cache/stgraph``, so a second run skips
detection (a first run takes a few minutes on 2 CPU cores). ``benchmarks/ped2_anograph.py`` is the
measured version, with baselines and timings.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from detectors import YoloxOnnxDetector
from stgraph.datasets import load_dataset
from stgraph.features import ClassFeatures, ConcatFeatures, GeometryFeatures
from stgraph.metrics import evaluate_frames
from stgraph.models import AnoGraph
from stgraph.pipeline import Pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("outputs/ped2"))
    args = ap.parse_args()

    dataset = load_dataset(args.data / "ucsd_ped2")             # training/ + testing/ + labels
    pipe = Pipeline(YoloxOnnxDetector(args.data / "models" / "yolox_nano.onnx", conf_threshold=0.3),
                    ConcatFeatures([GeometryFeatures(), ClassFeatures()]),
                    AnoGraph(epochs=30), cache_dir=".cache/stgraph")
    pipe.fit(dataset.train)
    table = pipe.score_many(dataset.test)                        # every object of every frame
    report = evaluate_frames(table.frame_scores(), dataset.labels)
    print(f"frame AUC micro {100 * report['micro_auc']:.2f}  macro {100 * report['macro_auc']:.2f}  "
          f"EER {100 * report['eer']:.2f}")
    table.to_csv(args.out / "scores.csv")
    pipe.save(args.out / "model")                                # stgraph score --model ... works
    print(f"wrote {args.out / 'scores.csv'} and {args.out / 'model'}")


if __name__ == "__main__":
    main()
