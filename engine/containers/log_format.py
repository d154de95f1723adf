"""The k8s-file log format conmon writes, and Docker's ``--since``/``--until`` times.

One record a line (conmon ``src/ctr_logging.c``)::

    2024-05-01T12:00:00.123456789+02:00 stdout F hello world\\n

The time is RFC 3339 with nanoseconds and the host's UTC offset; the stream
is ``stdout`` or ``stderr``; ``P`` marks a partial record (the container's
line continues in the next record of the same stream), ``F`` a full one. A
container line longer than conmon's buffer arrives as several ``P`` records
and a final ``F``.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

from ..errors import InvalidArgument

STREAMS = ("stdout", "stderr")

# Longest header conmon writes is 46 bytes ("<35-char time> stdout F "); 64
# leaves room for other offsets while staying one small read.
HEADER_BYTES = 64

_STREAM_BYTES = (b"stdout", b"stderr")
_FLAGS = (b"P", b"F")

# A quick, C-speed test for "this block may hold a partial record": byte
# searches run at memory speed, a regex over every line would not.
PARTIAL_MARKERS = (b" stdout P", b" stderr P")


def parse_line(raw: bytes) -> tuple[datetime, str, bool, bytes] | None:
    """Parse one k8s-file record.

    Args:
        raw: the record, with or without its line terminator (``\\n`` or ``\\r\\n``).

    Returns:
        ``(time, stream, partial, text)``: a timezone-aware time, ``"stdout"``
        or ``"stderr"``, True for a ``P`` record, and the text bytes as
        written (ANSI escapes untouched). None when the line is not a valid
        record.
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        # A container writing CRLF leaves "\r" before conmon's "\n"; it is part
        # of the line terminator, not text anyone wants to see.
        raw = raw[:-1]
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAM_BYTES or parts[2] not in _FLAGS:
        return None
    t = _parse_time(parts[0])
    if t is None:
        return None
    return t, parts[1].decode("ascii"), parts[2] == b"P", parts[3] if len(parts) == 4 else b""


def parse_header(prefix: bytes) -> tuple[bytes | None, bool]:
    """The stream and partial flag of a record from its first bytes.

    Cheaper than :func:`parse_line` (no time parsing); used when scanning.

    Returns:
        ``(stream, partial)``; ``(None, False)`` for something that is not a record.
    """
    parts = prefix.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAM_BYTES:
        return None, False
    flag = parts[2].rstrip(b"\r\n")
    if flag not in _FLAGS or not parts[0][:1].isdigit():
        return None, False
    return parts[1], flag == b"P"


def _parse_time(ts: bytes) -> datetime | None:
    try:
        t = datetime.fromisoformat(ts.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    if t.tzinfo is None:
        # conmon always writes an offset; a bare time is taken as the host's
        # local time, which is what conmon would have meant.
        t = t.astimezone()
    return t


def format_time(t: datetime) -> str:
    """RFC 3339 with nanoseconds (as ``docker logs -t`` prints), e.g. ``2024-05-01T10:00:00.123456000Z``."""
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


# -- Docker's --since / --until ---------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3,
                 "s": 1.0, "m": 60.0, "h": 3600.0}
_UNIX = re.compile(r"(\d+)(?:\.(\d{1,9}))?")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"(Z|z|[+-]\d{2}:\d{2})?")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """Parse a ``--since``/``--until`` value the way Docker does.

    Accepted forms:
        * RFC 3339, with or without fractional seconds and zone
          (``2024-05-01T12:00:00Z``, ``2024-05-01T12:00:00.5+02:00``);
          ``2024-05-01``, ``2024-05-01T12`` and ``2024-05-01T12:00`` too. No
          zone means the host's local time, as in Docker.
        * Unix seconds, optionally with a fraction: ``1714564800``, ``1714564800.25``.
        * A Go-style duration before ``now``: ``10m``, ``1h30m``, ``2s``, ``1.5h``, ``300ms``.

    Args:
        value: the user's text.
        now: the reference for relative durations (default: the current time).

    Returns:
        A timezone-aware datetime.

    Raises:
        InvalidArgument: the value is none of the above.
    """
    v = value.strip()
    hint = "use RFC 3339 (2024-05-01T12:00:00Z), unix seconds, or a duration such as 10m or 1h30m"
    if v != "0" and _DURATION.fullmatch(v):
        sign = -1.0 if v.startswith("-") else 1.0
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(v))
        ref = now or datetime.now(timezone.utc)
        if ref.tzinfo is None:
            ref = ref.astimezone()
        return ref - timedelta(seconds=sign * seconds)
    m = _UNIX.fullmatch(v)
    if m:
        whole, frac = m.groups()
        micros = int((frac or "0").ljust(9, "0")[:6])
        try:
            return datetime.fromtimestamp(int(whole), timezone.utc) + timedelta(microseconds=micros)
        except (OverflowError, ValueError, OSError) as err:
            raise InvalidArgument(f"invalid time {value!r}: out of range", hint=hint) from err
    m = _TIMESTAMP.fullmatch(v)
    if m:
        y, mo, d, hh, mm, ss, frac, zone = m.groups()
        try:
            t = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                         int((frac or "0").ljust(9, "0")[:6]))
        except ValueError as err:
            raise InvalidArgument(f"invalid time {value!r}: {err}", hint=hint) from err
        if zone is None:
            return t.astimezone()            # naive -> the host's local zone
        if zone in ("Z", "z"):
            return t.replace(tzinfo=timezone.utc)
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        return t.replace(tzinfo=timezone(sign * offset))
    raise InvalidArgument(f"invalid time {value!r}", hint=hint)


# -- finding line breaks without holding long lines in memory ---------------

SEARCH_FIRST = 8 * 1024
SEARCH_CHUNK = 1 << 20


def find_newline(fd: int, pos: int, limit: int) -> int:
    """Offset of the first ``\\n`` at or after ``pos`` and before ``limit``, or -1.

    Reads small chunks first (the next line end is usually near) growing to
    1 MiB, and keeps none of them, so a gigabyte-long line costs time but
    not memory.
    """
    size = SEARCH_FIRST
    while pos < limit:
        chunk = os.pread(fd, min(size, limit - pos), pos)
        if not chunk:
            return -1
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i
        pos += len(chunk)
        size = min(size * 4, SEARCH_CHUNK)
    return -1


def rfind_newline(fd: int, end: int, low: int = 0) -> int:
    """Offset of the last ``\\n`` in ``[low, end)``, or -1 (see :func:`find_newline`)."""
    size = SEARCH_FIRST
    while end > low:
        start = max(low, end - size)
        chunk = os.pread(fd, end - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i
        end = start
        size = min(size * 4, SEARCH_CHUNK)
    return -1
