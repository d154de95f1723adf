from __future__ import annotations

import pytest

from engine.containers.caps import CAPABILITY_NAMES, DEFAULT_CAPS, effective_set, host_capabilities, normalize
from engine.errors import InvalidArgument


def test_defaults_are_dockers_fourteen() -> None:
    assert len(DEFAULT_CAPS) == 14
    assert set(effective_set()) == set(DEFAULT_CAPS)
    assert "CAP_SYS_ADMIN" not in effective_set()


def test_add_and_drop_any_spelling() -> None:
    caps = effective_set(add=["net_admin", "CAP_SYS_TIME"], drop=["MKNOD", "cap_net_raw"])
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_TIME" in caps
    assert "CAP_MKNOD" not in caps and "CAP_NET_RAW" not in caps
    assert len(caps) == 14


def test_drop_all_keeps_only_added() -> None:
    assert effective_set(add=["chown"], drop=["ALL"]) == ["CAP_CHOWN"]
    assert effective_set(drop=["all"]) == []


def test_add_all_minus_dropped() -> None:
    caps = effective_set(add=["ALL"], drop=["SYS_ADMIN"])
    assert set(caps) == set(CAPABILITY_NAMES) - {"CAP_SYS_ADMIN"}


def test_privileged_gets_everything_the_host_has() -> None:
    host = CAPABILITY_NAMES[:38]
    assert effective_set(privileged=True, drop=["ALL"], all_caps=host) == list(host)


def test_unknown_capability_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown capability"):
        normalize("NOT_A_CAP")


def test_host_capabilities_from_fake_proc(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/cap_last_cap").write_text("37\n")
    caps = host_capabilities(tmp_path)
    assert len(caps) == 38 and caps[-1] == "CAP_AUDIT_READ"


def test_host_capabilities_limited_to_our_bounding_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/cap_last_cap").write_text("40\n")
    (tmp_path / "self").mkdir()
    full = (1 << 41) - 1
    (tmp_path / "self/status").write_text(f"Name:\tx\nCapBnd:\t{full & ~(1 << 24):016x}\n")
    caps = host_capabilities(tmp_path)
    assert "CAP_SYS_RESOURCE" not in caps and len(caps) == 40
