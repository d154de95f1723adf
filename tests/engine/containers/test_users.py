from __future__ import annotations

import pytest

from engine.containers.users import ExecUser, parse_group, parse_passwd, resolve_user
from engine.errors import InvalidArgument

PASSWD = b"""root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
broken line
app:x:1000:1000:App:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = b"""root:x:0:
wheel:x:10:root,app
audio:x:29:app
app:x:1000:
staff:x:50:
"""


def test_parsers_skip_junk() -> None:
    assert [u.name for u in parse_passwd(PASSWD)] == ["root", "daemon", "app", "nobody"]
    assert parse_group(GROUP)[1].members == ("root", "app")
    assert parse_passwd(None) == [] and parse_group(b"") == []


def test_default_is_root_with_its_groups() -> None:
    assert resolve_user("", PASSWD, GROUP) == ExecUser(0, 0, (10,), "/root")


def test_name_resolves_uid_gid_home_and_groups() -> None:
    assert resolve_user("app", PASSWD, GROUP) == ExecUser(1000, 1000, (10, 29), "/home/app")


def test_numeric_uid_known_and_unknown() -> None:
    assert resolve_user("1000", PASSWD, GROUP) == ExecUser(1000, 1000, (10, 29), "/home/app")
    assert resolve_user("4242", PASSWD, GROUP) == ExecUser(4242, 0, (), "/")


def test_explicit_group_by_name_or_number_drops_supplementary() -> None:
    assert resolve_user("app:staff", PASSWD, GROUP) == ExecUser(1000, 50, (), "/home/app")
    assert resolve_user("1000:777", PASSWD, GROUP) == ExecUser(1000, 777, (), "/home/app")
    assert resolve_user("4242:4343", None, None) == ExecUser(4242, 4343, (), "/")


def test_unknown_names_are_errors() -> None:
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        resolve_user("ghost", PASSWD, GROUP)
    with pytest.raises(InvalidArgument, match="unable to find group ghosts"):
        resolve_user("app:ghosts", PASSWD, GROUP)
    with pytest.raises(InvalidArgument):
        resolve_user("app:", PASSWD, GROUP)
    with pytest.raises(InvalidArgument):
        resolve_user("root", None, None)      # no /etc/passwd: only numbers work
