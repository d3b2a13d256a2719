"""The knowledge-graph view of a trained STRL on a Ped2 anomaly: a cyclist in test video 01.

    .venv/bin/python benchmarks/ped2_strl.py --save /tmp/strl_ped2       # train (once)
    .venv/bin/python benchmarks/ped2_strl_triples.py /tmp/strl_ped2 [--video 01 --frame 100]

For the frame, the moving regions (Algorithm 1) and the ground-truth anomaly box (from the
official pixel mask, added as a detection named "anomaly (ground truth)") become ``object``
nodes; every object is linked to every encoder cell (``scene_cell``) by a relation edge carrying
ψ. Writes ``benchmarks/results/ped2_strl_triples.png`` (the in-region triples drawn over the
frame), ``ped2_strl_relation_map.png`` (the learned relation map R clustered by K-means, as the
paper's Fig. 5) and ``ped2_strl_triples.json`` (each object's mean ψ and its most implausible
triples).
"""
from __future__ import annotations

import argparse
import json
import sys
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from detectors.base import Detections  # noqa: E402
from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.graphs.knowledge import (frame_triples, plot_relation_map, plot_triples,  # noqa: E402
                                      scene_graph)
from stgraph.models.base import load_model  # noqa: E402

DATA = Path(os.environ.get("STGRAPH_SHARED_DATA", REPO.parent / "shared" / "data")) / "ucsd_ped2"
RESULTS = REPO / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a saved STRL model directory")
    parser.add_argument("--video", default="01")
    parser.add_argument("--frame", type=int, default=100)
    args = parser.parse_args()
    model = load_model(args.model)
    model.progress = False
    mask = cv2.imread(str(DATA / "ground_truth" / "pixel_masks" / f"Test0{args.video}"
                          / f"{args.frame + 1:03d}.png"), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(mask > 0)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    gt = Detections(box, np.ones(1, np.float32), np.zeros(1, np.int64), frame_index=args.frame,
                    image_size=mask.shape, class_names=("anomaly (ground truth)",))
    maps = model.relation_maps(str(DATA / "testing" / "frames" / args.video), args.frame, gt)
    data = scene_graph(maps)
    title = (f"Ped2 test {args.video}, frame {args.frame}: object -> scene-cell relations "
             f"(ψ, red = implausible)")
    plot_triples(data, maps["image"], RESULTS / "ped2_strl_triples.png", title=title)
    plot_relation_map(maps["relation"], maps["image"], RESULTS / "ped2_strl_relation_map.png")
    objects = [{"object": i, "class_name": name, "box": [round(float(v), 1) for v in b],
                "mean_psi": float(f"{p:.3g}")}
               for i, (name, b, p) in enumerate(zip(data["object"].class_name,
                                                    data["object"].box.tolist(),
                                                    data["object"].psi.tolist()))]
    triples = frame_triples(data)
    out = {"video": args.video, "frame": args.frame, "model": str(args.model),
           "objects": objects, "most_implausible_triples": triples[:10],
           "n_triples_in_region": len(triples), "n_relation_edges": int(data.num_edges)}
    atomic_write_text(RESULTS / "ped2_strl_triples.json", json.dumps(out, indent=1))
    for o in objects:
        print(o)
    print(triples[:5])


if __name__ == "__main__":
    main()
