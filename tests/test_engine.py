"""Engines: --engine ray gives the same cache, model and ScoreTable as --engine local.

The Ray tests start a local Ray instance with 2 CPUs (skipped, with the reason, when Ray is not
installed: ``pip install 'stgraph[ray]'``) and are in the slow suite (Ray starts in seconds, and
every worker imports torch).
"""
from __future__ import annotations

import builtins
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dataset_fakes import write_synthetic_dataset
from stgraph.cli import main
from stgraph.engine import LocalEngine, make_engine, pack_pipeline, unpack_pipeline

SIZE = (96, 128)  # (H, W)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("dataset"), 2, 3, 20, SIZE)


def fit_args(dataset: Path, out: Path, cache: Path, *engine: str) -> list[str]:
    return ["--quiet", "fit", "--train", str(dataset), "--method", "anograph",
            "--detector", "motion", "--features",
            "geometry", "--epochs", "2", "--cache", str(cache), "--out", str(out), *engine]


def test_engine_names_and_errors(monkeypatch):
    assert isinstance(make_engine("local"), LocalEngine)
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("spark")
    with pytest.raises(ValueError, match="--address is for --engine ray"):
        make_engine("local", address="auto")
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ImportError, match=r"pip install 'stgraph\[ray\]'"):
        make_engine("ray")


def test_cli_engine_ray_without_ray_is_one_line(dataset, tmp_path, capsys, monkeypatch):
    import stgraph.engine as engine

    def missing():
        raise ImportError(f"the Ray engine needs Ray, which is not installed: {engine.RAY_INSTALL}")

    monkeypatch.setattr(engine, "import_ray", missing)
    code = main(fit_args(dataset, tmp_path / "m", tmp_path / "c", "--engine", "ray"))
    assert code == 2
    assert "stgraph[ray]" in capsys.readouterr().err


def test_packed_pipeline_rebuilds_the_same_pipeline(dataset, tmp_path):
    from stgraph.pipeline import Pipeline

    model = tmp_path / "model"
    assert main(fit_args(dataset, model, tmp_path / "cache")) == 0
    pipe = Pipeline.load(model, cache_dir=tmp_path / "cache", progress=False)
    again = unpack_pipeline(pack_pipeline(pipe, with_model=True))
    assert again._settings() == pipe._settings()
    video = sorted((dataset / "testing" / "videos").iterdir())[0]
    np.testing.assert_array_equal(again.model.decision_function(pipe.extract(video)),
                                  pipe.model.decision_function(pipe.extract(video)))


def test_local_extract_fills_the_cache_fit_reads(dataset, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["--quiet", "extract", "--video", str(dataset), "--split", "train",
                 "--detector", "motion", "--features", "geometry", "--cache", str(cache)]) == 0
    assert "extracted 2 video(s)" in capsys.readouterr().out
    before = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert before
    assert main(fit_args(dataset, tmp_path / "model", cache)) == 0
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == before  # all cache hits


# ====================================================================== Ray
@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'stgraph[ray]'")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    os.environ.setdefault("PYTHONPATH", str(ROOT))  # workers import this checkout's stgraph
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_fit_and_score_equal_local(dataset, tmp_path, ray_instance):
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(fit_args(dataset, local / "model", local / "cache")) == 0
    assert main(fit_args(dataset, remote / "model", remote / "cache", "--engine", "ray")) == 0
    assert ((local / "model" / "model" / "state_dict.pt").read_bytes()
            == (remote / "model" / "model" / "state_dict.pt").read_bytes())
    for where, engine in ((local, []), (remote, ["--engine", "ray"])):
        assert main(["--quiet", "score", "--model", str(where / "model"), "--video", str(dataset),
                     "--cache", str(where / "cache"), "--out", str(where / "scores.csv"),
                     *engine]) == 0
    assert (local / "scores.csv").read_text() == (remote / "scores.csv").read_text()
    # the Ray workers wrote the same cache entries as the local run
    names = lambda root: sorted(p.name for p in (root / "cache").rglob("*") if p.is_file())  # noqa: E731
    assert names(local) == names(remote)


@pytest.mark.slow
def test_ray_extract_fills_the_cache_only(dataset, tmp_path, ray_instance, capsys):
    cache = tmp_path / "cache"
    assert main(["--quiet", "extract", "--video", str(dataset), "--detector", "motion",
                 "--features", "geometry", "--cache", str(cache), "--engine", "ray"]) == 0
    assert "extracted 3 video(s), 60 frames" in capsys.readouterr().out
    assert any(p.is_file() for p in cache.rglob("*"))
