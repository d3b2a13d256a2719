"""LateFusion: members fitted on one set of videos, frame scores fused on the training scale,
through the API, the pipeline (batch = stream) and ``stgraph fit --method anograph+stm_ae``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contract_data import contract_inputs
from dataset_fakes import write_synthetic_dataset
from stgraph.cli import DEFAULT_METHOD, main
from stgraph.models.late_fusion import DEFAULT_MEMBERS, FramesAndDetections, LateFusion
from stgraph.scores import ScoreTable
from stgraph.scores.fusion import TrainScale

SIZE = (96, 128)
TINY = LateFusion.contract_params()["member_params"]  # tiny settings of every default member
PAIR = ("anograph", "stm_ae")
#: TINY with PatchKNN's random-init backbone asked for on purpose (the CLI wants --backbone)
RANDOM_BACKBONE = {m: ({**p, "weights": None} if m == "patch_knn" else p) for m, p in TINY.items()}


@pytest.fixture(scope="module")
def fitted():
    train, _, test = contract_inputs("frames+detections")
    return LateFusion(members=PAIR, member_params={m: TINY[m] for m in PAIR},
                      progress=False).fit(train), test


def test_fused_frame_score_is_the_weighted_sum_of_the_members_training_scaled_scores(fitted):
    model, test = fitted
    table = model.score(test, video="v")
    anograph, stm_ae = model.members_
    graph_scale, frame_scale = model.member_scales_
    z_graph = TrainScale(graph_scale)(
        anograph.score(test.detections, video="v").frame_scores(
            empty=graph_scale.quantile(0.5))["v"].scores)
    z_frames = TrainScale(frame_scale)(
        stm_ae.score(test.frames, video="v").frame_scores(
            empty=frame_scale.quantile(0.5))["v"].scores)
    fused = table.frame_scores(kind="frame")["v"].scores
    np.testing.assert_allclose(fused, 0.5 * z_graph + 0.5 * z_frames, rtol=1e-6, atol=1e-9)
    # frame 4 has no object: Ano-Graph gives no evidence (z = 0) there
    np.testing.assert_allclose(fused[4], 0.5 * z_frames[4], rtol=1e-6)
    # the table keeps Ano-Graph's object rows (one per box) and STM-AE's pixel maps
    objects = table.select(kind="object")
    assert len(objects) == sum(len(d) for d in test.detections)
    assert "v" in table.pixel_maps and len(table.pixel_maps["v"].frames) > 0
    # frame rows score the frames (not the object rows)
    np.testing.assert_allclose(table.frame_scores()["v"].scores, fused)


def test_weights_select_and_scale_the_members(fitted):
    model, test = fitted
    only_graph = LateFusion(members=PAIR, weights=(1.0, 0.0), progress=False)
    only_graph.members_, only_graph.train_scores_ = model.members_, model.train_scores_
    only_graph.member_scales_ = model.member_scales_
    anograph, scale = model.members_[0], model.member_scales_[0]
    expected = TrainScale(scale)(anograph.score(test.detections, video="v")
                                 .frame_scores(empty=scale.quantile(0.5))["v"].scores)
    got = only_graph.score(test, video="v").frame_scores(kind="frame")["v"].scores
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_smooth_is_a_trailing_mean_in_batch_and_in_the_stream(fitted):
    from stgraph.stream import AnalysedFrame

    model, test = fitted
    raw = model.score(test, video="v").frame_scores(kind="frame")["v"].scores
    smoothed = LateFusion(members=PAIR, smooth=3, progress=False)
    smoothed.members_, smoothed.train_scores_ = model.members_, model.train_scores_
    smoothed.member_scales_ = model.member_scales_
    got = smoothed.score(test, video="v").frame_scores(kind="frame")["v"].scores
    expected = [raw[0], (raw[0] + raw[1]) / 2] + [raw[t - 2:t + 1].mean()
                                                  for t in range(2, len(raw))]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    scorer = smoothed.stream_scorer()
    for video in range(2):  # reset between videos: no score carried over
        results = [r for t, (image, d) in enumerate(zip(test.frames, test.detections))
                   for r in scorer.push(AnalysedFrame(d, t / 10.0, image))] + scorer.flush()
        np.testing.assert_array_equal([r.frame_score for r in results], got)
        scorer.reset()
    with pytest.raises(ValueError, match="smooth"):
        LateFusion(members=PAIR, smooth=0, progress=False).fit([test])


def _fitted_per_fold(model: LateFusion, train: list) -> dict[int, list[ScoreTable]]:
    """{video: [member table]}: each training video scored by fresh members fitted by hand on
    the other fold (alternate videos; the contract data has 3 training videos)."""
    heldout: dict[int, list[ScoreTable]] = {}
    for fold in ([0, 2], [1]):
        rest = [v for i, v in enumerate(train) if i not in fold]
        for member in model._new_members():
            member.fit([LateFusion._member_input(member, v) for v in rest])
            for i in fold:
                heldout.setdefault(i, []).append(
                    member.score(LateFusion._member_input(member, train[i]), video=f"t{i}"))
    return heldout


def test_scales_and_threshold_come_from_held_out_training_scores(fitted):
    """Each training video is scored by members fitted on the other fold (alternate videos):
    those scores set each member's scale and, fused, the training-score quantiles."""
    from stgraph.scores.fusion import fuse, scored_frame_scores

    model, _ = fitted
    train, _, _ = contract_inputs("frames+detections")
    heldout = _fitted_per_fold(model, train)
    for k, scale in enumerate(model.member_scales_):
        values = scored_frame_scores([heldout[i][k] for i in range(3)])
        assert scale.count == values.size
        np.testing.assert_allclose(scale.quantile(0.5), np.median(values), rtol=1e-6)
        np.testing.assert_allclose(scale.quantile(0.99), np.quantile(values, 0.99), rtol=1e-6)
    fused = np.concatenate([fuse(heldout[i], train_scores=model.member_scales_)
                            .frame_scores()[f"t{i}"].scores for i in range(3)])
    assert model.train_scores_.count == fused.size
    np.testing.assert_allclose(model.train_scores_.quantile(0.99), np.quantile(fused, 0.99),
                               rtol=1e-6)
    # the training videos themselves, scored by the members fitted on all of them, sit lower
    # (in sample): the held-out threshold is the more cautious one
    in_sample = np.concatenate([model.score(v, video=f"t{i}").frame_scores(kind="frame")
                                [f"t{i}"].scores for i, v in enumerate(train)])
    assert np.quantile(in_sample, 0.99) < model.threshold_


def test_a_member_that_cross_fits_itself_gives_the_same_scales():
    """PatchKNN cross-fits inside its own fit (``fit_heldout``, one backbone pass); its scale
    equals that of PatchKNN models fitted by hand on each fold."""
    from stgraph.scores.fusion import scored_frame_scores

    train, _, _ = contract_inputs("frames+detections")
    members = ("frame_difference", "patch_knn")
    model = LateFusion(members=members, member_params={m: RANDOM_BACKBONE[m] for m in members},
                       progress=False).fit(train)
    heldout = _fitted_per_fold(model, train)
    for k, scale in enumerate(model.member_scales_):
        values = scored_frame_scores([heldout[i][k] for i in range(3)])
        assert scale.count == values.size
        np.testing.assert_allclose(scale.values, np.quantile(values, np.linspace(0, 1, 101)),
                                   rtol=1e-4, atol=1e-5)


def test_in_sample_scales_with_heldout_folds_0_or_one_training_video():
    train, _, _ = contract_inputs("frames+detections")
    params = {"members": PAIR, "member_params": {m: TINY[m] for m in PAIR}, "progress": False}
    model = LateFusion(heldout_folds=0, **params).fit(train)
    assert [q.values.tolist() for q in model.member_scales_] == \
        [m.train_scores_.values.tolist() for m in model.members_]
    fused = np.concatenate([model.score(v, video=f"t{i}").frame_scores(kind="frame")[f"t{i}"]
                            .scores for i, v in enumerate(train)])
    assert model.train_scores_.count == fused.size
    np.testing.assert_allclose(model.train_scores_.quantile(0.5), np.median(fused), rtol=1e-6)
    with pytest.warns(UserWarning, match="one training video"):
        one = LateFusion(**params).fit(train[:1])
    assert one.member_scales_[1] is one.members_[1].train_scores_
    with pytest.raises(ValueError, match="heldout_folds"):
        LateFusion(heldout_folds=-1, **params).fit(train)


def test_saved_fusion_keeps_its_member_scales(fitted, tmp_path: Path):
    from stgraph.models.base import load_model

    model, test = fitted
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for a, b in zip(loaded.member_scales_, model.member_scales_):
        np.testing.assert_array_equal(a.values, b.values)
        assert a.count == b.count
    np.testing.assert_array_equal(loaded.score(test, video="v").frame_scores()["v"].scores,
                                  model.score(test, video="v").frame_scores()["v"].scores)


@pytest.mark.parametrize("params, message", [
    ({"members": ("anograph",)}, "at least two registered methods"),
    ({"members": ("anograph", "anograph")}, "distinct"),
    ({"members": ("anograph", "nope")}, "nope"),
    ({"members": ("anograph", "ssrl")}, "consumes snippets"),
    ({"member_params": {"strl": {}}}, "not members"),
    ({"members": PAIR, "member_params": {"dissociation": {}}}, "not members"),
    ({"member_params": {"stm_ae": {"depth": 3}}}, "no parameter"),
    ({"weights": (1.0,)}, "weights"),
])
def test_bad_parameters_are_named(params, message):
    train, _, _ = contract_inputs("frames+detections")
    with pytest.raises(ValueError, match=message):
        LateFusion(progress=False, **params).fit(train)


def test_inputs_must_pair_frames_with_detections(fitted):
    model, test = fitted
    with pytest.raises(ValueError, match="FramesAndDetections"):
        model.score(test.frames, video="v")
    with pytest.raises(ValueError, match="FramesAndDetections"):
        LateFusion(progress=False).fit([test.detections])
    with pytest.raises(ValueError, match="12 frames but 8 Detections"):
        model.score(FramesAndDetections(test.frames, test.detections[:8]), video="v")


# ---------------------------------------------------------------------- CLI and pipeline
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("dataset"), 2, 1, 20, SIZE)


def test_cli_fits_and_scores_the_fusion_and_streaming_equals_batch(dataset, tmp_path: Path):
    from stgraph.pipeline import Pipeline

    out, cache = tmp_path / "model", tmp_path / "cache"
    # no --method: the default fusion of all four members
    assert main(["--quiet", "fit", "--train", str(dataset),
                 "--detector", "motion", "--features", "geometry", "--cache", str(cache),
                 "--param", "member_params=" + json.dumps(RANDOM_BACKBONE),
                 "--out", str(out)]) == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["class"] == "late_fusion"
    assert config["params"]["members"] == list(DEFAULT_MEMBERS)
    assert DEFAULT_METHOD == "+".join(DEFAULT_MEMBERS)
    scores = tmp_path / "scores.csv"
    assert main(["--quiet", "score", "--model", str(out), "--video", str(dataset),
                 "--cache", str(cache), "--out", str(scores)]) == 0
    table = ScoreTable.read_csv(scores)
    assert set(table.kinds) == {"frame", "object"}
    video = table.videos[0]
    assert len(table.frame_scores(kind="frame")[video].scores) == 20

    pipe = Pipeline.load(out, cache_dir=cache, progress=False)
    test_video = sorted((dataset / "testing" / "videos").iterdir())[0]
    batch = pipe.score(str(test_video), name=video)
    np.testing.assert_allclose(batch.frame_scores()[video].scores,
                               table.frame_scores()[video].scores, rtol=1e-5, atol=1e-6)
    streamed = list(pipe.stream(str(test_video), prefetch=0))
    assert [r.frame_index for r in streamed] == list(range(20))
    np.testing.assert_allclose([r.frame_score for r in streamed],
                               batch.frame_scores()[video].scores, rtol=1e-5, atol=1e-6)
    assert any(r.pixel_map is not None for r in streamed)
    for r in streamed:  # the object scores are Ano-Graph's
        rows = batch.objects_in_frame(video, r.frame_index, kind="object")
        np.testing.assert_allclose(r.scores, rows["score"] if len(rows) else np.zeros(0),
                                   rtol=1e-5, atol=1e-6)
    # stgraph watch writes the live fused frame scores (frame rows) next to the object rows
    live = tmp_path / "live.csv"
    assert main(["--quiet", "watch", "--model", str(out), "--video", str(test_video),
                 "--scores", str(live)]) == 0
    logged = ScoreTable.read_csv(live)
    np.testing.assert_allclose(logged.frame_scores()[logged.videos[0]].scores,
                               batch.frame_scores()[video].scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logged.select(kind="object")["score"],
                               batch.select(kind="object")["score"], rtol=1e-5, atol=1e-6)
    # the HTML report explains the fusion's objects with its object-graph member
    from stgraph.html_report import explain_frames

    explanations, _ = explain_frames(out, {video: test_video}, {video: [10]}, cache_dir=cache)
    assert explanations and all(key.startswith(f"{video}/10/") for key in explanations)


def test_cli_names_a_bad_member_and_passes_epochs_to_every_member(dataset, tmp_path: Path,
                                                                  capsys, request):
    assert main(["--quiet", "fit", "--train", str(dataset), "--method", "anograph+nope",
                 "--detector", "motion", "--out", str(tmp_path / "m")]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    built = request.getfixturevalue("cli_fit_calls")   # after the real failing fit above
    assert main(["--quiet", "fit", "--train", str(dataset), "--method", "anograph+stm_ae",
                 "--detector", "motion", "--features", "geometry", "--epochs", "3",
                 "--out", str(tmp_path / "m")]) == 0
    method, params = next(call for call in built if "+" in call[0])
    assert params["member_params"] == {"anograph": {"epochs": 3}, "stm_ae": {"epochs": 3}}


def test_watch_colours_a_fusions_boxes_on_its_object_members_scale(fitted):
    from stgraph.alarms import object_score_levels
    from stgraph.stream import AnalysedFrame
    from stgraph.watch import OverlayRenderer

    model, test = fitted
    anograph = model.members_[0]
    levels = object_score_levels(model)
    assert levels == (anograph.train_scores_.quantile(0.5), anograph.train_scores_.quantile(0.99))
    assert object_score_levels(anograph) is None  # one model: the alarm threshold's own scale
    scorer = model.stream_scorer()
    results = [r for t, (image, d) in enumerate(zip(test.frames, test.detections))
               for r in scorer.push(AnalysedFrame(d, t / 10.0, image))] + scorer.flush()
    renderer = OverlayRenderer(model.threshold_, model.train_scores_.quantile(0.5),
                               box_levels=levels)
    assert renderer.box_levels == levels
    assert renderer.render(results[0], False, 10.0).shape[1] == test.frames.shape[2]


def test_cli_default_without_a_detector_says_what_to_use(dataset, tmp_path: Path, capsys):
    assert main(["--quiet", "fit", "--train", str(dataset), "--detector", "none",
                 "--out", str(tmp_path / "m")]) == 2
    message = capsys.readouterr().err
    assert "needs a detector" in message and "--method stm_ae --detector none" in message
    assert not (tmp_path / "m").exists()


def test_detections_without_an_image_size_still_score(fitted):
    import dataclasses

    model, test = fitted
    bare = [dataclasses.replace(d, image_size=None) for d in test.detections]
    table = model.score(FramesAndDetections(test.frames, bare), video="v")
    np.testing.assert_allclose(table.frame_scores(kind="frame")["v"].scores,
                               model.score(test, video="v").frame_scores(kind="frame")["v"].scores)
