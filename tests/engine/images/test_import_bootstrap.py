"""import (rootfs tar + --change) and the built-in busybox image."""
from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import shutil
import stat
import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest
import zstandard

from engine import EngineError, Engine, ImageFormatError, InvalidArgument
from engine.images.bootstrap import PATH_ENV, busybox_rootfs, is_static_elf
from engine.images.importer import apply_changes, rfc3339
from tests.conftest import need_tool
from tests.imagefactory import layer_tar

ROOTFS = {"bin/app": b"#!/bin/sh\necho app\n", "etc/hostname": b"x\n"}


# -- --change ----------------------------------------------------------------------

@pytest.mark.parametrize("line, key, value", [
    ('CMD ["nginx", "-g", "daemon off;"]', "Cmd", ["nginx", "-g", "daemon off;"]),
    ("CMD echo hello  world", "Cmd", ["/bin/sh", "-c", "echo hello  world"]),
    ('CMD ["not", 1]', "Cmd", ["/bin/sh", "-c", '["not", 1]']),   # not a string array: shell form
    ("cmd=/bin/sh", "Cmd", ["/bin/sh", "-c", "/bin/sh"]),       # podman's spelling, any case
    ('ENTRYPOINT ["/entry.sh"]', "Entrypoint", ["/entry.sh"]),
    ("ENTRYPOINT exec app", "Entrypoint", ["/bin/sh", "-c", "exec app"]),
    ("ENV A=1", "Env", ["A=1"]),
    ('ENV A=1 B="two words" C=', "Env", ["A=1", "B=two words", "C="]),
    ("ENV GREETING hello there", "Env", ["GREETING=hello there"]),
    ("WORKDIR /srv/app", "WorkingDir", "/srv/app"),
    ("USER 1000:1000", "User", "1000:1000"),
    ("EXPOSE 80 53/udp 8000-8002/tcp", "ExposedPorts",
     {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}),
    ('LABEL a=b "c d"=e', "Labels", {"a": "b", "c d": "e"}),
    ("LABEL maintainer someone@example.com", "Labels", {"maintainer": "someone@example.com"}),
    ("VOLUME /data /cache", "Volumes", {"/data": {}, "/cache": {}}),
    ('VOLUME ["/var/lib/db"]', "Volumes", {"/var/lib/db": {}}),
    ("STOPSIGNAL SIGQUIT", "StopSignal", "SIGQUIT"),
    ("STOPSIGNAL 9", "StopSignal", "9"),
    ("STOPSIGNAL RTMIN+3", "StopSignal", "RTMIN+3"),
])
def test_change_lines(line: str, key: str, value: object) -> None:
    assert apply_changes({}, [line]) == {key: value}


def test_changes_accumulate_and_replace() -> None:
    cfg = apply_changes({"Env": ["PATH=/bin", "A=0"]},
                        ["ENV A=1", "ENV B=2", "WORKDIR /srv", "WORKDIR app", "EXPOSE 80",
                         "EXPOSE 81", "CMD a", "CMD [\"b\"]"])
    assert cfg["Env"] == ["PATH=/bin", "A=1", "B=2"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "81/tcp"}
    assert cfg["Cmd"] == ["b"]


@pytest.mark.parametrize("line, match", [
    ("RUN apt-get update", "unsupported instruction 'RUN'"),
    ("FROM scratch", "unsupported instruction 'FROM'"),
    ("CMD", "needs an argument"),
    ("", "bad --change"),
    ("ENV =x", "not KEY=VALUE"),
    ("ENV A", "has no value"),
    ('ENV A="unclosed', "quotes"),
    ("EXPOSE 70000", "invalid port"),
    ("EXPOSE 80/icmp", "unknown protocol"),
    ("EXPOSE 90-80", "empty port range"),
    ("VOLUME data", "not an absolute path"),
    ("STOPSIGNAL SIGNOPE", "unknown signal"),
    ("USER a b", "one user"),
])
def test_bad_change_lines(line: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match) as err:
        apply_changes({}, [line])
    if "unsupported" in match:
        assert "CMD, ENTRYPOINT, ENV" in str(err.value)      # the hint lists what works


def test_rfc3339_trims_like_go() -> None:
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2024-01-02T03:04:05Z"
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc)) == \
        "2024-01-02T03:04:05.12Z"


# -- import ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind, media_type", [
    ("", "application/vnd.oci.image.layer.v1.tar"),
    ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
])
def test_import_keeps_the_tar_as_given(engine: Engine, tmp_path: Path, kind: str, media_type: str) -> None:
    raw = layer_tar(ROOTFS)
    data = {"": raw, "gzip": gzip.compress(raw, mtime=0),
            "zstd": zstandard.ZstdCompressor().compress(raw)}[kind]
    src = tmp_path / "rootfs.tar"
    src.write_bytes(data)
    info = engine.import_image(src, "imported:v1", changes=["CMD [\"/bin/app\"]", "ENV A=1"],
                               message="from a tarball")
    assert info.repo_tags == ("imported:v1",)
    assert info.config.cmd == ("/bin/app",) and info.config.env == ("A=1",)
    [lay] = engine.image_store.layers_of(info.id)
    assert lay.media_type == media_type
    assert engine.image_store.blobs.read(lay.blob_digest) == data
    assert (engine.image_store.lower_dirs(info.id)[0] / "bin" / "app").read_bytes() == ROOTFS["bin/app"]
    config = json.loads(engine.image_store.config_bytes(info.id))
    assert config["os"] == "linux" and config["architecture"]
    assert config["rootfs"]["diff_ids"] == [lay.diff_id]
    assert config["history"][0]["created_by"] == "portside import"
    assert config["history"][0]["comment"] == "from a tarball"
    assert engine.history("imported:v1")[0].comment == "from a tarball"
    events = engine.db.query("SELECT action FROM events WHERE type='image' ORDER BY seq")
    assert "import" in [e["action"] for e in events]


def test_import_from_stream_untagged(engine: Engine) -> None:
    info = engine.import_image(io.BytesIO(layer_tar(ROOTFS)))
    assert info.repo_tags == ()
    assert info.created is not None and (datetime.now(timezone.utc) - info.created).total_seconds() < 60


def test_import_bzip2_is_stored_decompressed(engine: Engine) -> None:
    raw = layer_tar(ROOTFS)
    info = engine.import_image(io.BytesIO(bz2.compress(raw)), "bz:1")
    [lay] = engine.image_store.layers_of(info.id)
    assert engine.image_store.blobs.read(lay.blob_digest) == raw
    assert lay.media_type == "application/vnd.oci.image.layer.v1.tar"


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for sub in ("blobs", "layers", "tmp") for p in (root / sub).rglob("*")}


def test_bad_change_stores_nothing(engine: Engine) -> None:
    before = _snapshot(engine.paths.root)
    with pytest.raises(InvalidArgument):
        engine.import_image(io.BytesIO(layer_tar(ROOTFS)), "x:1", changes=["HEALTHCHECK NONE"])
    with pytest.raises(InvalidArgument):
        engine.import_image(io.BytesIO(layer_tar(ROOTFS)), "Not A Ref")
    assert _snapshot(engine.paths.root) == before and engine.images() == []


def test_hostile_or_broken_rootfs_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../escape")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    before = _snapshot(engine.paths.root)
    with pytest.raises(ImageFormatError, match=r"\.\./escape"):
        engine.import_image(io.BytesIO(buf.getvalue()), "evil:1")
    with pytest.raises(ImageFormatError):
        engine.import_image(io.BytesIO(gzip.compress(b"not a tar at all" * 100)), "junk:1")
    assert _snapshot(engine.paths.root) == before and engine.images() == []
    assert not (tmp_path / "escape").exists() and not (engine.paths.root / "escape").exists()


def test_import_missing_file(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        engine.import_image(tmp_path / "nope.tar")


# -- bootstrap ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def busybox() -> Path:
    path = Path("/bin/busybox")
    if not path.is_file():
        need_tool("busybox")        # fails with "run make setup"
    return path


def test_bootstrap_busybox(engine: Engine, busybox: Path) -> None:
    info = engine.bootstrap_busybox()
    assert info.repo_tags == ("busybox:latest",)
    assert info.config.cmd == ("sh",)
    assert info.config.env == (PATH_ENV,)
    [layer] = engine.image_store.lower_dirs(info.id)
    sh = layer / "bin" / "sh"
    assert sh.is_file() and os.stat(sh).st_ino == os.stat(layer / "bin" / "busybox").st_ino
    assert (layer / "bin" / "busybox").read_bytes() == busybox.read_bytes()
    assert os.stat(layer / "usr" / "bin" / "env").st_ino == os.stat(sh).st_ino
    assert stat.S_IMODE(os.stat(layer / "tmp").st_mode) == 0o1777
    passwd = (layer / "etc" / "passwd").read_text()
    assert passwd.startswith("root:x:0:0:") and "nobody:x:65534:65534:" in passwd
    assert "root:x:0:" in (layer / "etc" / "group").read_text()
    for d in ("proc", "sys", "dev", "run", "root", "home", "var", "sbin", "usr/sbin"):
        assert (layer / d).is_dir(), d
    assert info.history[0].created_by.startswith("portside image bootstrap busybox")
    # Deterministic: the same binary gives the same image.
    again = engine.bootstrap_busybox("busybox:again")
    assert again.id == info.id and set(again.repo_tags) == {"busybox:latest", "busybox:again"}


def test_rootfs_tar_is_deterministic(busybox: Path) -> None:
    a = busybox_rootfs(busybox, ["bin/sh", "usr/bin/env"], 1700000000)
    b = busybox_rootfs(busybox, ["bin/sh", "usr/bin/env"], 1700000000)
    assert a == b
    assert a != busybox_rootfs(busybox, ["bin/sh", "usr/bin/env"], 1700000001)


def _elf(interp: bool, machine: int = 62) -> bytes:
    """A minimal 64-bit little-endian ELF header with one or two program headers."""
    phnum = 2 if interp else 1
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    ph = struct.pack("<II", 1, 5) + bytes(48)               # PT_LOAD
    if interp:
        ph += struct.pack("<II", 3, 4) + bytes(48)          # PT_INTERP
    return header + ph


def test_static_elf_detection(tmp_path: Path, busybox: Path) -> None:
    static, dynamic, text = tmp_path / "s", tmp_path / "d", tmp_path / "t"
    static.write_bytes(_elf(False))
    dynamic.write_bytes(_elf(True, machine=183))
    text.write_bytes(b"#!/bin/sh\n")
    assert is_static_elf(static) == (True, "amd64")
    assert is_static_elf(dynamic) == (False, "arm64")
    with pytest.raises(EngineError, match="not an ELF"):
        is_static_elf(text)
    assert is_static_elf(busybox)[0] is True


def test_bootstrap_refuses_a_dynamic_busybox(engine: Engine, tmp_path: Path) -> None:
    fake = tmp_path / "busybox"
    fake.write_bytes(_elf(True))
    with pytest.raises(EngineError, match="dynamically linked.*apt-get install busybox-static"):
        engine.bootstrap_busybox(busybox=fake)
    with pytest.raises(EngineError, match="busybox-static"):
        engine.bootstrap_busybox(busybox=tmp_path / "missing")
    assert engine.images() == []


def test_bootstrap_with_a_dynamic_host_binary(engine: Engine) -> None:
    # Any dynamically linked host binary stands in for Debian's plain busybox package.
    dyn = shutil.which("ls")
    assert dyn is not None
    with pytest.raises(EngineError, match="dynamically linked"):
        engine.bootstrap_busybox(busybox=os.path.realpath(dyn))
