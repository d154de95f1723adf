"""system reset's view of the mounts under a root (from a fake mountinfo)."""
from __future__ import annotations

from pathlib import Path

from engine.api_system import _mounts_under, _unescape


def test_mountinfo_escapes_are_decoded() -> None:
    assert _unescape(r"/var/lib/my\040root/x\011y\134z") == "/var/lib/my root/x\ty\\z"


def test_mounts_at_or_under_the_root_only(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        r"40 22 0:35 / /srv/my\040root/containers/a/merged rw - overlay overlay rw" "\n"
        "41 22 0:36 / /srv/my rootless rw - tmpfs tmpfs rw\n"
        r"42 22 0:37 / /srv/my\040root rw - tmpfs tmpfs rw" "\n")
    assert _mounts_under(Path("/srv/my root"), tmp_path) == [
        "/srv/my root/containers/a/merged", "/srv/my root"]
    assert _mounts_under(Path("/nowhere"), tmp_path) == []
