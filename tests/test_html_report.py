"""`stgraph eval --report DIR --html`: one self-contained page (stgraph/html_report.py)."""
from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from stgraph.cli import main
from stgraph.html_report import report_data, write_html_report
from stgraph.metrics import evaluate_frames
from stgraph.scores import ScoreTable
from tests._score_helpers import patch_table
from tests.test_report import frame_labels, scene, scene_table  # noqa: F401  (fixture)

T = 20


class _Refs(HTMLParser):
    """Every src/href attribute and every <script>/<link>/<style> element of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.refs += [v for k, v in attrs.items() if k in ("src", "href") and v]


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="stgraph-data">(.*?)</script>', page,
                      re.S)
    assert match, "the data block is missing"
    return json.loads(match.group(1))


def check_self_contained(page: str) -> None:
    """No reference leaves the file: no src/href, no external script, no URL to fetch."""
    parser = _Refs()
    parser.feed(page)
    assert parser.refs == []
    assert not [a for t, a in parser.tags if t == "script" and "src" in a]
    assert not [t for t, _ in parser.tags if t in ("link", "iframe", "object", "embed")]
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)  # only the SVG namespace
    assert "@import" not in page and "fetch(" not in page and "XMLHttpRequest" not in page


def test_eval_html_page_is_self_contained_and_holds_the_data(scene, capsys):
    out = scene / "report"
    code = main(["eval", "--scores", str(scene / "scores.csv"),
                 "--labels", str(scene / "labels.npz"), "--masks", str(scene / "masks"),
                 "--report", str(out), "--video-root", str(scene / "frames"), "--html"])
    assert code == 0, capsys.readouterr().err
    assert "html report" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    check_self_contained(page)
    data = page_data(page)
    fs = scene_table().frame_scores()
    assert [v["name"] for v in data["videos"]] == ["01", "02"]
    for video in data["videos"]:
        assert video["scores"] == fs[video["name"]].scores.tolist()  # full precision
        assert video["labels"] == frame_labels()[video["name"]].tolist()
        assert len(video["thumbs"]) == T  # a small budget-free scene: every frame
        jpeg = base64.b64decode(video["thumbs"]["3"])
        assert jpeg[:3] == b"\xff\xd8\xff"
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
        assert video["hw"] == [120, 160]
        assert len(video["rows"]["frame"]) == len(scene_table().select(video["name"]))
    assert data["videos"][0]["gt"]["12"] == [[20.0, 10.0, 36.0, 30.0]]  # the mask region
    # the slider starts at the Youden threshold; counting score >= threshold gives its table
    metrics = json.loads((out / "metrics.json").read_text())
    assert data["threshold"] == metrics["youden"]["threshold"]
    scores = np.concatenate([v["scores"] for v in data["videos"]])
    labels = np.concatenate([v["labels"] for v in data["videos"]])
    hot = scores >= data["threshold"]
    assert (int((hot & (labels == 1)).sum()), int((hot & (labels == 0)).sum())) == \
        (metrics["youden"]["tp"], metrics["youden"]["fp"])
    kinds = {(e["kind"], e["video"], e["frame"]) for e in data["examples"]}
    assert ("false_positive", "02", 3) in kinds and ("missed", "01", 12) in kinds
    # the script and the style are inlined
    assert "function confusion" in page and "table.counts" in page


def test_picture_budget_is_a_hard_bound_with_examples_first(tmp_path, scene):
    table = scene_table()
    fs = table.frame_scores()
    metrics = evaluate_frames(fs, frame_labels())
    videos = {v: scene / "frames" / v for v in ("01", "02")}
    one = len(report_data(table, fs, frame_labels(), metrics, videos=videos,
                          n_examples=1)["videos"][0]["thumbs"]["0"])
    budget = 7 * one
    data = report_data(table, fs, frame_labels(), metrics, videos=videos, n_examples=1,
                       max_image_bytes=budget)
    assert data["image_bytes"] <= budget
    shown = {(v["name"], int(f)) for v in data["videos"] for f in v["thumbs"]}
    assert 0 < len(shown) <= 7
    assert {(e["video"], e["frame"]) for e in data["examples"]} <= shown  # examples kept
    assert all(str(v["peak"]) in v["thumbs"] for v in data["videos"])   # and each peak frame
    path, summary = write_html_report(tmp_path / "r.html", table, fs, frame_labels(), metrics,
                                      videos=videos, max_image_bytes=0)
    assert summary["pictures"] == 0 and summary["image_bytes"] == 0
    check_self_contained(path.read_text())


def test_patch_and_frame_tables_with_pixel_maps(tmp_path):
    patches = patch_table("01", n_frames=4)
    rng = np.random.default_rng(0)
    frames = ScoreTable.from_frames("02", np.arange(4), rng.random(4), image_hw=(40, 60),
                                    pixel_maps=rng.random((4, 10, 15)))
    labels = {"01": np.array([0, 0, 1, 1]), "02": np.array([0, 1, 1, 0])}
    for folder in ("01", "02"):
        (tmp_path / folder).mkdir()
        for t in range(4):
            cv2.imwrite(str(tmp_path / folder / f"{t:03d}.png"), np.full((40, 60, 3), 50, np.uint8))
    for table in (patches, frames):
        fs = table.frame_scores()
        video = table.videos[0]
        metrics = evaluate_frames(fs, {video: labels[video]})
        path, _ = write_html_report(tmp_path / f"{video}.html", table, fs, {video: labels[video]},
                                    metrics, videos={video: tmp_path / video})
        page = path.read_text()
        check_self_contained(page)
        data = page_data(page)
        (shown,) = data["videos"]
        if table is patches:
            assert data["box_kind"] == "patch"
            assert len(shown["rows"]["frame"]) == len(patches)
        else:
            assert data["box_kind"] is None and shown["rows"]["frame"] == []
            assert sorted(shown["maps"], key=int) == ["0", "1", "2", "3"]
            png = base64.b64decode(shown["maps"]["2"])
            assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == \
                (10, 15, 3)


def test_script_closing_tags_in_names_cannot_break_the_page(tmp_path):
    table = scene_table()
    fs = table.frame_scores()
    metrics = evaluate_frames(fs, frame_labels())
    path, _ = write_html_report(tmp_path / "r.html", table, fs, frame_labels(), metrics,
                                title="</script><script>alert(1)</script>")
    page = path.read_text()
    assert page.count("<script") == 2  # the data block and the inlined script
    assert page_data(page)["title"].startswith("</script>")


def test_html_needs_report(scene, capsys):
    code = main(["eval", "--scores", str(scene / "scores.csv"),
                 "--labels", str(scene / "labels.npz"), "--html"])
    assert code == 2
    assert "--html and --model go with --report" in capsys.readouterr().err


def test_explanations_of_a_graph_model_match_its_scores(tmp_path):
    from stgraph.html_report import explain_frames
    from stgraph.pipeline import Pipeline
    from tests._live_helpers import saved_pipeline, small_video

    model_dir = saved_pipeline(tmp_path / "model")
    video = small_video(7, n_frames=24, anomalies=("fast",))
    folder = tmp_path / "frames" / "v"
    folder.mkdir(parents=True)
    for t, image in enumerate(video.frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), image)
    table = Pipeline.load(model_dir, progress=False).score(folder, name="v")
    frames = table.frame_scores()["v"]
    peak = int(frames.frames[np.argmax(frames.scores)])
    explained, note = explain_frames(model_dir, {"v": folder}, {"v": [peak]}, top_k=4)
    rows = table.objects_in_frame("v", peak, kind="object")
    assert len(rows) and sorted(explained) == sorted(f"v/{peak}/{i}" for i in rows["object_id"])
    for object_id, score in zip(rows["object_id"], rows["score"]):
        entry = explained[f"v/{peak}/{object_id}"]
        assert entry["score"] == pytest.approx(score, rel=1e-4)   # the table's own score
        assert 0 < len(entry["edges"]) <= 4 <= entry["n_edges"] or len(entry["edges"]) == \
            entry["n_edges"]
        deltas = [abs(e[4]) for e in entry["edges"]]
        assert deltas == sorted(deltas, reverse=True)
    assert "AnoGraph" in note
    labels = {"v": video.labels}
    metrics = evaluate_frames(table.frame_scores(), labels)
    path, summary = write_html_report(tmp_path / "r.html", table, table.frame_scores(), labels,
                                      metrics, videos={"v": folder}, explanations=explained,
                                      explain_note=note)
    assert summary["explained"] == len(rows)
    assert page_data(path.read_text())["explanations"] == json.loads(json.dumps(explained))


def test_frame_models_have_no_explanation(tmp_path):
    from stgraph.html_report import explain_frames
    from stgraph.models.frame_difference import FrameDifference
    from stgraph.pipeline import Pipeline
    from tests._live_helpers import small_video

    Pipeline(model=FrameDifference(), progress=False).fit([small_video(1, 12)]).save(
        tmp_path / "m")
    explained, note = explain_frames(tmp_path / "m", {"v": "unused"}, {"v": [3]})
    assert explained == {} and "no per-object explanation" in note


def test_model_needs_video_root(scene, capsys):
    code = main(["eval", "--scores", str(scene / "scores.csv"),
                 "--labels", str(scene / "labels.npz"), "--report", str(scene / "r"), "--html",
                 "--model", str(scene / "model")])
    assert code == 2
    assert "give --video-root too" in capsys.readouterr().err
