from __future__ import annotations

import re

import pytest

from engine.containers.names import is_full_id, new_id, random_name, validate_name
from engine.errors import InvalidArgument


def test_ids_are_64_hex_and_unique() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200 and all(is_full_id(i) for i in ids)


def test_random_names_follow_the_pattern_and_rules() -> None:
    for _ in range(100):
        n = random_name()
        assert re.fullmatch(r"[a-z]+_[a-z]+", n)
        assert validate_name(n) == n


@pytest.mark.parametrize("name", ["ab", "web-1", "a.b_c", "/leading", "0db"])
def test_valid(name: str) -> None:
    assert validate_name(name) == name.lstrip("/")


@pytest.mark.parametrize("name", ["a", "", "-x", "_x", ".x", "has space", "a/b", "é1", "x" * 0 + "a:b",
                                  "0" * 64])
def test_invalid(name: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_name(name)
