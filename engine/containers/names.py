"""Container names and ids: Docker's rules, our own word lists."""
from __future__ import annotations

import re
import secrets

from ..errors import InvalidArgument

# Docker's rule: a letter or digit, then letters, digits, '_', '.', '-'
# (two characters at least); a leading '/' is accepted and dropped.
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ID_RE = re.compile(r"^[0-9a-f]{64}$")

_ADJECTIVES = (
    "agile", "amber", "ancient", "bold", "brave", "bright", "calm", "careful", "clever",
    "cosmic", "curious", "daring", "dreamy", "eager", "earnest", "elated", "fearless",
    "festive", "friendly", "gallant", "gentle", "glowing", "graceful", "happy", "hardy",
    "honest", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "mellow",
    "merry", "mighty", "modest", "nimble", "noble", "patient", "peaceful", "plucky",
    "polite", "proud", "quiet", "quirky", "radiant", "rapid", "serene", "sharp",
    "shy", "silent", "sleepy", "snappy", "steady", "stoic", "sunny", "swift", "tender",
    "thirsty", "tidy", "upbeat", "vibrant", "vivid", "wise", "witty", "zealous",
)

# People who built the ground containers stand on: computing, mathematics,
# physics, and the operating systems that made isolation possible.
_NAMES = (
    "allen", "babbage", "backus", "bartik", "bell", "bohr", "boole", "borg", "cerf",
    "church", "codd", "conway", "corbato", "cray", "curie", "dijkstra", "easley",
    "engelbart", "euler", "faraday", "fermat", "feynman", "floyd", "gauss", "germain",
    "goldberg", "hamilton", "hamming", "hopper", "hoare", "huffman", "jennings", "kahan",
    "kay", "kernighan", "knuth", "lamport", "lovelace", "liskov", "mccarthy", "meitner",
    "minsky", "moore", "naur", "neumann", "noether", "pascal", "perlman", "pike",
    "ritchie", "shannon", "shaw", "sutherland", "tanenbaum", "thompson", "torvalds",
    "turing", "wilkes", "wing", "wirth", "wozniak", "yonath",
)


def new_id() -> str:
    """A fresh container id: 64 lowercase hex characters."""
    return secrets.token_hex(32)


def is_full_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def random_name() -> str:
    """A Docker-style ``adjective_surname`` name (the caller retries on a clash)."""
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}"


def validate_name(name: str) -> str:
    """Check a user-given container name; returns it without a leading '/'.

    Raises:
        InvalidArgument: the name breaks Docker's naming rule.
    """
    n = name[1:] if name.startswith("/") else name
    if not _NAME_RE.match(n):
        raise InvalidArgument(
            f"invalid container name {name!r}",
            hint="use at least two characters from [a-zA-Z0-9_.-], starting with a letter or digit")
    if is_full_id(n):
        # A name that is a full id would shadow that container when resolving refs.
        raise InvalidArgument(f"invalid container name {name!r}: it looks like a container id",
                              hint="choose a name that is not 64 hex characters")
    return n
