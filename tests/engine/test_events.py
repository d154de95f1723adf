"""The event log: listing, Docker's filters and times, following across processes."""
from __future__ import annotations

import json
import multiprocessing as mp
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.events import (EventFilter, first_seq_since, follow_events, last_seq, list_events,
                           parse_time)
from engine.records import Event
from engine.state import Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _put(db: Store, t: datetime, type_: str, action: str, actor: str, **attrs: str) -> None:
    ns = int(t.timestamp()) * 10**9 + t.microsecond * 1000
    with db.tx() as c:
        c.execute("INSERT INTO events(time_ns, type, action, actor_id, attrs_json) VALUES (?,?,?,?,?)",
                  (ns, type_, action, actor, json.dumps(attrs)))


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state.db")
    _put(s, T0, "image", "pull", "sha256:aaaa1111", name="busybox:latest")
    _put(s, T0 + timedelta(seconds=1), "container", "create", "c0ffee01",
         name="web", image="busybox:latest", tier="front")
    _put(s, T0 + timedelta(seconds=2), "container", "start", "c0ffee01", name="web",
         image="busybox:latest", tier="front")
    _put(s, T0 + timedelta(seconds=3), "container", "exec_start: sh -c true", "c0ffee01", name="web")
    _put(s, T0 + timedelta(seconds=4), "volume", "create", "data", driver="local")
    _put(s, T0 + timedelta(seconds=5), "container", "die", "beef0002", name="db",
         image="sha256:aaaa1111", exitCode="137")
    _put(s, T0 + timedelta(seconds=6), "network", "connect", "n1", name="front", container="c0ffee01")
    return s


def actions(evs: list[Event]) -> list[str]:
    return [e.action for e in evs]


def test_list_in_order_with_times_and_attributes(db: Store) -> None:
    evs = list_events(db)
    assert [e.seq for e in evs] == sorted(e.seq for e in evs) and len(evs) == 7
    start = evs[2]
    assert start.type == "container" and start.action == "start" and start.actor_id == "c0ffee01"
    assert start.time == T0 + timedelta(seconds=2)
    assert start.attributes == {"name": "web", "image": "busybox:latest", "tier": "front"}


def test_since_and_until(db: Store) -> None:
    since = (T0 + timedelta(seconds=2)).isoformat()
    until = str((T0 + timedelta(seconds=4)).timestamp())
    assert actions(list_events(db, since=since, until=until)) == ["start", "exec_start: sh -c true", "create"]
    assert actions(list_events(db, since=T0 + timedelta(seconds=6))) == ["connect"]
    # A duration is relative to now.
    now = T0 + timedelta(seconds=10)
    assert actions(list_events(db, since="5s", now=now)) == ["die", "connect"]
    with pytest.raises(InvalidArgument):
        list_events(db, since="yesterday-ish")


@pytest.mark.parametrize("filters,expected", [
    (["type=volume"], ["create"]),
    (["type=container", "event=start"], ["start"]),
    (["event=start", "event=die"], ["start", "die"]),
    (["event=exec_start"], ["exec_start: sh -c true"]),
    (["container=web"], ["create", "start", "exec_start: sh -c true"]),
    (["container=beef"], ["die"]),                      # id prefix
    (["container=we"], []),                             # names match whole
    (["image=busybox"], ["pull", "create", "start"]),   # repo without tag: every tag
    (["image=sha256:aaaa"], ["pull", "die"]),
    (["image=aaaa1111"], ["pull", "die"]),
    (["label=tier=front"], ["create", "start"]),
    (["label=tier"], ["create", "start"]),
    (["network=front"], ["connect"]),
    (["volume=data"], ["create"]),
    (["type=container", "container=db"], ["die"]),
])
def test_filters(db: Store, filters: list[str], expected: list[str]) -> None:
    assert actions(list_events(db, filters=filters)) == expected


def test_filter_errors_and_mapping_form(db: Store) -> None:
    for bad, msg in ((["colour=red"], "unknown event filter"), (["type=plugin"], "unknown event type"),
                     (["typecontainer"], "bad filter")):
        with pytest.raises(InvalidArgument, match=msg):
            EventFilter.parse(bad)
    assert actions(list_events(db, filters={"type": ["network"]})) == ["connect"]
    assert not EventFilter.parse(None) and EventFilter.parse(["type=image"])


def test_parse_time_forms() -> None:
    assert parse_time(0) == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert parse_time("2024-05-01T12:00:00Z") == T0
    assert parse_time("1714564800") == T0
    naive = parse_time(datetime(2024, 5, 1, 12))
    assert naive.tzinfo is not None


def test_follow_starts_at_now_and_stops(db: Store) -> None:
    stop = threading.Event()
    got: list[Event] = []

    def consume() -> None:
        for ev in follow_events(db, stop=stop, poll=0.01):
            got.append(ev)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.05)
    with db.tx() as c:
        db.add_event(c, "container", "kill", "c0ffee01", {"name": "web", "signal": "15"})
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(2)
    assert not t.is_alive(), "stop did not end the follow"
    assert actions(got) == ["kill"] and got[0].attributes["signal"] == "15"


def test_follow_from_a_seq_and_from_a_time(db: Store) -> None:
    first = list(follow_events(db, since_seq=4, stop=lambda: True, poll=0))
    assert actions(first) == ["create", "die", "connect"]
    seq = first_seq_since(db, T0 + timedelta(seconds=5))
    assert actions(list(follow_events(db, since_seq=seq, stop=lambda: True))) == ["die", "connect"]
    assert first_seq_since(db, T0 + timedelta(days=1)) == last_seq(db) == 7
    filtered = list(follow_events(db, since_seq=0, stop=lambda: True, filters=["type=container"]))
    assert len(filtered) == 4


def test_follow_reads_more_than_one_batch(db: Store) -> None:
    with db.tx() as c:
        for i in range(25):
            db.add_event(c, "image", "tag", f"sha256:{i}", {"n": str(i)})
    evs = list(follow_events(db, since_seq=7, stop=lambda: True, batch=10))
    assert [e.attributes["n"] for e in evs] == [str(i) for i in range(25)]


def test_stop_set_during_the_wait_still_drains_what_was_written(db: Store) -> None:
    flag = {"stop": False}
    written = threading.Event()

    def writer() -> None:
        s = Store(db.path)
        time.sleep(0.05)
        with s.tx() as c:
            s.add_event(c, "volume", "destroy", "data")
        s.close()
        flag["stop"] = True
        written.set()

    threading.Thread(target=writer).start()
    evs = list(follow_events(db, stop=lambda: flag["stop"], poll=0.2))
    assert written.is_set()
    assert actions(evs) == ["destroy"]


# -- across processes --------------------------------------------------------------
N_PER_WRITER = 150


def _writer(db_path: str, writer: int, n: int, seed: int) -> None:
    rnd = random.Random(seed)
    s = Store(Path(db_path))
    i = 0
    while i < n:
        # Some transactions record two events, as lifecycle steps do (die + stop).
        k = 2 if rnd.random() < 0.25 and i + 1 < n else 1
        with s.tx() as c:
            for j in range(i, i + k):
                s.add_event(c, "container", "start", f"w{writer}", {"writer": str(writer), "n": str(j)})
        i += k
        if rnd.random() < 0.3:
            time.sleep(rnd.random() * 0.003)
    s.close()


def test_events_from_two_other_processes_arrive_in_order_once_each(tmp_path: Path) -> None:
    db = Store(tmp_path / "state.db")
    start = last_seq(db)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(db.path), w, N_PER_WRITER, w)) for w in (1, 2)]
    for p in procs:
        p.start()
    got: list[Event] = []
    deadline = time.monotonic() + 60
    for ev in follow_events(db, since_seq=start, poll=0.005,
                            stop=lambda: len(got) >= 2 * N_PER_WRITER or time.monotonic() > deadline):
        got.append(ev)
        if len(got) >= 2 * N_PER_WRITER:
            break
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    seqs = [e.seq for e in got]
    assert len(got) == 2 * N_PER_WRITER, f"lost events: got {len(got)}"
    assert seqs == sorted(set(seqs)), "events doubled or out of order"
    for w in ("1", "2"):
        ns = [int(e.attributes["n"]) for e in got if e.attributes["writer"] == w]
        assert ns == list(range(N_PER_WRITER))
    # Nothing more arrives later (no doubles appear after the fact).
    assert list(follow_events(db, since_seq=seqs[-1], stop=lambda: True)) == []
    assert list_events(db)[-1].seq == seqs[-1]
