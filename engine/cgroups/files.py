"""Reading and writing cgroup control files.

Control files are tiny and virtual; they are read in binary with one
``read`` (no text-mode decoding layers) because a stats sample for 200
containers reads over a thousand of them.
"""
from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from ..errors import ResourceError


_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_CHUNK = 65536


def read_bytes(path: Path | str) -> bytes | None:
    """The content of ``path``, or None if it does not exist (cgroup or process gone).

    Plain ``os.open``/``os.read`` (a third cheaper than ``open()``); a str
    path saves the ``Path`` conversion in the hot loop of a stats sample.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError as err:
        # ENODEV: the cgroup was removed; ESRCH: /proc/<pid> of a dead task.
        if err.errno in (errno.ENODEV, errno.ESRCH, errno.EINVAL):
            return None
        raise
    try:
        data = os.read(fd, _CHUNK)
        if len(data) == _CHUNK:        # seq files return short reads only at the end
            parts = [data]
            while chunk := os.read(fd, _CHUNK):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    except OSError as err:
        if err.errno in (errno.ENODEV, errno.ESRCH, errno.EINVAL):
            return None
        raise
    finally:
        os.close(fd)


def parse_int(data: bytes | None) -> int | None:
    """An integer file's value; None for a missing file or ``max`` (v2 unlimited)."""
    if data is None:
        return None
    text = data.strip()
    if not text or text == b"max":
        return None
    return int(text)


def read_int(path: Path | str) -> int | None:
    """An integer file; None for a missing file. ``max`` (v2 unlimited) also gives None."""
    return parse_int(read_bytes(path))


def read_flat_keyed(path: Path | str) -> dict[str, int]:
    """A ``key value`` per line file (memory.stat, memory.events, cpu.stat, ...)."""
    data = read_bytes(path)
    out: dict[str, int] = {}
    if not data:
        return out
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if value:
            try:
                out[key.decode()] = int(value)
            except ValueError:
                continue
    return out


def keyed_value(data: bytes | None, key: bytes) -> int | None:
    """One value of flat-keyed content (``key value`` lines), found without splitting it all."""
    if not data:
        return None
    needle = key + b" "
    if data.startswith(needle):
        start = len(needle)
    else:
        i = data.find(b"\n" + needle)
        if i < 0:
            return None
        start = i + 1 + len(needle)
    end = data.find(b"\n", start)
    return int(data[start:end if end >= 0 else None])


def read_keyed_value(path: Path | str, key: bytes) -> int | None:
    """One value of a flat-keyed file (memory.stat, memory.events, cpu.stat...)."""
    return keyed_value(read_bytes(path), key)


def write(path: Path, value: str | int, *, what: str) -> None:
    """Write one value to a control file, turning kernel refusals into ResourceError.

    Args:
        path: the control file.
        value: what to write.
        what: the setting in user terms (``memory limit``) for the error message.

    Raises:
        ResourceError: the file is missing (controller not enabled) or the kernel refused.
    """
    try:
        # O_TRUNC is what a shell's ``>`` does; cgroupfs ignores it, plain files need it.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise ResourceError(f"cannot set {what}: {path} does not exist",
                            hint="is the cgroup controller enabled for this container?") from err
    try:
        os.write(fd, str(value).encode())
    except OSError as err:
        hint = None
        if err.errno == errno.EBUSY:
            hint = "the container uses more than that now; free memory in it or choose a higher limit"
        elif err.errno == errno.EINVAL:
            hint = "the value is out of range for this kernel or for the parent cgroup"
        elif err.errno == errno.EPERM:
            hint = "run portside as root"
        raise ResourceError(f"cannot set {what} to {value}: {os.strerror(err.errno or 0)}",
                            hint=hint) from err
    finally:
        os.close(fd)


def rmdir_retry(d: Path, timeout: float = 2.0) -> None:
    """Remove an empty cgroup directory; one already gone is success.

    Tasks that were just killed leave the cgroup only once reaped, so EBUSY
    is retried for up to ``timeout`` seconds.

    Raises:
        ResourceError: processes are still in it after the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                raise ResourceError(f"cannot remove cgroup {d}: {err.strerror}",
                                    hint="processes are still in it") from err
            time.sleep(0.02)
