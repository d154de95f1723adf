"""Reading the event log: listing, Docker's filters, and following across processes.

Every writer records events with ``Store.add_event`` inside the transaction
that makes the change, and SQLite admits one writer at a time, so ``seq``
values become visible in increasing order with no gaps that fill in later.
Following is therefore one indexed query per poll —
``SELECT ... WHERE seq > <last seen>`` — and sees every event of every
process exactly once, in order.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Mapping

from .containers.log_format import parse_since
from .errors import InvalidArgument
from .records import Event
from .state import Store

FILTER_KEYS = ("type", "event", "container", "image", "volume", "network", "label")
EVENT_TYPES = ("container", "image", "volume", "network")

_COLUMNS = "seq, time_ns, type, action, actor_id, attrs_json"

StopSignal = threading.Event | Callable[[], bool] | None


def parse_time(value: str | datetime | float | int, now: datetime | None = None) -> datetime:
    """A ``--since``/``--until`` value as Docker reads it (RFC 3339, unix seconds, or ``10m`` ago).

    Raises:
        InvalidArgument: not a time.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return parse_since(value, now)


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def to_event(row: sqlite3.Row | tuple) -> Event:  # type: ignore[type-arg]
    """An :class:`Event` from an ``events`` row (columns as in ``_COLUMNS``)."""
    seq, time_ns, type_, action, actor_id, attrs_json = tuple(row)
    try:
        attrs = json.loads(attrs_json) if attrs_json else {}
    except ValueError:
        attrs = {}
    return Event(seq=seq, time=datetime.fromtimestamp(time_ns / 1e9, timezone.utc),
                 type=type_, action=action, actor_id=actor_id,
                 attributes={str(k): str(v) for k, v in attrs.items()})


@dataclass(frozen=True)
class EventFilter:
    """Docker's ``--filter`` for events: values of one key OR, different keys AND."""

    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, filters: "Iterable[str] | Mapping[str, Iterable[str]] | EventFilter | None"
              ) -> "EventFilter":
        """From ``["type=container", "event=start"]`` or ``{"type": ["container"]}``.

        Raises:
            InvalidArgument: a malformed or unknown filter.
        """
        terms: dict[str, list[str]] = {}
        if isinstance(filters, EventFilter):
            return filters
        if filters is None:
            return cls()
        if isinstance(filters, Mapping):
            pairs = [(k, v) for k, vs in filters.items() for v in vs]
        else:
            pairs = []
            for f in filters:
                key, sep, value = f.partition("=")
                if not sep or not key:
                    raise InvalidArgument(f"bad filter {f!r}", hint="filters look like key=value")
                pairs.append((key, value))
        for key, value in pairs:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"unknown event filter {key!r}",
                                      hint="use " + ", ".join(f"{k}=" for k in FILTER_KEYS))
            if key == "type" and value not in EVENT_TYPES:
                raise InvalidArgument(f"unknown event type {value!r}",
                                      hint="use " + ", ".join(EVENT_TYPES))
            terms.setdefault(key, []).append(value)
        return cls({k: tuple(v) for k, v in terms.items()})

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, ev: Event) -> bool:
        """Whether ``ev`` passes every filter key."""
        t = self.terms
        if not t:
            return True
        if "type" in t and ev.type not in t["type"]:
            return False
        if "event" in t:
            action = ev.action.split(":", 1)[0]   # "exec_start: sh" matches event=exec_start
            if action not in t["event"] and ev.action not in t["event"]:
                return False
        name = ev.attributes.get("name", "")
        for key in ("container", "volume", "network"):
            if key in t and not (ev.type == key and any(
                    ev.actor_id.startswith(v) or (name and name == v) for v in t[key])):
                return False
        if "image" in t:
            refs = {ev.actor_id, ev.attributes.get("image", "")}
            if ev.type == "image":
                refs.add(name)
            if not any(_image_match(v, refs) for v in t["image"]):
                return False
        if "label" in t:
            for want in t["label"]:
                k, sep, v = want.partition("=")
                if k not in ev.attributes or (sep and ev.attributes[k] != v):
                    return False
        return True


def _image_match(value: str, refs: set[str]) -> bool:
    # As Docker: a filter without a tag matches every tag of that repository;
    # an id (or a prefix of one) matches the image id.
    for r in refs:
        if not r:
            continue
        if r == value:
            return True
        if r.startswith("sha256:"):
            if value.startswith("sha256:") and r.startswith(value) or r[7:].startswith(value):
                return True
            continue
        repo = r.rsplit(":", 1)[0] if ":" in r.rsplit("/", 1)[-1] else r
        if value == repo:
            return True
    return False


def last_seq(db: Store) -> int:
    """The newest event's sequence number (0 for none)."""
    row = db.one("SELECT MAX(seq) FROM events")
    return int(row[0] or 0) if row else 0


def list_events(db: Store, *, since: str | datetime | float | None = None,
                until: str | datetime | float | None = None,
                filters: Iterable[str] | Mapping[str, Iterable[str]] | EventFilter | None = None,
                now: datetime | None = None) -> list[Event]:
    """Recorded events in order, optionally between two times and filtered.

    Raises:
        InvalidArgument: a bad time or filter.
    """
    flt = EventFilter.parse(filters)
    sql = f"SELECT {_COLUMNS} FROM events"
    where: list[str] = []
    args: list[int] = []
    if since is not None:
        where.append("time_ns >= ?")
        args.append(_ns(parse_time(since, now)))
    if until is not None:
        where.append("time_ns <= ?")
        args.append(_ns(parse_time(until, now)))
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq"
    return [ev for ev in map(to_event, db.query(sql, tuple(args))) if flt.matches(ev)]


def first_seq_since(db: Store, since: datetime) -> int:
    """The ``seq`` to follow from so that events at or after ``since`` are included."""
    row = db.one("SELECT MIN(seq) FROM events WHERE time_ns >= ?", (_ns(since),))
    if row is None or row[0] is None:
        return last_seq(db)
    return int(row[0]) - 1


def _stopped(stop: StopSignal) -> bool:
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def follow_events(db: Store, *, since_seq: int | None = None, stop: StopSignal = None,
                  poll: float = 0.2,
                  filters: Iterable[str] | Mapping[str, Iterable[str]] | EventFilter | None = None,
                  batch: int = 500, tick: Callable[[], None] | None = None) -> Iterator[Event]:
    """Events after ``since_seq`` as they are recorded, by any process, until stopped.

    Args:
        db: the state store (the calling thread's connection is used).
        since_seq: yield events with a larger ``seq``; None starts at the
            newest event now (only new events, like ``docker events``).
        stop: a ``threading.Event`` (waited on, so setting it ends the wait at
            once) or a callable polled between queries.
        poll: seconds between queries when nothing is new.
        filters: Docker-style filters; non-matching events are skipped.
        batch: rows fetched per query.
        tick: called before each query (the engine passes a rate-limited
            check that records OOM kills of running containers, which no
            process would otherwise notice while they keep running).

    Yields:
        Events in ``seq`` order, each once.

    Raises:
        InvalidArgument: a bad filter.
    """
    flt = EventFilter.parse(filters)
    last = last_seq(db) if since_seq is None else since_seq
    sql = f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
    sleeper = stop.wait if isinstance(stop, threading.Event) else threading.Event().wait
    while True:
        if tick is not None:
            tick()
        rows = db.query(sql, (last, batch))
        for row in rows:
            ev = to_event(row)
            last = ev.seq
            if flt.matches(ev):
                yield ev
        if len(rows) == batch:
            continue
        if _stopped(stop):
            return
        # After the wait the loop queries once more before looking at
        # ``stop`` again, so events recorded before the stop are not dropped.
        sleeper(poll)
