"""The state store: schema, migrations, transactions, cross-process safety."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from engine.state.db import SCHEMA_VERSION, StateError, Store
from engine.state.locks import FileLock


def test_pragmas_and_schema_version(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    assert s.one("PRAGMA journal_mode")[0] == "wal"
    assert s.one("PRAGMA foreign_keys")[0] == 1
    assert s.one("PRAGMA synchronous")[0] == 2          # FULL
    assert s.one("PRAGMA user_version")[0] == SCHEMA_VERSION


def test_reopen_does_not_remigrate(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    s.set_setting("runtime", "runc")
    s.close()
    s2 = Store(tmp_path / "state.db")
    assert s2.get_setting("runtime") == "runc"


def test_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store(db).close()
    c = sqlite3.connect(db)
    c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(StateError, match="newer than this portside"):
        Store(db)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    with pytest.raises(RuntimeError):
        with s.tx() as c:
            c.execute("INSERT INTO settings(key, value) VALUES ('a', '1')")
            raise RuntimeError("boom")
    assert s.get_setting("a") is None


def test_foreign_keys_enforced(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    with pytest.raises(sqlite3.IntegrityError):
        with s.tx() as c:
            c.execute("INSERT INTO tags(name, image_id) VALUES ('x:latest', 'sha256:nope')")


def _bump(db: str, n: int) -> None:
    s = Store(Path(db))
    for _ in range(n):
        with s.tx() as c:
            row = c.execute("SELECT value FROM settings WHERE key='counter'").fetchone()
            value = int(row[0]) if row else 0
            c.execute("INSERT INTO settings(key, value) VALUES ('counter', ?) "
                      "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (str(value + 1),))
            s.add_event(c, "test", "bump", str(value + 1))


def test_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store(db).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(str(db), 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    s = Store(db)
    assert s.get_setting("counter") == "200"
    actors = [r["actor_id"] for r in s.query("SELECT actor_id FROM events ORDER BY seq")]
    assert actors == [str(i) for i in range(1, 201)]    # in order, none lost or doubled


def test_file_lock_is_reentrant_and_exclusive(tmp_path: Path) -> None:
    lock = FileLock(tmp_path, "x")
    with lock:
        with FileLock(tmp_path, "x"):
            pass
    # After release another open of the file can take it without blocking.
    import fcntl
    import os
    fd = os.open(tmp_path / "x.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
