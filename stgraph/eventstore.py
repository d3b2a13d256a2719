"""Alarm events and their objects in a database: SQLite by default, any SQLAlchemy URL optionally.

Tables::

    events     id, source, start_frame, end_frame, start_time, end_time, peak_score, peak_frame,
               hot_frames, threshold, reported_at (ISO 8601 UTC), created (unix seconds)
    objects    id, event_id -> events.id, frame, object_id, score, x1, y1, x2, y2, class_name,
               track_id (-1: untracked)
    keyframes  event_id -> events.id, position (0, 1, ...), frame, jpeg (bytes)

Each event is written in **one transaction** (its row, its object rows and its keyframes), so a
crash loses at most the event being written, never half of one. The default backend is the
standard library's ``sqlite3`` on one file (write-ahead log, ``synchronous=FULL``); a URL such as
``postgresql://user@host/db`` goes through SQLAlchemy Core (``pip install sqlalchemy`` and the
database's driver), with the same tables.

Example:
    >>> store = open_store("events.db")                                   # doctest: +SKIP
    >>> event_id = store.add_event("cam0", event, keyframes=[(12, jpeg)])  # doctest: +SKIP
    >>> store.list_events(source="cam0", min_score=0.5)                   # doctest: +SKIP
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from stgraph.alarms import AlarmEvent

__all__ = ["EventStore", "SqliteEventStore", "SqlAlchemyEventStore", "open_store"]

_EVENT_FIELDS = ("source", "start_frame", "end_frame", "start_time", "end_time", "peak_score",
                 "peak_frame", "hot_frames", "threshold", "reported_at", "created")
_OBJECT_FIELDS = ("event_id", "frame", "object_id", "score", "x1", "y1", "x2", "y2",
                  "class_name", "track_id")

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, start_frame INTEGER NOT NULL,
    end_frame INTEGER NOT NULL, start_time REAL NOT NULL, end_time REAL NOT NULL,
    peak_score REAL NOT NULL, peak_frame INTEGER NOT NULL, hot_frames INTEGER NOT NULL,
    threshold REAL NOT NULL, reported_at TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_source_created ON events (source, created);
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    frame INTEGER NOT NULL, object_id INTEGER NOT NULL, score REAL NOT NULL,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL, class_name TEXT, track_id INTEGER);
CREATE INDEX IF NOT EXISTS objects_event ON objects (event_id);
CREATE TABLE IF NOT EXISTS keyframes (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    position INTEGER NOT NULL, frame INTEGER NOT NULL, jpeg BLOB NOT NULL,
    PRIMARY KEY (event_id, position));
"""


def _event_row(source: str, event: AlarmEvent) -> dict[str, Any]:
    return {"source": source, "start_frame": int(event.start_frame),
            "end_frame": int(event.end_frame), "start_time": float(event.start_time),
            "end_time": float(event.end_time), "peak_score": float(event.peak_score),
            "peak_frame": int(event.peak_frame), "hot_frames": int(event.hot_frames),
            "threshold": float(event.threshold), "reported_at": event.reported_at or "",
            "created": time.time()}


def _object_rows(event_id: int, event: AlarmEvent) -> list[dict[str, Any]]:
    rows = []
    for record in event.objects:
        box = list(record.get("box") or [None] * 4)
        rows.append({"event_id": event_id, "frame": int(record["frame"]),
                     "object_id": int(record["object_id"]), "score": float(record["score"]),
                     "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                     "class_name": str(record.get("class_name", "")),
                     "track_id": int(record.get("track_id", -1))})
    return rows


def _filters(source: str | None, since: float | None, until: float | None,
             min_score: float | None) -> tuple[str, dict[str, Any]]:
    """WHERE clause (named parameters) of :meth:`EventStore.list_events`."""
    clauses, params = [], {}
    for column, op, name, value in (("source", "=", "source", source),
                                    ("created", ">=", "since", since),
                                    ("created", "<=", "until", until),
                                    ("peak_score", ">=", "min_score", min_score)):
        if value is not None:
            clauses.append(f"{column} {op} :{name}")
            params[name] = value
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class EventStore:
    """What both backends offer (see the module docstring)."""

    url: str

    def add_event(self, source: str, event: AlarmEvent,
                  keyframes: Sequence[tuple[int, bytes]] = ()) -> int:
        """Store one event, its objects and its keyframes ``[(frame, jpeg bytes)]`` in one
        transaction; returns the event's id."""
        raise NotImplementedError

    def list_events(self, source: str | None = None, since: float | None = None,
                    until: float | None = None, min_score: float | None = None,
                    limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Events, newest first, as dicts (``keyframes``: the number stored), filtered by source,
        creation time (unix seconds, inclusive) and lowest peak score."""
        raise NotImplementedError

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """One event with its ``objects`` (list of dicts) and ``keyframes`` (frames), or None."""
        raise NotImplementedError

    def keyframe(self, event_id: int, position: int) -> bytes | None:
        """The JPEG bytes of one keyframe, or None."""
        raise NotImplementedError

    def sources(self) -> list[str]:
        """Every source with a stored event."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _check_listing(limit: int, offset: int) -> None:
        if not (isinstance(limit, int) and 1 <= limit <= 10_000 and isinstance(offset, int)
                and offset >= 0):
            raise ValueError(f"limit must be in 1..10000 and offset >= 0, got {limit}, {offset}")


class SqliteEventStore(EventStore):
    """The standard library's sqlite3 on one file; safe to share between threads (one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SQLITE_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"cannot open the events database {self.path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row

    def add_event(self, source: str, event: AlarmEvent,
                  keyframes: Sequence[tuple[int, bytes]] = ()) -> int:
        row = _event_row(source, event)
        with self._lock, self._db:  # one transaction: committed as a whole or rolled back
            cursor = self._db.execute(
                f"INSERT INTO events ({', '.join(_EVENT_FIELDS)}) VALUES "
                f"({', '.join(':' + f for f in _EVENT_FIELDS)})", row)
            event_id = int(cursor.lastrowid)
            self._db.executemany(
                f"INSERT INTO objects ({', '.join(_OBJECT_FIELDS)}) VALUES "
                f"({', '.join(':' + f for f in _OBJECT_FIELDS)})", _object_rows(event_id, event))
            self._db.executemany(
                "INSERT INTO keyframes (event_id, position, frame, jpeg) VALUES (?, ?, ?, ?)",
                [(event_id, k, int(frame), sqlite3.Binary(jpeg))
                 for k, (frame, jpeg) in enumerate(keyframes)])
        return event_id

    def _query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def list_events(self, source=None, since=None, until=None, min_score=None, limit=100,
                    offset=0):
        self._check_listing(limit, offset)
        where, params = _filters(source, since, until, min_score)
        params.update(limit=limit, offset=offset)
        return self._query(
            "SELECT e.*, (SELECT COUNT(*) FROM keyframes k WHERE k.event_id = e.id) AS keyframes,"
            " (SELECT COUNT(*) FROM objects o WHERE o.event_id = e.id) AS n_objects"
            f" FROM events e{where} ORDER BY e.created DESC, e.id DESC"
            " LIMIT :limit OFFSET :offset", params)

    def get_event(self, event_id):
        rows = self._query("SELECT * FROM events WHERE id = ?", (int(event_id),))
        if not rows:
            return None
        event = rows[0]
        event["objects"] = self._query(
            "SELECT * FROM objects WHERE event_id = ? ORDER BY score DESC, id", (int(event_id),))
        event["keyframes"] = [r["frame"] for r in self._query(
            "SELECT frame FROM keyframes WHERE event_id = ? ORDER BY position", (int(event_id),))]
        return event

    def keyframe(self, event_id, position):
        rows = self._query("SELECT jpeg FROM keyframes WHERE event_id = ? AND position = ?",
                           (int(event_id), int(position)))
        return bytes(rows[0]["jpeg"]) if rows else None

    def sources(self):
        return [r["source"] for r in self._query(
            "SELECT DISTINCT source FROM events ORDER BY source")]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SqlAlchemyEventStore(EventStore):
    """The same tables through SQLAlchemy Core, for any database URL it supports."""

    def __init__(self, url: str) -> None:
        try:
            import sqlalchemy as sa
        except ImportError as exc:
            raise ImportError(f"--db {url}: a database URL needs SQLAlchemy: pip install "
                              "sqlalchemy (and the database's driver, e.g. psycopg)") from exc
        self.url = url
        self._sa = sa
        meta = sa.MetaData()
        self.events = sa.Table(
            "events", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("source", sa.String(200), nullable=False, index=True),
            *(sa.Column(name, sa.Integer, nullable=False)
              for name in ("start_frame", "end_frame", "peak_frame", "hot_frames")),
            *(sa.Column(name, sa.Float, nullable=False)
              for name in ("start_time", "end_time", "peak_score", "threshold", "created")),
            sa.Column("reported_at", sa.String(40), nullable=False))
        self.objects = sa.Table(
            "objects", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"),
                      nullable=False, index=True),
            sa.Column("frame", sa.Integer, nullable=False),
            sa.Column("object_id", sa.Integer, nullable=False),
            sa.Column("score", sa.Float, nullable=False),
            *(sa.Column(name, sa.Float) for name in ("x1", "y1", "x2", "y2")),
            sa.Column("class_name", sa.String(100)), sa.Column("track_id", sa.Integer))
        self.keyframes = sa.Table(
            "keyframes", meta,
            sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"),
                      primary_key=True),
            sa.Column("position", sa.Integer, primary_key=True),
            sa.Column("frame", sa.Integer, nullable=False),
            sa.Column("jpeg", sa.LargeBinary, nullable=False))
        try:
            self._engine = sa.create_engine(url)
            meta.create_all(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            raise ValueError(f"cannot open the events database {url}: {exc}") from exc

    def add_event(self, source, event, keyframes=()):
        with self._engine.begin() as db:  # one transaction
            event_id = int(db.execute(self.events.insert().values(**_event_row(source, event)))
                           .inserted_primary_key[0])
            rows = _object_rows(event_id, event)
            if rows:
                db.execute(self.objects.insert(), rows)
            if keyframes:
                db.execute(self.keyframes.insert(), [
                    {"event_id": event_id, "position": k, "frame": int(frame), "jpeg": jpeg}
                    for k, (frame, jpeg) in enumerate(keyframes)])
        return event_id

    def list_events(self, source=None, since=None, until=None, min_score=None, limit=100,
                    offset=0):
        sa = self._sa
        self._check_listing(limit, offset)
        e, k, o = self.events, self.keyframes, self.objects
        n_keyframes = (sa.select(sa.func.count()).select_from(k).where(k.c.event_id == e.c.id)
                       .scalar_subquery().label("keyframes"))
        n_objects = (sa.select(sa.func.count()).select_from(o).where(o.c.event_id == e.c.id)
                     .scalar_subquery().label("n_objects"))
        query = sa.select(e, n_keyframes, n_objects)
        for column, value, op in ((e.c.source, source, "eq"), (e.c.created, since, "ge"),
                                  (e.c.created, until, "le"), (e.c.peak_score, min_score, "ge")):
            if value is not None:
                query = query.where(getattr(column, f"__{op}__")(value))
        query = query.order_by(e.c.created.desc(), e.c.id.desc()).limit(limit).offset(offset)
        with self._engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def get_event(self, event_id):
        sa = self._sa
        with self._engine.connect() as db:
            row = db.execute(sa.select(self.events).where(self.events.c.id == int(event_id))
                             ).first()
            if row is None:
                return None
            event = dict(row._mapping)
            event["objects"] = [dict(r._mapping) for r in db.execute(
                sa.select(self.objects).where(self.objects.c.event_id == int(event_id))
                .order_by(self.objects.c.score.desc(), self.objects.c.id))]
            event["keyframes"] = [r.frame for r in db.execute(
                sa.select(self.keyframes.c.frame).where(self.keyframes.c.event_id == int(event_id))
                .order_by(self.keyframes.c.position))]
        return event

    def keyframe(self, event_id, position):
        sa = self._sa
        with self._engine.connect() as db:
            row = db.execute(sa.select(self.keyframes.c.jpeg).where(
                (self.keyframes.c.event_id == int(event_id))
                & (self.keyframes.c.position == int(position)))).first()
        return bytes(row.jpeg) if row else None

    def sources(self):
        sa = self._sa
        with self._engine.connect() as db:
            return [r.source for r in db.execute(
                sa.select(self.events.c.source).distinct().order_by(self.events.c.source))]

    def close(self) -> None:
        self._engine.dispose()


def open_store(where: str | Path) -> EventStore:
    """A store for a file path or ``sqlite:///path`` (stdlib sqlite3), or any other database URL
    (SQLAlchemy)."""
    text = str(where)
    if "://" not in text:
        return SqliteEventStore(text)
    if text.startswith("sqlite:///") and "?" not in text:
        return SqliteEventStore(text[len("sqlite:///"):])
    return SqlAlchemyEventStore(text)
