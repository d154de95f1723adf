"""Image reference parsing, Docker's grammar."""
from __future__ import annotations

import pytest

from engine import InvalidArgument
from engine.images.reference import familiar_name, normalize_tag, parse_reference


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


def test_docker_hub_spellings_share_one_name() -> None:
    for spelling in ("busybox", "busybox:latest", "docker.io/busybox", "docker.io/library/busybox:latest",
                     "index.docker.io/library/busybox", "library/busybox"):
        assert normalize_tag(spelling) == "busybox:latest", spelling
    assert normalize_tag("docker.io/user/app:1") == "user/app:1"
    assert normalize_tag("localhost/library/x") == "localhost/library/x:latest"
    assert normalize_tag("quay.io/library/x:2") == "quay.io/library/x:2"
    assert familiar_name("docker.io/library/busybox@sha256:" + "a" * 64) == "busybox@sha256:" + "a" * 64


def test_a_digest_cannot_be_a_tag() -> None:
    with pytest.raises(InvalidArgument, match="digest"):
        normalize_tag("x@sha256:" + "0" * 64)
