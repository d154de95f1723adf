"""Waiting on a directory with pooled inotify instances."""
from __future__ import annotations

import os
import select
import threading
from pathlib import Path

from engine.containers import watch


def _later(path: Path, delay: float = 0.2) -> threading.Timer:
    t = threading.Timer(delay, path.write_text, args=("0",))
    t.start()
    return t


def test_wait_until_wakes_when_the_file_appears(tmp_path: Path) -> None:
    target = tmp_path / "exit"
    t = _later(target)
    # A long recheck: only the inotify event can end the wait well before the timeout.
    assert watch.wait_until(tmp_path, target.exists, timeout=20, recheck=20)
    t.join()
    assert not watch.wait_until(tmp_path, lambda: False, timeout=0.1)


def test_an_instance_is_reused_for_another_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with watch.DirWatch(a) as first:
        fd = first.fd
        (a / "noise").write_text("x")            # an event left unread at close
    second = watch.DirWatch(b)
    assert second.fd == fd                       # the same instance, from the pool
    t = _later(b / "exit")
    assert watch.wait_until(b, (b / "exit").exists, timeout=20, recheck=20)
    t.join()
    second.wait(0)                               # drop b's own events so far
    (a / "more").write_text("x")                 # the old directory no longer wakes it
    assert select.select([second.fd], [], [], 0.2)[0] == []
    (b / "more").write_text("x")                 # its own does
    assert select.select([second.fd], [], [], 5)[0] == [second.fd]
    second.close()


def test_the_pool_is_bounded(tmp_path: Path) -> None:
    watches = [watch.DirWatch(tmp_path) for _ in range(watch._POOL_MAX + 3)]
    fds = [w.fd for w in watches]
    for w in watches:
        w.close()
    assert len(watch._pool) <= watch._POOL_MAX
    closed = [fd for fd in fds if fd not in watch._pool]
    assert len(closed) >= 3
    for fd in closed:                            # closed, not leaked
        link = Path(f"/proc/self/fd/{fd}")
        assert not link.exists() or "inotify" not in os.readlink(link)


def test_events_give_names_and_masks_none_from_an_earlier_watch(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with watch.DirWatch(a) as first:
        fd = first.fd
        (a / "stale").write_text("x")            # left unread when the instance is pooled
    with watch.DirWatch(b, watch.IN_CREATE | watch.IN_MOVED_TO) as w:
        assert w.active and w.fd == fd           # the same instance, from the pool
        (b / "new.tmp").write_text("x")          # create (close-write not asked for)
        os.replace(b / "new.tmp", b / "new")     # moved-to
        got = w.events()
        assert [(e.mask & (watch.IN_CREATE | watch.IN_MOVED_TO), e.name) for e in got] == [
            (watch.IN_CREATE, b"new.tmp"), (watch.IN_MOVED_TO, b"new")]
        assert w.events() == []                  # read once, then nothing is queued
