"""``ps --filter``: Docker's rules for combining container filters.

Values given for the same key are alternatives (``status=exited --filter
status=created`` lists both), different keys must all hold, and ``label``
is the exception: every label filter must match, as in Docker. ``name`` is a
regular expression searched in the name (``name=^web`` anchors it), ``id`` a
prefix, ``ancestor`` an image reference or id.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable, Iterable, Sequence

from ..errors import InvalidArgument
from ..records import ContainerInfo
from .lifecycle import Status

KEYS = ("status", "name", "id", "label", "ancestor", "exited")
STATUSES = frozenset({s.value for s in Status} | {"dead"})

Predicate = Callable[[ContainerInfo], bool]


def parse_filter(text: str) -> tuple[str, str]:
    """``key=value`` -> (key, value).

    Raises:
        InvalidArgument: no ``=`` or an unknown key.
    """
    key, sep, value = text.partition("=")
    key = key.strip().lower()
    if not sep or not key:
        raise InvalidArgument(f"bad filter {text!r}", hint="use key=value, e.g. status=exited")
    if key not in KEYS:
        raise InvalidArgument(f"unknown container filter {key!r}",
                              hint="use " + ", ".join(f"{k}=" for k in KEYS))
    return key, value


def _predicate(key: str, value: str, image_ids: Callable[[str], set[str]]) -> Predicate:
    if key == "status":
        if value not in STATUSES:
            raise InvalidArgument(f"invalid status filter {value!r}",
                                  hint="use one of " + ", ".join(sorted(STATUSES)))
        return lambda c: c.status == value
    if key == "name":
        try:
            rx = re.compile(value.lstrip("/"))
        except re.error as err:
            raise InvalidArgument(f"invalid name filter {value!r}: {err}",
                                  hint="name= takes a regular expression, e.g. name=^web") from None
        return lambda c: rx.search(c.name) is not None
    if key == "id":
        return lambda c: c.id.startswith(value)
    if key == "label":
        k, sep, v = value.partition("=")
        return lambda c: k in c.labels and (not sep or c.labels[k] == v)
    if key == "exited":
        try:
            code = int(value)
        except ValueError:
            raise InvalidArgument(f"invalid exited filter {value!r}", hint="use exited=<code>") from None
        return lambda c: c.status == "exited" and c.state.exit_code == code
    ids = image_ids(value)                                   # ancestor
    return lambda c: c.image_id in ids or c.image == value


def filter_containers(items: Iterable[ContainerInfo], filters: Sequence[tuple[str, str]],
                      image_ids: Callable[[str], set[str]]) -> list[ContainerInfo]:
    """The containers that pass ``filters`` (parsed ``(key, value)`` pairs).

    Args:
        items: the containers to filter.
        filters: from :func:`parse_filter`.
        image_ids: the image ids an ``ancestor=`` value names (empty when none).

    Raises:
        InvalidArgument: a bad value (status, regex, exit code).
    """
    groups: dict[str, list[Predicate]] = defaultdict(list)
    for key, value in filters:
        groups[key].append(_predicate(key, value, image_ids))
    checks: list[Predicate] = []
    for key, preds in groups.items():
        if key == "label":
            checks.extend(preds)                              # every label must match
        else:
            checks.append(lambda c, ps=tuple(preds): any(p(c) for p in ps))
    return [c for c in items if all(check(c) for check in checks)]
