from __future__ import annotations

import pytest

from engine.containers.mounts import parse_mount, parse_size, parse_tmpfs, parse_volume
from engine.errors import InvalidArgument
from engine.records import Mount


def test_volume_forms(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert parse_volume("/data") == Mount("volume", "", "/data")
    assert parse_volume("cache:/var/cache:ro") == Mount("volume", "cache", "/var/cache", True)
    assert parse_volume("/srv:/srv") == Mount("bind", "/srv", "/srv")
    assert parse_volume("/srv:/srv:rw,rshared") == Mount("bind", "/srv", "/srv", False, ("rshared",))
    assert parse_volume("./x:/x", cwd=str(tmp_path)) == Mount("bind", str(tmp_path / "x"), "/x")
    assert parse_volume("/a:/b/../c/") .destination == "/c"
    assert parse_volume("/a:/b:Z,ro").read_only


@pytest.mark.parametrize("bad", ["/a:relative", "a:b:c:d", "/a:/b:bogus", "n@me:/x", "/a:/"])
def test_volume_errors(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_volume(bad)


def test_mount_forms(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = parse_mount(f"type=bind,source={tmp_path},target=/in,readonly")
    assert m == Mount("bind", str(tmp_path), "/in", True)
    assert parse_mount("type=volume,src=vol,dst=/v,volume-nocopy") == Mount("volume", "vol", "/v", False, ("nocopy",))
    assert parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700") == \
        Mount("tmpfs", "", "/t", False, ("size=1048576", "mode=700"))
    assert parse_mount("target=/anon").type == "volume"


def test_mount_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="does not exist"):
        parse_mount(f"type=bind,source={tmp_path}/missing,target=/x")
    with pytest.raises(InvalidArgument, match="no target"):
        parse_mount("type=volume,source=v")
    with pytest.raises(InvalidArgument, match="unknown --mount field"):
        parse_mount("type=volume,source=vol,target=/x,colour=red")
    with pytest.raises(InvalidArgument, match="unsupported mount type"):
        parse_mount("type=npipe,target=/x")


def test_tmpfs() -> None:
    assert parse_tmpfs("/run") == Mount("tmpfs", "", "/run")
    assert parse_tmpfs("/run:size=64m,mode=1777,noexec,ro") == \
        Mount("tmpfs", "", "/run", True, ("size=67108864", "mode=1777", "noexec"))
    with pytest.raises(InvalidArgument):
        parse_tmpfs("/run:rootcontext=x")
    with pytest.raises(InvalidArgument):
        parse_tmpfs("run")


def test_sizes() -> None:
    assert parse_size("10m") == 10 << 20 and parse_size("1g") == 1 << 30 and parse_size("512") == 512
    assert parse_size("4kb") == 4096
    with pytest.raises(InvalidArgument):
        parse_size("lots")
