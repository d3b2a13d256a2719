"""`stgraph serve` (stgraph/serve.py) and its events store (stgraph/eventstore.py), with FastAPI's
TestClient on tiny synthetic videos."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from stgraph.alarms import AlarmEvent
from stgraph.eventstore import SqliteEventStore, open_store
from tests._live_helpers import saved_pipeline, small_video

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette 1.x: "install httpx2" (httpx still works)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from stgraph.serve import ServeConfig, create_app, is_loopback  # noqa: E402


def event(source: str = "cam", peak: float = 2.0, n_objects: int = 2) -> AlarmEvent:
    objects = [{"frame": 5, "object_id": k, "score": peak - k, "box": [1.0, 2.0, 3.0 + k, 4.0],
                "class_name": "person"} for k in range(n_objects)]
    return AlarmEvent(source, 3, 9, 0.3, 0.9, peak, 5, 6, 1.0, objects, "2026-01-01T00:00:00+00:00")


JPEG = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


# ---------------------------------------------------------------------------- the store
@pytest.mark.parametrize("backend", ["sqlite3", "sqlalchemy"])
def test_store_round_trip_and_filters(tmp_path, backend):
    if backend == "sqlalchemy":
        pytest.importorskip("sqlalchemy")
        from stgraph.eventstore import SqlAlchemyEventStore
        store = SqlAlchemyEventStore(f"sqlite:///{tmp_path / 'e.db'}?timeout=30")
    else:
        store = open_store(tmp_path / "e.db")
        assert isinstance(store, SqliteEventStore)
    first = store.add_event("cam0", event(peak=2.0), keyframes=[(3, JPEG), (5, JPEG + b"x")])
    middle = time.time()
    time.sleep(0.01)
    second = store.add_event("cam1", event(peak=0.5, n_objects=0))
    assert [e["id"] for e in store.list_events()] == [second, first]  # newest first
    assert [e["id"] for e in store.list_events(source="cam0")] == [first]
    assert [e["id"] for e in store.list_events(min_score=1.0)] == [first]
    assert [e["id"] for e in store.list_events(since=middle)] == [second]
    assert [e["id"] for e in store.list_events(until=middle)] == [first]
    listed = store.list_events(source="cam0")[0]
    assert listed["keyframes"] == 2 and listed["n_objects"] == 2
    got = store.get_event(first)
    assert (got["start_frame"], got["end_frame"], got["peak_frame"]) == (3, 9, 5)
    assert got["peak_score"] == 2.0 and got["keyframes"] == [3, 5]
    assert [o["score"] for o in got["objects"]] == [2.0, 1.0]
    assert got["objects"][1]["x2"] == 4.0 and got["objects"][0]["track_id"] == -1
    assert store.keyframe(first, 1) == JPEG + b"x" and store.keyframe(first, 2) is None
    assert store.get_event(999) is None
    assert store.sources() == ["cam0", "cam1"]
    with pytest.raises(ValueError, match="limit"):
        store.list_events(limit=0)
    store.close()


def test_store_writes_each_event_as_one_transaction(tmp_path):
    store = SqliteEventStore(tmp_path / "e.db")
    store.add_event("cam", event())
    broken = event()
    broken.objects.append({"frame": 5, "object_id": 9})  # no score: fails mid-event
    with pytest.raises(KeyError):
        store.add_event("cam", broken)
    bad_keyframes = [(1, JPEG), (2, None)]  # NOT NULL keyframe: the insert fails
    with pytest.raises(Exception):
        store.add_event("cam", event(), keyframes=bad_keyframes)
    assert len(store.list_events()) == 1  # neither half-written event is there
    reopened = SqliteEventStore(tmp_path / "e.db")  # a second process / a restart sees it all
    assert len(reopened.list_events()) == 1 and len(reopened.get_event(1)["objects"]) == 2


def test_store_refuses_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / "x.db").write_text("not a database " * 100)
    with pytest.raises(ValueError, match="cannot open the events database"):
        open_store(tmp_path / "x.db")


# ---------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A saved model and two short frame folders (an anomalous one and a normal one)."""
    root = tmp_path_factory.mktemp("serve")
    model = saved_pipeline(root / "model")
    folders = []
    for seed, anomalies in ((5, ("fast",)), (6, ())):
        folder = root / f"video{seed}"
        folder.mkdir()
        for t, image in enumerate(small_video(seed, n_frames=16, anomalies=anomalies).frames):
            cv2.imwrite(str(folder / f"{t:03d}.png"), image)
        folders.append(folder)
    return model, folders


def wait_for(client: TestClient, test, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        sources = client.get("/api/sources").json()
        if test(sources):
            return sources
        time.sleep(0.1)
    raise AssertionError(f"timed out; sources: {sources}")


def config(model: Path, sources: list, db: Path, **options) -> ServeConfig:
    # threshold below every score: each frame with objects is hot, so events come fast
    options = {"threshold": -1e9, "min_duration": 1, "merge_gap": 0, "retry_s": 60.0,
               **options}
    return ServeConfig(model=model, sources=[str(s) for s in sources], db=db, **options)


def test_two_sources_stream_store_events_and_survive_a_restart(served, tmp_path):
    model, (anomalous, normal) = served
    db = tmp_path / "events.db"
    app = create_app(config(model, [anomalous, normal], db))
    with TestClient(app) as client:
        sources = wait_for(client, lambda s: all(x["status"] == "ended" for x in s))
        assert [s["name"] for s in sources] == ["0:video5", "1:video6"]
        assert all(s["frames"] == 16 and s["runs"] == 1 for s in sources)
        assert all(s["events"] >= 1 and s["scores"] for s in sources)
        assert all(s["threshold"] == -1e9 for s in sources)
        stored = client.get("/api/events").json()
        assert stored["sources"] == ["0:video5", "1:video6"]
        events = stored["events"]
        assert len(events) == sum(s["events"] for s in sources)
        one = client.get("/api/events", params={"source": "0:video5"}).json()["events"]
        assert one and all(e["source"] == "0:video5" for e in one)
        detail = client.get(f"/api/events/{one[0]['id']}").json()
        assert detail["objects"] and detail["keyframes"]
        jpeg = client.get(f"/api/events/{one[0]['id']}/keyframes/0.jpg")
        assert jpeg.status_code == 200 and jpeg.content[:3] == b"\xff\xd8\xff"
        assert client.get(f"/api/events/{one[0]['id']}/keyframes/9.jpg").status_code == 404
        assert client.get("/api/events/99999").status_code == 404
        frame = client.get("/api/sources/1/frame.jpg")
        assert frame.status_code == 200 and frame.content[:3] == b"\xff\xd8\xff"
        assert client.get("/api/sources/5/frame.jpg").status_code == 404
        mjpeg = client.get("/video/0.mjpg", params={"frames": 1})
        assert mjpeg.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert b"--frame\r\nContent-Type: image/jpeg" in mjpeg.content
        for page, marker in (("/", "api/sources"), ("/events", "api/events")):
            response = client.get(page)
            assert response.status_code == 200 and marker in response.text
            assert "http://" not in response.text and "https://" not in response.text
    # "killed" and restarted: a new app on the same file serves the same events
    restarted = create_app(config(model, [normal], db), start_sources=False)
    with TestClient(restarted) as client:
        assert client.get("/api/events").json()["events"] == events


def test_a_bad_source_is_shown_and_retried_while_others_run(served, tmp_path):
    model, (anomalous, _) = served
    app = create_app(config(model, [tmp_path / "missing.mp4", anomalous], tmp_path / "e.db",
                            retry_s=0.2))
    with TestClient(app) as client:
        sources = wait_for(client, lambda s: s[0]["runs"] >= 3 and s[1]["runs"] >= 2)
        bad, good = sources
        assert bad["status"] in ("failed", "starting") and bad["frames"] == 0
        assert "missing.mp4" in bad["error"] or bad["status"] == "starting"
        assert good["frames"] >= 16 and good["events"] >= 1  # ended, then played again


def test_a_stream_that_stops_early_is_marked_ended(served, tmp_path):
    model, (anomalous, _) = served
    app = create_app(config(model, [anomalous], tmp_path / "e.db", max_frames=5, history=3))
    with TestClient(app) as client:
        (source,) = wait_for(client, lambda s: s[0]["status"] == "ended")
        assert source["frames"] == 5  # the window's last frames are flushed, then it ends
        assert [f for f, _ in source["scores"]] == [2, 3, 4]  # bounded: the last `history`


def test_token_is_required_off_loopback(served, tmp_path):
    model, (anomalous, _) = served
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(ValueError, match="--token"):
        create_app(config(model, [anomalous], tmp_path / "e.db", host="0.0.0.0"))
    app = create_app(config(model, [anomalous], tmp_path / "e.db", host="0.0.0.0",
                            token="s3cret"), start_sources=False)
    with TestClient(app) as client:
        assert client.get("/api/events").status_code == 401
        assert client.get("/api/events", params={"token": "wrong"}).status_code == 401
        assert client.get("/api/events",
                          headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/", params={"token": "s3cret"}).status_code == 200
        assert client.get("/api/sources").status_code == 200  # the cookie set by ?token=


def test_serve_cli_errors_are_one_line(tmp_path, capsys):
    from stgraph.cli import main

    assert main(["serve", "--model", str(tmp_path / "nowhere"), "--source", "x.mp4"]) == 2
    assert "no saved pipeline folder" in capsys.readouterr().err
