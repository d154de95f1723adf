"""The built-in ``busybox`` image, made from the host's static busybox.

A fresh machine with no network still has something to run: the rootfs is
the host's ``/bin/busybox`` (from Debian's busybox-static) plus one hardlink
per applet, the usual top-level directories, and a minimal ``/etc/passwd``
and ``/etc/group``. Docker's own busybox image is laid out the same way.

The layer tar is built in memory and is deterministic: entries in a fixed
order, every mtime (and the config's ``created``) taken from the busybox
binary's mtime. Rebuilding from the same binary therefore gives the same
image id, and a new busybox gives a new image.
"""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
from datetime import datetime, timezone
from pathlib import Path

from ..errors import EngineError
from ..records import ImageInfo
from .importer import image_from_layer
from .store import ImageStore

__all__ = ["build_busybox", "find_static_busybox", "is_static_elf", "busybox_rootfs"]

CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"), Path("/usr/lib/busybox/busybox"))
INSTALL_HINT = "install the static build: apt-get install busybox-static"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# (path, mode); parents come before children.
DIRECTORIES = (
    ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755), ("proc", 0o555),
    ("root", 0o700), ("run", 0o755), ("sbin", 0o755), ("sys", 0o555), ("tmp", 0o1777),
    ("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755), ("var", 0o755),
    ("var/tmp", 0o1777),
)
PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = b"root:x:0:\ndaemon:x:1:\nnobody:x:65534:\n"

# ELF e_machine -> OCI architecture, so the config tells the truth even for
# a busybox given with --busybox from another architecture.
_ELF_ARCH = {3: "386", 62: "amd64", 40: "arm", 183: "arm64", 21: "ppc64le", 22: "s390x",
             243: "riscv64"}
PT_INTERP = 3


def is_static_elf(path: Path) -> tuple[bool, str | None]:
    """Whether an ELF executable is statically linked (no PT_INTERP program header).

    Static-pie binaries count as static: they have no interpreter either.

    Args:
        path: the file to check.

    Returns:
        ``(static, architecture)``; the OCI architecture name, or None if unknown.

    Raises:
        EngineError: the file is not a readable ELF executable.
    """
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) \
                    or ident[5] not in (1, 2):
                raise EngineError(f"{path} is not an ELF executable", hint=INSTALL_HINT)
            end = "<" if ident[5] == 1 else ">"
            if ident[4] == 2:       # 64-bit
                fields = struct.unpack(end + "HHIQQQIHHHHHH", f.read(48))
            else:
                fields = struct.unpack(end + "HHIIIIIHHHHHH", f.read(36))
            machine, phoff, phentsize, phnum = fields[1], fields[4], fields[8], fields[9]
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error) as err:
        raise EngineError(f"cannot read {path}: {err}", hint=INSTALL_HINT) from err
    if len(table) < phentsize * phnum or phentsize < 4:
        raise EngineError(f"{path} has a truncated ELF program header table", hint=INSTALL_HINT)
    types = [struct.unpack_from(end + "I", table, i * phentsize)[0] for i in range(phnum)]
    return PT_INTERP not in types, _ELF_ARCH.get(machine)


def find_static_busybox(explicit: Path | None = None) -> tuple[Path, str | None]:
    """The static busybox to build from: ``explicit``, else the usual places, else $PATH.

    Returns:
        ``(path, architecture)``.

    Raises:
        EngineError: none found, or the one found is dynamically linked (a
            dynamic busybox would need the host's libc inside the image).
    """
    if explicit is not None:
        candidates = [explicit]
    else:
        on_path = shutil.which("busybox")
        candidates = [p for p in CANDIDATES if p.is_file()] + ([Path(on_path)] if on_path else [])
    if not candidates or not candidates[0].is_file():
        where = explicit or "/bin/busybox"
        raise EngineError(f"no busybox at {where}", hint=INSTALL_HINT)
    dynamic = []
    for path in candidates:
        static, arch = is_static_elf(path)
        if static:
            return path, arch
        dynamic.append(str(path))
    raise EngineError(f"busybox at {', '.join(dynamic)} is dynamically linked and would not run "
                      "inside an image", hint=INSTALL_HINT)


def _applets(busybox: Path) -> list[str]:
    """Install paths of every applet (``bin/sh``, ``usr/bin/env``, ...)."""
    try:
        out = subprocess.run([str(busybox), "--list-full"], capture_output=True, check=True,
                             timeout=30).stdout.decode()
    except (OSError, subprocess.SubprocessError) as err:
        raise EngineError(f"cannot list the applets of {busybox}: {err}", hint=INSTALL_HINT) from err
    paths = set()
    for line in out.splitlines():
        parts = [p for p in line.strip().split("/") if p]
        # Only plain paths: the list comes from a binary we did not build.
        if parts and all(p not in (".", "..") and "\x00" not in p for p in parts):
            paths.add("/".join(parts))
    paths.discard("bin/busybox")
    if "bin/sh" not in paths:
        raise EngineError(f"{busybox} has no sh applet", hint=INSTALL_HINT)
    return sorted(paths)


def _version(busybox: Path) -> str:
    try:
        out = subprocess.run([str(busybox)], capture_output=True, timeout=30).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return ""
    first = out.splitlines()[0] if out else ""
    return first.split(" multi-call")[0].strip()


def busybox_rootfs(busybox: Path, applets: list[str], mtime: int) -> bytes:
    """The deterministic rootfs tar: directories, busybox, applet hardlinks, /etc files.

    Args:
        busybox: the static binary to put at /bin/busybox.
        applets: install paths relative to / (from ``busybox --list-full``).
        mtime: the timestamp every entry carries.

    Returns:
        The uncompressed tar bytes.
    """
    buf = io.BytesIO()

    def entry(name: str, mode: int, kind: bytes = tarfile.REGTYPE, size: int = 0,
              link: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode, info.type, info.size, info.linkname = mode, kind, size, link
        info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "root", "root"
        return info

    dirs = dict(DIRECTORIES)
    for path in applets:       # parents of applets a given busybox may add (usr/local/bin...)
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.setdefault("/".join(parts[:i]), 0o755)
    binary = busybox.read_bytes()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(dirs):
            tar.addfile(entry(name, dirs[name], tarfile.DIRTYPE))
        tar.addfile(entry("bin/busybox", 0o755, size=len(binary)), io.BytesIO(binary))
        tar.addfile(entry("etc/group", 0o644, size=len(GROUP)), io.BytesIO(GROUP))
        tar.addfile(entry("etc/passwd", 0o644, size=len(PASSWD)), io.BytesIO(PASSWD))
        for path in applets:
            if path in dirs:
                continue
            # Hardlinks, not symlinks: busybox picks the applet by argv[0]
            # either way, and one inode keeps the layer small.
            tar.addfile(entry(path, 0o755, tarfile.LNKTYPE, link="bin/busybox"))
    return buf.getvalue()


def build_busybox(store: ImageStore, ref: str = "busybox:latest", *,
                  busybox: Path | None = None) -> ImageInfo:
    """Build and tag the built-in busybox image.

    Args:
        store: the image store.
        ref: the tag to give it.
        busybox: the static busybox to use; default /bin/busybox (busybox-static).

    Returns:
        The image (Env PATH, Cmd ["sh"]). Rebuilding from the same binary
        returns the same image id.

    Raises:
        EngineError: no static busybox (the message says to install busybox-static).
        InvalidArgument: ``ref`` is not a valid reference.
    """
    path, arch = find_static_busybox(busybox)
    applets = _applets(path)
    mtime = int(path.stat().st_mtime)
    tar = busybox_rootfs(path, applets, mtime)
    version = _version(path)
    return image_from_layer(
        store, io.BytesIO(tar), ref,
        runtime={"Env": [PATH_ENV], "Cmd": ["sh"]},
        created=datetime.fromtimestamp(mtime, timezone.utc),
        created_by=f"portside image bootstrap busybox ({version or path})",
        comment="built from the host's static busybox", architecture=arch, event="import",
        size=len(tar))
