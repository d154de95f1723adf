"""Parsing Docker's mount flags into :class:`~engine.records.Mount` records.

``-v/--volume``, ``--mount`` and ``--tmpfs`` are parsed here, in the engine,
so the CLI and the app accept exactly the same syntax.
"""
from __future__ import annotations

import os
import posixpath
import re

from ..errors import InvalidArgument
from ..records import Mount

_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_PROPAGATION = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_TMPFS_OPTS = ("ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "nr_inodes",
               "size", "mode", "uid", "gid", "noatime", "atime", "relatime", "strictatime")


def _check_destination(dest: str, flag: str) -> str:
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid {flag} destination {dest!r}: not an absolute path",
                              hint="the container path must start with /")
    norm = posixpath.normpath(dest)
    if norm == "/":
        raise InvalidArgument(f"invalid {flag} destination {dest!r}: cannot mount over /")
    return norm


def parse_volume(value: str, *, cwd: str | None = None) -> Mount:
    """Parse one ``-v`` value: ``[SOURCE:]DEST[:OPTS]``.

    A source starting with ``/`` or ``.`` is a host path (bind mount,
    relative paths are made absolute against ``cwd``); any other source is a
    named volume; no source means an anonymous volume.

    Args:
        value: the flag value.
        cwd: the directory relative host paths are taken from.

    Returns:
        The mount (``type`` bind or volume; ``source`` empty for anonymous).

    Raises:
        InvalidArgument: a malformed value or unknown option.
    """
    parts = value.split(":")
    if len(parts) == 1:
        src, dest, opts = "", parts[0], ""
    elif len(parts) == 2:
        if parts[1].startswith("/"):
            src, dest, opts = parts[0], parts[1], ""
        else:
            src, dest, opts = "", parts[0], parts[1]
    elif len(parts) == 3:
        src, dest, opts = parts
    else:
        raise InvalidArgument(f"invalid volume specification {value!r}",
                              hint="use -v [SOURCE:]DEST[:ro|rw]")
    dest = _check_destination(dest, "volume")
    read_only = False
    options: list[str] = []
    for o in filter(None, opts.split(",")):
        if o in ("ro", "rw"):
            read_only = o == "ro"
        elif o in _PROPAGATION:
            options.append(o)
        elif o in ("z", "Z"):
            continue            # SELinux relabel: nothing to do without SELinux
        elif o == "nocopy":
            options.append(o)
        else:
            raise InvalidArgument(f"invalid volume option {o!r} in {value!r}",
                                  hint="use ro, rw, nocopy or a propagation mode")
    if not src:
        return Mount("volume", "", dest, read_only, tuple(options))
    if src.startswith("/") or src.startswith("."):
        host = os.path.abspath(os.path.join(cwd or os.getcwd(), src))
        return Mount("bind", host, dest, read_only, tuple(options))
    if not _VOLUME_NAME.match(src):
        raise InvalidArgument(f"invalid volume name {src!r}",
                              hint="names use [a-zA-Z0-9][a-zA-Z0-9_.-]; host paths must be absolute")
    return Mount("volume", src, dest, read_only, tuple(options))


def parse_mount(value: str, *, cwd: str | None = None) -> Mount:
    """Parse one ``--mount`` value: ``type=bind|volume|tmpfs,source=..,target=..[,...]``.

    Raises:
        InvalidArgument: a malformed value, unknown key, or (for bind
            mounts) a host path that does not exist.
    """
    fields: dict[str, str] = {}
    for item in filter(None, value.split(",")):
        k, sep, v = item.partition("=")
        k = k.strip().lower()
        if not sep and k in ("readonly", "ro", "volume-nocopy"):
            v = "true"
        elif not sep:
            raise InvalidArgument(f"invalid --mount field {item!r}", hint="fields look like key=value")
        fields[k] = v
    kind = fields.pop("type", "volume")
    src = fields.pop("source", fields.pop("src", ""))
    dest = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    if not dest:
        raise InvalidArgument(f"--mount {value!r} has no target", hint="add target=/path/in/container")
    dest = _check_destination(dest, "mount")
    ro_value = fields.pop("readonly", fields.pop("ro", "false")).lower()
    if ro_value not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid readonly value {ro_value!r}", hint="use readonly=true|false")
    read_only = ro_value in ("true", "1")
    options: list[str] = []
    if kind == "bind":
        if not src:
            raise InvalidArgument("--mount type=bind needs a source", hint="add source=/host/path")
        src = os.path.abspath(os.path.join(cwd or os.getcwd(), src))
        if not os.path.exists(src):
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {src}",
                                  hint="create it first, or use -v, which creates missing directories")
        prop = fields.pop("bind-propagation", "")
        if prop:
            if prop not in _PROPAGATION:
                raise InvalidArgument(f"invalid bind-propagation {prop!r}")
            options.append(prop)
    elif kind == "volume":
        if src and not _VOLUME_NAME.match(src):
            raise InvalidArgument(f"invalid volume name {src!r}")
        if fields.pop("volume-nocopy", "false").lower() in ("true", "1"):
            options.append("nocopy")
    elif kind == "tmpfs":
        if src:
            raise InvalidArgument("--mount type=tmpfs takes no source")
        size = fields.pop("tmpfs-size", "")
        mode = fields.pop("tmpfs-mode", "")
        if size:
            options.append(f"size={_size(size)}")
        if mode:
            options.append(f"mode={_mode(mode)}")
    else:
        raise InvalidArgument(f"unsupported mount type {kind!r}", hint="use bind, volume or tmpfs")
    if fields:
        raise InvalidArgument(f"unknown --mount field(s): {', '.join(sorted(fields))}")
    return Mount(kind, src, dest, read_only, tuple(options))


def parse_tmpfs(value: str) -> Mount:
    """Parse one ``--tmpfs`` value: ``DEST[:OPTS]`` (``size=64m,mode=1777,...``).

    Raises:
        InvalidArgument: a malformed value or unknown option.
    """
    dest, _, opts = value.partition(":")
    dest = _check_destination(dest, "tmpfs")
    options: list[str] = []
    read_only = False
    for o in filter(None, opts.split(",")):
        key, sep, v = o.partition("=")
        if key not in _TMPFS_OPTS:
            raise InvalidArgument(f"invalid tmpfs option {o!r}",
                                  hint="use size=, mode=, uid=, gid=, noexec, nosuid, nodev, ro")
        if key == "ro":
            read_only = True
        elif key == "rw":
            read_only = False
        elif key == "size":
            options.append(f"size={_size(v)}")
        elif key == "mode":
            options.append(f"mode={_mode(v)}")
        else:
            options.append(o if sep else key)
    return Mount("tmpfs", "", dest, read_only, tuple(options))


def _size(v: str) -> int:
    m = re.fullmatch(r"(\d+)([bkmg]?)b?", v.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size {v!r}", hint="e.g. 64m, 1g, 100000")
    return int(m.group(1)) * {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def _mode(v: str) -> str:
    if not re.fullmatch(r"[0-7]{1,4}", v):
        raise InvalidArgument(f"invalid mode {v!r}", hint="an octal mode such as 1777")
    return v


def parse_size(value: str) -> int:
    """A Docker size (``10m``, ``1g``, ``4096``) in bytes.

    Raises:
        InvalidArgument: not a size.
    """
    return _size(value)
