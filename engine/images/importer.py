"""``import``: a one-layer image from a rootfs tar, with Dockerfile-style changes.

The tar is stored as given (plain, gzip or zstd, with the matching OCI
media type), so ``save`` writes back the same bytes; bzip2 and xz have no
layer media type, so those are stored decompressed. The image config is
built here too, and :func:`image_from_layer` is shared with the busybox
bootstrap.

``--change`` lines follow Docker's grammar for the instructions ``docker
import`` accepts: ``CMD``/``ENTRYPOINT`` in JSON-array (exec) or shell form,
``ENV``/``LABEL`` as ``k=v ...`` (quotes allowed) or the legacy ``k v``,
``WORKDIR`` (relative to the previous one), ``USER``, ``EXPOSE`` (``80``,
``80/udp``, ranges ``8000-8002``), ``VOLUME`` (words or a JSON array) and
``STOPSIGNAL``. Podman's ``INSTRUCTION=args`` spelling is accepted as well.
Variables (``$FOO``) are not expanded: an import has no earlier environment.
"""
from __future__ import annotations

import copy
import json
import lzma
import os
import posixpath
import re
import shlex
import signal
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping

from ..errors import ImageFormatError, InvalidArgument
from ..records import ImageInfo, Progress
from .archive import decompressor, layer_media_type, rollback_on_error, sniff_stream
from .reference import normalize_tag
from .registry import host_platform
from .store import ImageStore, LayerSource, ProgressFn

__all__ = ["import_rootfs", "image_from_layer", "apply_changes", "build_config", "rfc3339"]

SUPPORTED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
_CHANGE_HINT = "--change takes one of " + ", ".join(SUPPORTED) + ", e.g. --change 'CMD [\"sh\"]'"
_PROTOCOLS = ("tcp", "udp", "sctp")


def rfc3339(t: datetime) -> str:
    """``2024-01-02T03:04:05.1234Z``: UTC, fraction trimmed, as Go's RFC3339Nano writes it."""
    u = t.astimezone(timezone.utc)
    frac = f".{u.microsecond:06d}".rstrip("0").rstrip(".")
    return u.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


# -- --change ---------------------------------------------------------------------

def apply_changes(base: Mapping[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Apply Dockerfile-style ``--change`` lines to an image's runtime config.

    Args:
        base: the OCI ``config`` object to start from (not modified).
        changes: lines like ``CMD ["sh"]``, ``ENV A=1 B=2``, ``EXPOSE 80/udp``.

    Returns:
        A new ``config`` object (Docker's key names: ``Cmd``, ``Env``, ...).

    Raises:
        InvalidArgument: an unknown instruction or malformed arguments; the
            message quotes the line.
    """
    cfg = copy.deepcopy(dict(base))
    for line in changes:
        m = re.match(r"\s*([A-Za-z]+)(?:\s+|=|$)(.*)$", line, re.S)
        if not m:
            raise InvalidArgument(f"bad --change {line!r}", hint=_CHANGE_HINT)
        instr, args = m.group(1).upper(), m.group(2).strip()
        handler = _HANDLERS.get(instr)
        if handler is None:
            raise InvalidArgument(f"--change: unsupported instruction {instr!r} in {line!r}",
                                  hint=_CHANGE_HINT)
        if not args:
            raise InvalidArgument(f"--change {instr} needs an argument", hint=_CHANGE_HINT)
        handler(cfg, args, line)
    return cfg


def _json_array(args: str) -> list[str] | None:
    """The exec (JSON array of strings) form, or None if ``args`` is not one."""
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command(args: str) -> list[str]:
    # Docker's rule: anything that is not a JSON array of strings is shell form.
    exec_form = _json_array(args)
    return exec_form if exec_form is not None else ["/bin/sh", "-c", args]


def _cmd(cfg: dict[str, Any], args: str, line: str) -> None:
    cfg["Cmd"] = _command(args)


def _entrypoint(cfg: dict[str, Any], args: str, line: str) -> None:
    cfg["Entrypoint"] = _command(args)


def _words(args: str, line: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError as err:
        raise InvalidArgument(f"--change {line!r}: {err}", hint="check the quotes") from None


def _pairs(args: str, line: str) -> list[tuple[str, str]]:
    """``k=v k2="v 2"`` pairs, or the legacy ``k the rest`` form."""
    words = _words(args, line)
    if words and "=" not in words[0]:
        key, _, rest = args.partition(" ")
        rest = rest.strip()
        if not rest:
            raise InvalidArgument(f"--change {line!r}: {key} has no value",
                                  hint="use KEY=VALUE or KEY VALUE")
        return [(key, rest)]
    pairs = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--change {line!r}: {w!r} is not KEY=VALUE",
                                  hint="quote values with spaces: KEY=\"a b\"")
        pairs.append((key, value))
    return pairs


def _env(cfg: dict[str, Any], args: str, line: str) -> None:
    env: list[str] = list(cfg.get("Env") or [])
    for key, value in _pairs(args, line):
        if any(c.isspace() for c in key):
            raise InvalidArgument(f"--change {line!r}: bad variable name {key!r}")
        entry = f"{key}={value}"
        # Replace in place, so PATH stays where it was.
        for i, e in enumerate(env):
            if e.split("=", 1)[0] == key:
                env[i] = entry
                break
        else:
            env.append(entry)
    cfg["Env"] = env


def _label(cfg: dict[str, Any], args: str, line: str) -> None:
    labels = dict(cfg.get("Labels") or {})
    labels.update(_pairs(args, line))
    cfg["Labels"] = labels


def _workdir(cfg: dict[str, Any], args: str, line: str) -> None:
    cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", args))


def _user(cfg: dict[str, Any], args: str, line: str) -> None:
    if any(c.isspace() for c in args):
        raise InvalidArgument(f"--change {line!r}: USER takes one user[:group]")
    cfg["User"] = args


def _port(n: str, line: str) -> int:
    if not n.isdigit() or not 1 <= int(n) <= 65535:
        raise InvalidArgument(f"--change {line!r}: invalid port {n!r}", hint="ports are 1-65535")
    return int(n)


def _expose(cfg: dict[str, Any], args: str, line: str) -> None:
    ports = dict(cfg.get("ExposedPorts") or {})
    for word in args.split():
        spec, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in _PROTOCOLS:
            raise InvalidArgument(f"--change {line!r}: unknown protocol {proto!r}",
                                  hint="use tcp, udp or sctp")
        lo, _, hi = spec.partition("-")
        first, last = _port(lo, line), _port(hi, line) if hi else _port(lo, line)
        if last < first:
            raise InvalidArgument(f"--change {line!r}: empty port range {spec!r}")
        for p in range(first, last + 1):
            ports[f"{p}/{proto}"] = {}
    cfg["ExposedPorts"] = ports


def _volume(cfg: dict[str, Any], args: str, line: str) -> None:
    paths = _json_array(args)
    if paths is None:
        paths = args.split()
    volumes = dict(cfg.get("Volumes") or {})
    for p in paths:
        if not p.startswith("/"):
            raise InvalidArgument(f"--change {line!r}: volume {p!r} is not an absolute path")
        volumes[p] = {}
    cfg["Volumes"] = volumes


def _stopsignal(cfg: dict[str, Any], args: str, line: str) -> None:
    if not _valid_signal(args):
        raise InvalidArgument(f"--change {line!r}: unknown signal {args!r}",
                              hint="use a name like SIGTERM or a number like 15")
    cfg["StopSignal"] = args


def _valid_signal(s: str) -> bool:
    if s.isdigit():
        return 1 <= int(s) <= signal.SIGRTMAX
    name = s.upper() if s.upper().startswith("SIG") else "SIG" + s.upper()
    m = re.fullmatch(r"SIGRTMIN(?:\+(\d+))?|SIGRTMAX(?:-(\d+))?", name)
    if m:
        return int(m.group(1) or m.group(2) or 0) <= signal.SIGRTMAX - signal.SIGRTMIN
    return name in signal.Signals.__members__


_HANDLERS: dict[str, Callable[[dict[str, Any], str, str], None]] = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose, "LABEL": _label,
    "STOPSIGNAL": _stopsignal, "USER": _user, "VOLUME": _volume, "WORKDIR": _workdir,
}


# -- images from one layer --------------------------------------------------------------

def build_config(diff_id: str, runtime: Mapping[str, Any], *, created: datetime, created_by: str,
                 comment: str = "", architecture: str | None = None) -> bytes:
    """The OCI image config of a one-layer image, as canonical JSON bytes.

    Args:
        diff_id: the layer's uncompressed digest.
        runtime: the ``config`` object (``Cmd``, ``Env``, ...).
        created: creation time (also the history entry's time).
        created_by: the history entry's ``created_by``.
        comment: the history entry's comment (``import -m``).
        architecture: OCI architecture; the host's if not given.

    Returns:
        The config bytes; their sha256 is the image id.
    """
    when = rfc3339(created)
    history: dict[str, Any] = {"created": when, "created_by": created_by}
    if comment:
        history["comment"] = comment
    config = {
        "created": when,
        "architecture": architecture or host_platform()[1],
        "os": "linux",
        "config": dict(runtime),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [history],
    }
    return json.dumps(config, separators=(",", ":")).encode()


def image_from_layer(store: ImageStore, src: BinaryIO, ref: str | None, *,
                     runtime: Mapping[str, Any], created: datetime, created_by: str,
                     comment: str = "", architecture: str | None = None, event: str = "import",
                     progress: ProgressFn | None = None, size: int | None = None) -> ImageInfo:
    """Store a layer tar and make a one-layer image of it.

    Args:
        store: the image store.
        src: the layer tar stream (plain, gzip, zstd; bzip2 and xz are
            decompressed first since OCI has no media type for them).
        ref: a tag for the image, or None for an untagged image.
        runtime, created, created_by, comment, architecture: see :func:`build_config`.
        event: the event recorded for the new image.
        progress: called while the tar is copied into the store.
        size: the tar's size if known, for progress.

    Returns:
        The image.

    Raises:
        InvalidArgument: ``ref`` is not a valid reference.
        ImageFormatError: the tar is not a valid, safe rootfs. Nothing is left behind.
    """
    tags = [normalize_tag(ref)] if ref else []
    kind, stream = sniff_stream(src)
    if kind in ("bzip2", "xz"):
        stream, kind, size = decompressor(kind, stream), "", None
    media_type = layer_media_type(kind)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(Progress(what="importing rootfs", done=done, total=size, layer=1, layers=1))

    with rollback_on_error(store):
        try:
            digest, blob_size = store.blobs.put_stream(stream, on_read=tick)
        except (EOFError, lzma.LZMAError) as err:
            raise ImageFormatError(f"cannot decompress the rootfs tar: {err}",
                                   hint="the file is truncated or corrupt") from err
        layer_src = LayerSource(open=lambda: store.blobs.open(digest), digest=digest,
                                size=blob_size, media_type=media_type, trusted=True)
        layer = store.add_layer(None, layer_src, None, label="rootfs tar", index=1, count=1)
        config = build_config(layer.diff_id, runtime, created=created, created_by=created_by,
                              comment=comment, architecture=architecture)
        return store.add_image(config, [layer_src], tags, event=event)


def import_rootfs(store: ImageStore, source: str | os.PathLike[str] | BinaryIO, ref: str | None, *,
                  changes: list[str], message: str = "",
                  progress: ProgressFn | None = None) -> ImageInfo:
    """``docker import``: a one-layer image from a rootfs tar.

    Args:
        store: the image store.
        source: a tar path (plain, gzip, zstd, bzip2, xz) or a binary stream.
        ref: a tag for the image, or None.
        changes: ``--change`` lines (see :func:`apply_changes`).
        message: the history comment (``-m``).
        progress: called while the tar is copied in.

    Returns:
        The new image (event ``import``).

    Raises:
        InvalidArgument: a bad ``--change`` line, a bad reference, or a missing file
            (checked before anything is stored).
        ImageFormatError: the tar is not a valid, safe rootfs; nothing is left behind.
    """
    if ref:
        normalize_tag(ref)
    runtime = apply_changes({}, changes)
    with ExitStack() as stack:
        size = None
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            try:
                f: BinaryIO = stack.enter_context(open(path, "rb"))
            except (FileNotFoundError, IsADirectoryError):
                raise InvalidArgument(f"cannot read {path}: not a file",
                                      hint="give a rootfs tar, or - for stdin") from None
            size = os.fstat(f.fileno()).st_size
        else:
            f = source
        return image_from_layer(store, f, ref, runtime=runtime,
                                created=datetime.now(timezone.utc),
                                created_by="portside import", comment=message, event="import",
                                progress=progress, size=size)
