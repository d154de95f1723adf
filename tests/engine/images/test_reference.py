"""Image reference parsing, Docker's grammar."""
from __future__ import annotations

import pytest

from engine import InvalidArgument
from engine.images.reference import normalize_tag, parse_reference


@pytest.mark.parametrize("text,name,tag,registry,remote", [
    ("busybox", "busybox", "latest", "docker.io", "library/busybox"),
    ("busybox:1.36", "busybox", "1.36", "docker.io", "library/busybox"),
    ("user/app:v2", "user/app", "v2", "docker.io", "user/app"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app", "latest", "127.0.0.1:5000", "app"),
    ("localhost/a/b:x", "localhost/a/b", "x", "localhost", "a/b"),
    ("quay.io/org/img:1.0-rc.1", "quay.io/org/img", "1.0-rc.1", "quay.io", "org/img"),
])
def test_parse(text: str, name: str, tag: str, registry: str, remote: str) -> None:
    r = parse_reference(text)
    assert (r.name, r.tag, r.registry, r.remote_path) == (name, tag, registry, remote)


def test_digest_reference() -> None:
    d = "sha256:" + "a" * 64
    r = parse_reference(f"busybox@{d}")
    assert (r.digest, r.tag, str(r)) == (d, "", f"busybox@{d}")


@pytest.mark.parametrize("bad", ["", "UPPER", "a b", "x:", "x@sha256:123", "-x", "a//b", "x:" + "t" * 200])
def test_bad_references_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_reference(bad)


def test_normalize_tag() -> None:
    assert normalize_tag("busybox") == "busybox:latest"
    assert normalize_tag("127.0.0.1:5000/x:1") == "127.0.0.1:5000/x:1"
