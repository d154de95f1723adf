"""ps --filter combining rules (Docker's), on records alone."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import ContainerInfo, ContainerState, InvalidArgument
from engine.containers.filters import filter_containers, parse_filter

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def box(name: str, status: str, *, image: str = "busybox", image_id: str = "sha256:b",
        labels: dict[str, str] | None = None, code: int = 0) -> ContainerInfo:
    return ContainerInfo(id=name * 8, name=name, image=image, image_id=image_id, command=("sh",),
                         created=NOW, state=ContainerState(status=status, exit_code=code),
                         labels=labels or {})


BOXES = [box("web", "running", labels={"tier": "front", "env": "prod"}),
         box("webcache", "exited", code=1, labels={"tier": "front"}),
         box("db", "created", image="postgres", image_id="sha256:p", labels={"env": "prod"}),
         box("job", "exited", code=0, image="app:1", image_id="sha256:a")]


def names(*filters: str) -> list[str]:
    ids = {"busybox": {"sha256:b"}, "app:1": {"sha256:a"}}
    parsed = [parse_filter(f) for f in filters]
    return [c.name for c in filter_containers(BOXES, parsed, lambda ref: ids.get(ref, set()))]


def test_the_same_key_twice_is_either() -> None:
    assert names("status=exited", "status=created") == ["webcache", "db", "job"]
    assert names("status=exited") == ["webcache", "job"]


def test_different_keys_must_all_hold() -> None:
    assert names("status=exited", "ancestor=busybox") == ["webcache"]
    assert names("status=exited", "exited=0") == ["job"]


def test_every_label_filter_must_match() -> None:
    assert names("label=tier=front", "label=env=prod") == ["web"]
    assert names("label=env") == ["web", "db"]


def test_name_is_a_regular_expression() -> None:
    assert names("name=web") == ["web", "webcache"]
    assert names("name=^web$") == ["web"]
    assert names("name=/db") == ["db"]                 # Docker's leading slash
    assert names("name=^w", "name=^d") == ["web", "webcache", "db"]


def test_ancestor_by_reference_or_id() -> None:
    assert names("ancestor=app:1") == ["job"]
    assert names("ancestor=postgres") == ["db"]        # not in the image store, by reference
    assert names("ancestor=nothing") == []


@pytest.mark.parametrize("bad", ["status", "colour=red", "status=sleeping", "name=(", "exited=x"])
def test_bad_filters_are_refused_with_a_hint(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        names(bad)
    assert err.value.hint
