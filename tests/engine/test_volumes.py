"""Named volumes: the store, the facade and their events (no root needed)."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from engine import Engine, InUse, InvalidArgument, NameConflict, NoSuchVolume
from engine.volumes import ANONYMOUS_LABEL, VolumeStore, dir_size


def events(engine: Engine, type_: str = "volume") -> list[tuple[str, str]]:
    return [(r["action"], r["actor_id"]) for r in engine.db.query(
        "SELECT action, actor_id FROM events WHERE type=? ORDER BY seq", (type_,))]


def add_container(engine: Engine, name: str, *volumes: str) -> str:
    """A container row using ``volumes`` (what create records), without running anything."""
    cid = os.urandom(32).hex()
    with engine.db.tx() as c:
        c.execute("INSERT INTO containers(id, name, image_id, status, config_json, state_json, "
                  "created_ns) VALUES (?,?,?,?,?,?,?)",
                  (cid, name, "sha256:" + "0" * 64, "exited", "{}", "{}", time.time_ns()))
        c.executemany("INSERT INTO container_volumes(container_id, volume) VALUES (?,?)",
                      [(cid, v) for v in volumes])
    return cid


# -- create -------------------------------------------------------------------------

def test_create_named(engine: Engine) -> None:
    v = engine.volume_create("data", labels={"app": "web"})
    assert (v.name, v.driver, dict(v.labels)) == ("data", "local", {"app": "web"})
    assert v.mountpoint == str(engine.paths.volumes / "data" / "_data")
    assert Path(v.mountpoint).is_dir()
    assert v.created.tzinfo is not None
    assert oct(os.stat(engine.paths.volumes / "data").st_mode & 0o777) == oct(0o701)
    assert events(engine) == [("create", "data")]
    attrs = json.loads(engine.db.one("SELECT attrs_json FROM events WHERE type='volume'")[0])
    assert attrs == {"driver": "local"}


def test_create_anonymous_gets_random_hex_name(engine: Engine) -> None:
    a, b = engine.volume_create(), engine.volume_create()
    assert re.fullmatch(r"[0-9a-f]{64}", a.name) and a.name != b.name
    assert ANONYMOUS_LABEL in a.labels


def test_create_existing_name_is_idempotent_like_docker(engine: Engine) -> None:
    first = engine.volume_create("data")
    (Path(first.mountpoint) / "keep").write_text("x")
    again = engine.volume_create("data", labels={"ignored": "1"})
    assert again == first
    assert (Path(again.mountpoint) / "keep").read_text() == "x"
    assert events(engine) == [("create", "data")]          # no second event


def test_create_conflicts_with_another_driver(engine: Engine) -> None:
    engine.volume_create("data")
    with engine.db.tx() as c:
        c.execute("UPDATE volumes SET driver='nfs' WHERE name='data'")
    with pytest.raises(NameConflict, match="nfs driver"):
        engine.volume_create("data")


@pytest.mark.parametrize("name, message", [
    ("a", "too short"), ("-x", "invalid characters"), ("a/b", "invalid characters"),
    ("..", "invalid characters"), ("has space", "invalid characters"), ("/abs/path", "invalid"),
])
def test_bad_names_are_refused(engine: Engine, name: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as e:
        engine.volume_create(name)
    assert e.value.hint
    assert not any(engine.paths.volumes.iterdir())


def test_good_names(engine: Engine) -> None:
    for name in ("ab", "my_vol.1", "A-b", "0x"):
        assert engine.volume_create(name).name == name


def test_only_the_local_driver_without_options(engine: Engine) -> None:
    with pytest.raises(InvalidArgument, match="driver 'nfs'"):
        engine.volume_create("v1", driver="nfs")
    with pytest.raises(InvalidArgument, match="option 'type'"):
        engine.volume_create("v1", options={"type": "tmpfs"})
    assert engine.volumes() == []


def test_ensure_creates_once_and_returns_the_data_dir(engine: Engine) -> None:
    store = VolumeStore(engine.db, engine.paths)
    p = store.ensure("cache")
    assert p == engine.paths.volumes / "cache" / "_data" and p.is_dir()
    assert store.ensure("cache") == p
    assert events(engine) == [("create", "cache")]
    os.rmdir(p)                                     # removed by hand: comes back
    assert store.ensure("cache").is_dir()
    with pytest.raises(InvalidArgument):
        store.ensure("x")


def test_volumes_are_shared_between_engines_on_one_root(root_dir: Path) -> None:
    a, b = Engine(root_dir), Engine(root_dir)
    a.volume_create("shared")
    assert b.volume("shared").name == "shared"
    a.close()
    b.close()


# -- list and filters -------------------------------------------------------------------

def test_list_sorted_with_filters(engine: Engine) -> None:
    engine.volume_create("web-data", labels={"app": "web", "tier": "front"})
    engine.volume_create("db-data", labels={"app": "db"})
    engine.volume_create("scratch")
    add_container(engine, "dbserver", "db-data")

    def names(*filters: str) -> list[str]:
        return [v.name for v in engine.volumes(filters=filters)]

    assert names() == ["db-data", "scratch", "web-data"]
    assert names("dangling=true") == ["scratch", "web-data"]
    assert names("dangling=false") == ["db-data"]
    assert names("name=data") == ["db-data", "web-data"]
    assert names("name=^web") == ["web-data"]
    assert names("label=app") == ["db-data", "web-data"]
    assert names("label=app=db") == ["db-data"]
    assert names("label=app=db", "label=tier") == ["db-data", "web-data"]    # OR within a key
    assert names("label=app", "dangling=true") == ["web-data"]             # AND across keys
    assert names("driver=local") == ["db-data", "scratch", "web-data"]
    assert names("driver=nfs") == []


@pytest.mark.parametrize("bad", ["dangling", "colour=red", "dangling=maybe"])
def test_bad_filters(engine: Engine, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        engine.volumes(filters=[bad])


def test_get_missing(engine: Engine) -> None:
    with pytest.raises(NoSuchVolume, match="no such volume: nope") as e:
        engine.volume("nope")
    assert "volume ls" in str(e.value)


# -- inspect ---------------------------------------------------------------------------

def test_inspect_is_docker_shaped(engine: Engine) -> None:
    engine.volume_create("data", labels={"a": "b"})
    doc = engine.volume_inspect("data")
    assert set(doc) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert doc["Name"] == "data" and doc["Driver"] == "local" and doc["Scope"] == "local"
    assert doc["Labels"] == {"a": "b"}
    assert doc["Mountpoint"] == str(engine.paths.volumes / "data" / "_data")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["CreatedAt"])
    json.dumps(doc)


# -- remove -----------------------------------------------------------------------------

def test_remove_deletes_data_row_and_records_destroy(engine: Engine) -> None:
    v = engine.volume_create("data")
    (Path(v.mountpoint) / "f").write_text("hello")
    assert engine.volume_rm("data") is True
    assert not (engine.paths.volumes / "data").exists()
    assert engine.volumes() == []
    assert events(engine) == [("create", "data"), ("destroy", "data")]
    assert list(engine.paths.tmp.iterdir()) == []       # nothing left in the trash


def test_remove_missing(engine: Engine) -> None:
    with pytest.raises(NoSuchVolume):
        engine.volume_rm("nope")
    assert engine.volume_rm("nope", force=True) is False


def test_remove_refuses_a_volume_in_use_even_with_force(engine: Engine) -> None:
    v = engine.volume_create("data")
    add_container(engine, "web", "data")
    add_container(engine, "api", "data")
    for force in (False, True):
        with pytest.raises(InUse, match="in use by container api, web"):
            engine.volume_rm("data", force=force)
    assert Path(v.mountpoint).is_dir()
    assert events(engine) == [("create", "data")]
    assert engine.volume_users("data") == ["api", "web"]


def test_remove_after_the_container_is_gone(engine: Engine) -> None:
    engine.volume_create("data")
    cid = add_container(engine, "web", "data")
    with engine.db.tx() as c:
        c.execute("DELETE FROM containers WHERE id=?", (cid,))   # cascades to container_volumes
    assert engine.volume_rm("data")


def test_failed_removal_puts_the_data_back(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    v = engine.volume_create("data")
    (Path(v.mountpoint) / "f").write_text("precious")

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine.db, "add_event", boom)
    with pytest.raises(RuntimeError):
        engine.volume_rm("data")
    monkeypatch.undo()
    assert (Path(v.mountpoint) / "f").read_text() == "precious"
    assert engine.volume("data").name == "data"


# -- prune -------------------------------------------------------------------------------

def test_prune_removes_unused_anonymous_volumes_and_counts_bytes(engine: Engine) -> None:
    anon = engine.volume_create()
    (Path(anon.mountpoint) / "blob").write_bytes(b"x" * 5000)
    os.link(Path(anon.mountpoint) / "blob", Path(anon.mountpoint) / "hardlink")   # counted once
    os.symlink("/etc/passwd", Path(anon.mountpoint) / "link")                    # not followed
    anon_used = engine.volume_create()
    add_container(engine, "web", anon_used.name)
    engine.volume_create("named")

    removed, freed = engine.volume_prune()
    assert removed == [anon.name]
    assert freed == 5000 + len("/etc/passwd")
    assert {v.name for v in engine.volumes()} == {anon_used.name, "named"}
    assert ("destroy", anon.name) in events(engine)


def test_prune_all_removes_named_unused_volumes_too(engine: Engine) -> None:
    engine.volume_create("named")
    engine.volume_create("keep", labels={"keep": "yes"})
    engine.volume_create("used")
    add_container(engine, "web", "used")
    removed, _ = engine.volume_prune(all=True, filters=["label!=keep"])
    assert removed == ["named"]
    removed, _ = engine.volume_prune(all=True, filters=["label=keep=yes"])
    assert removed == ["keep"]
    assert [v.name for v in engine.volumes()] == ["used"]
    with pytest.raises(InvalidArgument):
        engine.volume_prune(filters=["dangling=true"])


def test_dir_size_of_missing_dir_is_zero(tmp_path: Path) -> None:
    assert dir_size(tmp_path / "nope") == 0
