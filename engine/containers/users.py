"""Resolving ``--user`` against the image's own /etc/passwd and /etc/group.

Names are looked up in the container's files, never through the host's NSS
(CVE-2019-14271 came from loading a container's libnss as host root). The
rules follow runc's ``GetExecUser``, which Docker uses:

* ``""`` is root (uid 0), with root's passwd entry if there is one;
* ``name`` must exist in passwd; a number need not (gid then defaults to 0);
* ``user:group`` sets the primary group (a name must exist in /etc/group);
* without an explicit group, the groups that list the user's name become
  supplementary groups.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgument


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ExecUser:
    """Who the container's process runs as."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def parse_passwd(data: bytes | None) -> list[PasswdEntry]:
    """Entries of a passwd file; malformed lines are skipped, as libc does."""
    out: list[PasswdEntry] = []
    for line in _lines(data):
        f = line.split(":")
        if len(f) < 4:
            continue
        try:
            uid, gid = int(f[2]), int(f[3])
        except ValueError:
            continue
        out.append(PasswdEntry(f[0], uid, gid, f[5] if len(f) > 5 and f[5] else "/"))
    return out


def parse_group(data: bytes | None) -> list[GroupEntry]:
    """Entries of a group file; malformed lines are skipped."""
    out: list[GroupEntry] = []
    for line in _lines(data):
        f = line.split(":")
        if len(f) < 3:
            continue
        try:
            gid = int(f[2])
        except ValueError:
            continue
        members = tuple(m for m in (f[3].split(",") if len(f) > 3 else []) if m)
        out.append(GroupEntry(f[0], gid, members))
    return out


def _lines(data: bytes | None) -> list[str]:
    if not data:
        return []
    text = data.decode("utf-8", "replace")
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _as_id(value: str) -> int | None:
    if value.isdigit():
        n = int(value)
        if n < 2**31:
            return n
    return None


def resolve_user(user: str, passwd: bytes | None, group: bytes | None) -> ExecUser:
    """Turn a Docker ``--user`` value into ids, using the container's files.

    Args:
        user: ``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``...
        passwd: the container's /etc/passwd (None if it has none).
        group: the container's /etc/group (None if it has none).

    Returns:
        uid, gid, supplementary gids and home directory.

    Raises:
        InvalidArgument: a name that is not in the container's files, or a
            malformed value.
    """
    user_part, sep, group_part = user.partition(":")
    if sep and not group_part:
        raise InvalidArgument(f"invalid user {user!r}: empty group", hint="use user[:group]")
    users = parse_passwd(passwd)
    uid_arg = _as_id(user_part) if user_part else 0
    entry: PasswdEntry | None = None
    if user_part and uid_arg is None:
        entry = next((u for u in users if u.name == user_part), None)
        if entry is None:
            raise InvalidArgument(
                f"unable to find user {user_part}: no matching entries in the container's /etc/passwd",
                hint="use a numeric uid, or a user the image defines")
    elif uid_arg is not None:
        entry = next((u for u in users if u.uid == uid_arg), None)
    uid = entry.uid if entry else (uid_arg or 0)
    gid = entry.gid if entry else 0
    home = entry.home if entry else "/"
    extra: list[int] = []
    groups = parse_group(group) if (group_part or entry) else []
    if group_part:
        gid_arg = _as_id(group_part)
        if gid_arg is not None:
            gid = gid_arg
        else:
            g = next((g for g in groups if g.name == group_part), None)
            if g is None:
                raise InvalidArgument(
                    f"unable to find group {group_part}: no matching entries in the container's /etc/group",
                    hint="use a numeric gid, or a group the image defines")
            gid = g.gid
    elif entry is not None:
        for g in groups:
            if entry.name in g.members and g.gid not in extra:
                extra.append(g.gid)
    return ExecUser(uid, gid, tuple(extra), home)
