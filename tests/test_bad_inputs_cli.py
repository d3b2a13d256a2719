"""Bad-input matrix of the ``stgraph`` command (issue 10).

Every case must end with exit status 2, one line on stderr that starts ``stgraph <command>:
error:`` and names the value or file at fault, no traceback, and no file left in the output
folder. Each case runs through ``stgraph.cli.main``; the cases in :data:`IN_SUBPROCESS` (at least
one per defect) also run as a user runs them, ``python -m stgraph.cli`` in a subprocess (each
costs an interpreter start and often the torch import, so not all of them). The API side of the
same defects is in ``tests/test_bad_inputs.py``. Inputs are tiny and synthetic (a 16-frame 96x128
video, a hand-made score table, fake or minimal weight files).
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch

from _score_helpers import object_table

REPO = Path(__file__).resolve().parents[1]
ONNX_HEAD = b"\x08\x07\x12\x07pytorch\x1a\x052.1.0"


def _field(number: int, value: int | str | bytes) -> bytes:
    """One protobuf field: a varint, or length-delimited bytes / text."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return bytes(out)

    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def tiny_onnx(name: str = "g") -> bytes:
    """A valid ONNX model (Identity on a float [1, 3, 416, 416] input "images") that onnxruntime
    loads, written without the onnx package; ``name`` (the graph's) changes its content."""
    dims = b"".join(_field(1, _field(1, d)) for d in (1, 3, 416, 416))
    tensor = _field(1, _field(1, 1) + _field(2, dims))  # TypeProto.tensor_type: FLOAT, shape

    def info(value: str) -> bytes:
        return _field(1, value) + _field(2, tensor)

    graph = (_field(1, _field(1, "images") + _field(2, "out") + _field(4, "Identity"))
             + _field(2, name) + _field(11, info("images")) + _field(12, info("out")))
    return _field(1, 7) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))


def stgraph(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m stgraph.cli ARGV`` in ``cwd``, with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stgraph.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Read-only inputs shared by the cases (never written by them)."""
    from stgraph.datasets.synthetic import make_video

    root = tmp_path_factory.mktemp("inputs")
    files = {"video": make_video(3, n_frames=16, n_people=3, size=(96, 128))
             .write_video(root / "clip.avi")}
    table = object_table("clip", {0: [1.0, 3.0], 1: [], 2: [4.0], 3: [1.0, 2.0], 4: [5.0]})
    table.to_csv(root / "scores.csv")
    files["scores"] = root / "scores.csv"
    np.savez(root / "labels.npz", clip=np.array([0, 0, 1, 1, 0], np.uint8))
    np.savez(root / "long_labels.npz", clip=np.zeros(9, np.uint8))
    files["labels"], files["long_labels"] = root / "labels.npz", root / "long_labels.npz"
    (root / "backbone.onnx").write_bytes(ONNX_HEAD + bytes(256))
    files["onnx"] = root / "backbone.onnx"
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4000)}, buffer)
    (root / "cut.pt").write_bytes(buffer.getvalue()[:-200])
    files["cut_pt"] = root / "cut.pt"
    (root / "yolo.onnx").write_text("these are not weights\n")
    files["text_onnx"] = root / "yolo.onnx"
    (root / "a_file").write_text("x")
    files["a_file"] = root / "a_file"
    (root / "frames" / "other").mkdir(parents=True)  # a video root without the scored video
    for i in range(3):
        cv2.imwrite(str(root / "frames" / "other" / f"{i:03d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    files["wrong_root"] = root / "frames"
    files["model"] = saved_model(root / "m")[0]
    return files


def saved_model(folder: Path, weights_name: str = "x.onnx") -> tuple[Path, Path]:
    """A saved pipeline whose detector names a weights file by a relative path; returns
    (model folder, weights file). The detector never runs (FrameDifference fits on frames)."""
    from detectors.yolox_onnx import YoloxOnnxDetector
    from stgraph.models.frame_difference import FrameDifference
    from stgraph.pipeline import Pipeline

    weights = folder / "small" / "models" / weights_name
    weights.parent.mkdir(parents=True)
    weights.write_bytes(tiny_onnx("v1"))
    here = Path.cwd()
    os.chdir(folder)
    try:  # the path as a user types it, relative to where `fit` runs
        pipe = Pipeline(YoloxOnnxDetector(f"small/models/{weights_name}"), None, FrameDifference())
        pipe.fit([np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), np.uint8)])
        pipe.save("model")
    finally:
        os.chdir(here)
    return folder / "model", weights


@dataclass
class Case:
    """``argv(inputs, out)`` -> command line; ``patterns`` must all be in the one error line."""

    defect: str
    name: str
    argv: Callable[[dict, Path], list]
    patterns: tuple[str, ...]


V, S, L = "video", "scores", "labels"
CASES = [
    # 1: frame counts and indices are checked (a camera would never end with --frames 0)
    Case("1", "graph --frames 0", lambda i, o: ["graph", "--video", i[V], "--detector", "motion",
                                               "--frames", "0", "--out", o / "g.pt"],
         ("--frames", "must be >= 1, got 0")),
    Case("1", "graph --frames -3", lambda i, o: ["graph", "--video", i[V], "--detector", "motion",
                                                "--frames", "-3", "--out", o / "g.pt"],
         ("--frames", "got -3")),
    Case("1", "graph --start -5", lambda i, o: ["graph", "--video", i[V], "--detector", "motion",
                                               "--start", "-5", "--out", o / "g.pt"],
         ("--start", "frame index must be >= 0, got -5")),
    Case("1", "score --frames 0", lambda i, o: ["score", "--model", i["model"], "--video", i[V],
                                               "--frames", "0", "--out", o / "s.csv"],
         ("--frames", "got 0")),
    Case("1", "fit --frames abc", lambda i, o: ["fit", "--train", i[V], "--detector", "motion",
                                               "--frames", "abc", "--out", o / "m"],
         ("--frames", "whole number", "'abc'")),
    # 2: weight files torch / ultralytics cannot read: one line, before any frame is read
    Case("2", "graph --backbone <an .onnx file>",
         lambda i, o: ["graph", "--video", i[V], "--detector", "motion", "--features", "roi",
                       "--backbone", i["onnx"], "--out", o / "g.pt"],
         (r"backbone\.onnx", "ONNX model, not a torch state_dict")),
    Case("2", "graph --backbone <a truncated .pt>",
         lambda i, o: ["graph", "--video", i[V], "--detector", "motion", "--features", "roi",
                       "--backbone", i["cut_pt"], "--out", o / "g.pt"],
         (r"cut\.pt", "truncated or corrupt")),
    Case("2", "fit --backbone <an .onnx file>",
         lambda i, o: ["fit", "--train", i[V], "--detector", "motion", "--features", "roi",
                       "--backbone", i["onnx"], "--out", o / "m", "--cache", o / "cache"],
         (r"backbone\.onnx", "ONNX model")),
    # 4: labels longer than the video
    Case("4", "eval with labels longer than the video",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i["long_labels"],
                       "--out", o / "m.json"],
         ("'clip' has 5 frames", "9 frame labels")),
    Case("4", "plot with labels longer than the video",
         lambda i, o: ["plot", "--scores", i[S], "--labels", i["long_labels"],
                       "--out", o / "c.png"],
         ("'clip' has 5 frames", "9 frame labels")),
    # 5: saved weights that moved or changed; a bad --weights
    Case("5", "score: the fitted weights file moved",
         lambda i, o: ["score", "--model", _moved(o), "--video", i[V], "--out", o / "s.csv"],
         (r"x\.onnx", "the model was fitted with are missing", "--weights PATH")),
    Case("5", "score: the fitted weights file changed",
         lambda i, o: ["score", "--model", _changed(o), "--video", i[V], "--out", o / "s.csv"],
         (r"x\.onnx", "changed since the model was fitted", "--weights PATH")),
    Case("5", "score --weights <missing file>",
         lambda i, o: ["score", "--model", i["model"], "--video", i[V], "--weights",
                       o / "gone.onnx", "--out", o / "s.csv"],
         ("--weights", r"gone\.onnx")),
    Case("5", "watch: the fitted weights file moved",
         lambda i, o: ["watch", "--model", _moved(o), "--video", i[V], "--scores", o / "s.csv"],
         (r"x\.onnx", "missing")),
    # 6: a detector without weights
    Case("6", "graph --detector torchvision without --weights",
         lambda i, o: ["graph", "--video", i[V], "--detector", "torchvision", "--out", o / "g.pt"],
         ("no weights file given",)),
    Case("6", "graph --detector yolox without --weights",
         lambda i, o: ["graph", "--video", i[V], "--detector", "yolox", "--out", o / "g.pt"],
         ("--detector yolox needs --weights",)),
    # 7: values out of range
    Case("7", "graph --conf 5", lambda i, o: ["graph", "--video", i[V], "--detector", "motion",
                                             "--conf", "5", "--out", o / "g.pt"],
         ("--conf", r"\(0, 1\]", "got 5")),
    Case("7", "fit --conf 0", lambda i, o: ["fit", "--train", i[V], "--conf", "0",
                                           "--out", o / "m"], ("--conf", "got 0")),
    Case("7", "watch --max-frames -1",
         lambda i, o: ["watch", "--model", i["model"], "--video", i[V], "--max-frames", "-1"],
         ("--max-frames", "got -1")),
    Case("7", "watch --window-radius -2",
         lambda i, o: ["watch", "--model", i["model"], "--video", i[V], "--window-radius", "-2"],
         ("--window-radius", "got -2")),
    # 9: output paths checked before any work, no temporary file name in the message
    Case("9", "fit --out <an existing file>",
         lambda i, o: ["fit", "--train", i[V], "--detector", "motion", "--out", i["a_file"],
                       "--cache", o / "cache"], (r"a_file", "not a directory")),
    Case("9", "eval --masks <missing>",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i[L], "--masks", o / "nowhere",
                       "--out", o / "m.json"], ("--masks", "nowhere")),
    Case("9", "eval --report <a file>",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i[L], "--report", i["a_file"],
                       "--out", o / "m.json"], ("--report", "a_file", "give a folder")),
    Case("9", "eval --out <a directory>",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i[L], "--out", _folder(o)],
         ("--out", "give a file name")),
    Case("9", "score --out <a directory>",
         lambda i, o: ["score", "--model", i["model"], "--video", i[V], "--out", _folder(o)],
         ("--out", "is a directory")),
    Case("9", "plot --out <a directory>",
         lambda i, o: ["plot", "--scores", i[S], "--out", _folder(o)], ("--out", "is a directory")),
    Case("9", "plot --overlay-out .gif (no curve written first)",
         lambda i, o: ["plot", "--scores", i[S], "--out", o / "c.png", "--overlay", i[V],
                       "--overlay-out", o / "o.gif"], (r"o\.gif", r"\.mp4, \.avi, \.png")),
    Case("9", "plot --overlay <missing video> (no curve written first)",
         lambda i, o: ["plot", "--scores", i[S], "--out", o / "c.png", "--overlay",
                       o / "gone.avi"], (r"gone\.avi",)),
    Case("9", "graph --plot <a directory>",
         lambda i, o: ["graph", "--video", i[V], "--detector", "motion", "--out", o / "g.pt",
                       "--plot", _folder(o)], ("--plot", "is a directory")),
    Case("9", "watch --events <a directory>",
         lambda i, o: ["watch", "--model", i["model"], "--video", i[V], "--events", _folder(o)],
         ("--events", "is a directory")),
    Case("9", "fit --out <inside a file>",
         lambda i, o: ["fit", "--train", i[V], "--detector", "motion", "--out",
                       i["a_file"] / "model"], ("a_file", "is a file")),
    # 10: a --video-root without the scored videos
    Case("10", "eval --video-root without the scored videos",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i[L], "--report", o / "report",
                       "--video-root", i["wrong_root"]], ("--video-root", "none of the scored "
                                                          r"videos \[clip\]", "other")),
    Case("10", "eval --video-root that does not exist",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i[L], "--report", o / "report",
                       "--video-root", o / "nowhere"], ("nowhere",)),
    # friction (subsets): a dataset's list of problems is one line too
    Case("subsets", "fit --train <a dataset root without its training split>",
         lambda i, o: ["fit", "--train", _test_only(o), "--detector", "motion", "--out", o / "m"],
         ("dataset", "has 1 problem", r"missing split folder .*training/$")),
    Case("10", "eval --video-root without --report",
         lambda i, o: ["eval", "--scores", i[S], "--labels", i[L], "--video-root", i["wrong_root"]],
         ("--video-root", "give --report")),
]


#: Cases that also run in a subprocess: one per defect, the cheapest where there is a choice.
IN_SUBPROCESS = {"graph --frames 0", "graph --backbone <an .onnx file>",
                 "eval with labels longer than the video", "score: the fitted weights file moved",
                 "graph --detector torchvision without --weights", "graph --conf 5",
                 "eval --out <a directory>", "plot --overlay-out .gif (no curve written first)",
                 "eval --video-root without the scored videos",
                 "fit --train <a dataset root without its training split>"}


def _folder(out: Path) -> Path:
    (out / "a_folder").mkdir()
    return out / "a_folder"


def _test_only(out: Path) -> Path:
    """A dataset root with testing/ and labels but no training/ (outside ``out``)."""
    root = out.parent / f"{out.name}_inputs" / "cams"
    for name in ("a", "b"):
        (root / "testing" / "frames" / name).mkdir(parents=True)
        for i in range(2):
            (root / "testing" / "frames" / name / f"{i:03d}.jpg").write_bytes(_JPEG)
    return root


_JPEG = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


def _moved(out: Path) -> Path:
    model, weights = saved_model(out / "fit")
    weights.rename(weights.with_name("elsewhere.onnx"))
    return model


def _changed(out: Path) -> Path:
    model, weights = saved_model(out / "fit")
    weights.write_bytes(tiny_onnx("v2, retrained"))
    return model


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _check(case: Case, argv: list[str], code: int, stderr: str, out: Path, before: set) -> None:
    err = stderr.strip().splitlines()
    assert code == 2, (argv, stderr)
    assert "Traceback" not in stderr, stderr
    assert err and err[-1].startswith(f"stgraph {argv[0]}: error:"), stderr
    assert len([line for line in err if "error" in line]) == 1, stderr
    for pattern in case.patterns:
        assert re.search(pattern, err[-1]), f"{pattern!r} not in {err[-1]!r}"
    assert not re.search(r"\.tmp|tmp[a-z0-9_]{6}", err[-1].replace(str(out), "")), err[-1]
    assert _files(out) == before, "partial output left behind"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.defect}: {c.name}" for c in CASES])
def test_cli_bad_input_exits_2_with_one_line(case, inputs, tmp_path, capsys, monkeypatch):
    from stgraph.cli import main

    argv = [str(a) for a in case.argv(inputs, tmp_path)]
    before = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    _check(case, argv, code, capsys.readouterr().err, tmp_path, before)


SUBPROCESS_CASES = [case for case in CASES if case.name in IN_SUBPROCESS]


def test_every_defect_has_a_subprocess_case():
    assert len(SUBPROCESS_CASES) == len(IN_SUBPROCESS)
    assert {c.defect for c in SUBPROCESS_CASES} == {c.defect for c in CASES}


@pytest.mark.parametrize("case", SUBPROCESS_CASES,
                         ids=[f"{c.defect}: {c.name}" for c in SUBPROCESS_CASES])
def test_cli_bad_input_in_a_subprocess(case, inputs, tmp_path):
    argv = [str(a) for a in case.argv(inputs, tmp_path)]
    before = _files(tmp_path)
    run = stgraph(*argv, cwd=tmp_path)
    _check(case, argv, run.returncode, run.stderr, tmp_path, before)


def test_cli_usage_errors_are_one_line_and_point_to_help(tmp_path):
    run = stgraph("graph", "--video", "x.avi", "--frames", "0", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "stgraph graph: error: argument --frames: must be >= 1, got 0 (see stgraph graph --help)"]


def test_readme_motion_command_draws_a_spatio_temporal_graph(inputs, tmp_path):
    """Defect 3: `stgraph graph --video V --detector motion` (default start) starts after the
    detector's warm-up frames, says so, and gives temporal edges."""
    from torch_geometric.data import Data

    run = stgraph("--quiet", "graph", "--video", str(inputs[V]), "--detector", "motion",
                  "--features", "geometry", "--out", "graph.pt", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "needs 4 earlier frames; starting at frame 4" in run.stdout
    data = Data.from_dict(torch.load(tmp_path / "graph.pt", weights_only=True))
    assert data.frame.min() == 4 and int((data.edge_type == 1).sum()) > 0


def test_saved_weights_resolve_from_another_folder_and_can_be_overridden(tmp_path, monkeypatch,
                                                                         caplog):
    """Defect 5: a model fitted with a relative weights path loads from any folder; ``weights=``
    (``--weights``) points it at a copy, with a warning when the copy's content differs."""
    from stgraph.pipeline import Pipeline

    model, weights = saved_model(tmp_path / "fit")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert Pipeline.load(model).detector.model_path == str(weights.resolve())
    shutil.copy(weights, "copy.onnx")
    weights.unlink()
    with caplog.at_level("WARNING"):
        assert Pipeline.load(model, weights="copy.onnx").detector.model_path == \
            str(elsewhere / "copy.onnx")
    assert "differ" not in caplog.text
    (elsewhere / "copy.onnx").write_bytes(tiny_onnx("other weights"))
    with caplog.at_level("WARNING"):
        Pipeline.load(model, weights="copy.onnx")
    assert "differ from the ones the model was fitted with" in caplog.text


def test_outputs_get_the_permissions_open_gives(inputs, tmp_path):
    """Defect 8 through the command: eval's metrics and report files are not 0600."""
    old = os.umask(0o022)
    try:
        run = stgraph("eval", "--scores", str(inputs[S]), "--labels", str(inputs[L]),
                      "--out", "m.json", "--report", "report", cwd=tmp_path)
    finally:
        os.umask(old)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "report").stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "report").rglob("*")
               if p.is_file())


def test_every_option_has_help_and_the_version_and_quiet_work(tmp_path):
    """Friction: --help texts and defaults, --version, --quiet after the subcommand too."""
    import argparse

    from stgraph import __version__
    from stgraph.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        assert sub.formatter_class is argparse.ArgumentDefaultsHelpFormatter
        undocumented = [a.option_strings for a in sub._actions if a.help is None]
        assert not undocumented, f"stgraph {name}: options without help {undocumented}"
    assert parser.parse_args(["score", "--model", "m", "--video", "v", "--quiet"]).quiet
    run = stgraph("--version", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == f"stgraph {__version__}"


def test_score_and_watch_take_the_window_from_the_same_frame_rate(inputs, tmp_path):
    """Friction (frame rate): --fps makes a frame folder's rate known to both commands; without
    it both use the model's default window (never a 25 fps guess in one and not the other)."""
    from stgraph.cli import _with_fps, build_parser
    from stgraph.pipeline import Pipeline, known_fps

    pipe = Pipeline()
    folder = inputs["wrong_root"] / "other"
    assert known_fps(pipe.source(folder)) is None
    (item,) = _with_fps([folder], 10.0)
    assert known_fps(pipe.source(item)) == 10.0 and item.name == "other"
    for command in (["score", "--model", "m"], ["watch", "--model", "m"]):
        assert build_parser().parse_args([*command, "--video", "v", "--fps", "10"]).fps == 10.0


def test_pipeline_progress_false_silences_the_model_training_bar(inputs, capfd):
    """Friction (noise): Pipeline(progress=False) shows no training bar and leaves the model's
    own setting as it was."""
    from detectors.motion import MotionRegionDetector
    from stgraph.features import GeometryFeatures
    from stgraph.models import AnoGraph
    from stgraph.pipeline import Pipeline

    model = AnoGraph(hidden=8, epochs=1, train_window=3, progress=True)
    Pipeline(MotionRegionDetector(), GeometryFeatures(), model, progress=False).fit([inputs[V]])
    assert "train DGI" not in capfd.readouterr().err and model.progress is True


def test_training_only_and_test_only_copies_resolve(tmp_path):
    """``fit`` on a copy that has only training/ and ``score`` on one that has only testing/."""
    from stgraph.cli import resolve_videos

    root = tmp_path / "cams"
    for split in ("training", "testing"):
        for name in ("a", "b"):
            (root / split / "frames" / name).mkdir(parents=True)
            (root / split / "frames" / name / "000.jpg").write_bytes(_JPEG)
    train_only, test_only = tmp_path / "train_only", tmp_path / "test_only"
    shutil.copytree(root / "training", train_only / "training")
    shutil.copytree(root / "testing", test_only / "testing")
    assert [v.name for v in resolve_videos(train_only, "train")] == ["a", "b"]
    assert [v.name for v in resolve_videos(test_only, "test")] == ["a", "b"]


def test_docs_say_what_the_code_does(monkeypatch):
    """Defect 11: AnoGraph.score's docstring names the model's score (Mahalanobis by default,
    Eq. 5 only with scoring="discriminator"); the command sets no thread count and says so."""
    from stgraph.cli import _setup_env
    from stgraph.models import AnoGraph

    doc = " ".join(AnoGraph.score.__doc__.split())
    assert "Eq. 5" not in doc and "the model's score (``scoring``)" in doc
    class_doc = " ".join(AnoGraph.__doc__.split())
    assert 'Default ``"mahalanobis"``' in class_doc and "paper's Eq. 5" in class_doc
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    _setup_env()
    assert "OMP_NUM_THREADS" not in os.environ
    assert "left to ``OMP_NUM_THREADS``" in " ".join(_setup_env.__doc__.split())
