"""The SQLite state store.

Follows Podman's ``sqlite_state.go``: WAL, foreign keys, synchronous=FULL,
a schema version with forward migrations, and every multi-row change in one
``BEGIN IMMEDIATE`` transaction so two processes on one root stay safe.
Each thread gets its own connection (sqlite3 objects are not shareable).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import EngineError

# Each entry moves the schema from version i to i+1. Never edit a shipped
# entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE images (
        id          TEXT PRIMARY KEY,          -- sha256:<config digest>
        config_json TEXT NOT NULL,             -- the image config blob, verbatim
        manifest_digest TEXT NOT NULL DEFAULT '',
        size        INTEGER NOT NULL,
        created_ns  INTEGER NOT NULL DEFAULT 0,
        added_ns    INTEGER NOT NULL
    );
    CREATE TABLE layers (
        chain_id  TEXT PRIMARY KEY,
        diff_id   TEXT NOT NULL,
        parent    TEXT REFERENCES layers(chain_id) DEFERRABLE INITIALLY DEFERRED,
        size      INTEGER NOT NULL,            -- unpacked content bytes
        blob_digest TEXT NOT NULL,             -- the layer blob as stored
        media_type  TEXT NOT NULL,
        blob_size   INTEGER NOT NULL
    );
    CREATE TABLE image_layers (
        image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        idx       INTEGER NOT NULL,
        chain_id  TEXT NOT NULL REFERENCES layers(chain_id),
        PRIMARY KEY (image_id, idx)
    );
    CREATE INDEX image_layers_chain ON image_layers(chain_id);
    CREATE TABLE tags (
        name      TEXT PRIMARY KEY,            -- normalised repo:tag
        image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        image_id    TEXT NOT NULL,
        status      TEXT NOT NULL,
        config_json TEXT NOT NULL,             -- immutable after create
        state_json  TEXT NOT NULL,             -- pid, exit code, times...
        created_ns  INTEGER NOT NULL
    );
    CREATE INDEX containers_image ON containers(image_id);
    CREATE TABLE volumes (
        name        TEXT PRIMARY KEY,
        driver      TEXT NOT NULL DEFAULT 'local',
        labels_json TEXT NOT NULL DEFAULT '{}',
        created_ns  INTEGER NOT NULL
    );
    CREATE TABLE container_volumes (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        volume       TEXT NOT NULL REFERENCES volumes(name),
        PRIMARY KEY (container_id, volume)
    );
    CREATE TABLE events (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ns    INTEGER NOT NULL,
        type       TEXT NOT NULL,
        action     TEXT NOT NULL,
        actor_id   TEXT NOT NULL,
        attrs_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE networks (
        id          TEXT PRIMARY KEY,          -- 64 hex digits
        name        TEXT NOT NULL UNIQUE,
        driver      TEXT NOT NULL DEFAULT 'bridge',
        bridge      TEXT NOT NULL UNIQUE,      -- host interface name
        subnet      TEXT NOT NULL,             -- CIDR
        gateway     TEXT NOT NULL,
        internal    INTEGER NOT NULL DEFAULT 0,
        labels_json TEXT NOT NULL DEFAULT '{}',
        created_ns  INTEGER NOT NULL
    );
    -- One row per container per network while its network is set up (from
    -- network.prepare() to network.teardown()). No foreign key to containers:
    -- rows of a container that vanished in a crash are what reconcile() finds.
    CREATE TABLE network_endpoints (
        container_id   TEXT NOT NULL,
        network_id     TEXT NOT NULL REFERENCES networks(id),
        container_name TEXT NOT NULL,
        hostname       TEXT NOT NULL DEFAULT '',
        ip             TEXT NOT NULL,
        mac            TEXT NOT NULL,
        ifname         TEXT NOT NULL,          -- inside the container: eth0, eth1...
        host_ifname    TEXT NOT NULL UNIQUE,   -- host end of the veth pair
        aliases_json   TEXT NOT NULL DEFAULT '[]',
        created_ns     INTEGER NOT NULL,
        PRIMARY KEY (container_id, network_id),
        UNIQUE (network_id, ip)
    );
    CREATE TABLE port_mappings (
        container_id   TEXT NOT NULL,
        network_id     TEXT NOT NULL REFERENCES networks(id),
        protocol       TEXT NOT NULL,          -- tcp | udp
        host_ip        TEXT NOT NULL DEFAULT '',  -- '' = all host addresses
        host_port      INTEGER NOT NULL,
        container_port INTEGER NOT NULL,
        PRIMARY KEY (container_id, protocol, host_ip, host_port)
    );
    CREATE INDEX port_mappings_port ON port_mappings(protocol, host_port);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class StateError(EngineError):
    """The state directory or database cannot be used: unreadable, read-only,
    full, damaged, or from a newer portside."""


def _hint(err: sqlite3.Error, path: Path) -> str:
    msg = str(err).lower()
    if "readonly" in msg or "read-only" in msg:
        return (f"{path} or its directory cannot be written: check permissions and attributes "
                f"(lsattr {path}; chattr -i), or use another --root")
    if "full" in msg:
        return f"the disk holding {path.parent} is full: free space, or use another --root"
    if "disk i/o" in msg:
        return f"the disk holding {path.parent} failed a read or write: check it (dmesg), or use another --root"
    if "locked" in msg or "busy" in msg:
        return "another portside process holds the state database: try again"
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return f"the state database is damaged: move {path} aside, or use another --root"
    return "check the --root directory and its permissions"


def state_error(err: sqlite3.Error, path: Path) -> StateError:
    """The ``StateError`` for an SQLite failure on ``path``, with a hint to act on."""
    return StateError(f"state database {path}: {err}", hint=_hint(err, path))


def _environmental(err: BaseException) -> bool:
    """SQLite errors from the world (disk, permissions, locks), not from our SQL."""
    return (isinstance(err, sqlite3.DatabaseError)
            and not isinstance(err, (sqlite3.IntegrityError, sqlite3.ProgrammingError)))


class Store:
    """Access to ``state.db``; safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._migrate()

    # -- connections -------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=100.0, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=100000")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = self._connect()
            except sqlite3.Error as err:
                raise state_error(err, self.path) from err
            self._local.conn = c
        return c

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; taken at BEGIN so writers never deadlock."""
        c = self.conn
        if c.in_transaction:        # nested use joins the outer transaction
            yield c
            return
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise state_error(err, self.path) from err
        try:
            yield c
        except BaseException as err:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass            # SQLite rolled back itself (disk full, I/O error)
            if _environmental(err):
                raise state_error(err, self.path) from err  # type: ignore[arg-type]
            raise
        else:
            try:
                c.execute("COMMIT")
            except sqlite3.Error as err:
                if c.in_transaction:
                    try:
                        c.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise state_error(err, self.path) from err

    def _migrate(self) -> None:
        with self.tx() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state database {self.path} has schema {version}, newer than this "
                    f"portside understands ({SCHEMA_VERSION})",
                    hint="upgrade portside or use another --root")
            for i in range(version, SCHEMA_VERSION):
                for stmt in _split_sql(MIGRATIONS[i]):
                    c.execute(stmt)
                c.execute(f"PRAGMA user_version={i + 1}")

    # -- small helpers used across the engine ------------------------------
    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A disk, permission or corruption error of a read becomes a StateError."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            if _environmental(err):
                raise state_error(err, self.path) from err
            raise

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._reading():
            return self.conn.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._reading():
            return self.conn.execute(sql, args).fetchone()

    def add_event(self, c: sqlite3.Connection, type_: str, action: str, actor_id: str,
                  attrs: Mapping[str, str] | None = None) -> None:
        """Record an event inside the caller's transaction."""
        c.execute("INSERT INTO events(time_ns, type, action, actor_id, attrs_json) "
                  "VALUES (?,?,?,?,?)",
                  (time.time_ns(), type_, action, actor_id, json.dumps(dict(attrs or {}))))

    def get_setting(self, key: str) -> str | None:
        row = self.one("SELECT value FROM settings WHERE key=?", (key,))
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO settings(key, value) VALUES (?,?) "
                      "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))


def _split_sql(script: str) -> list[str]:
    # Migrations hold no string literals with ';', so a plain split is exact.
    return [s.strip() for s in script.split(";") if s.strip()]
