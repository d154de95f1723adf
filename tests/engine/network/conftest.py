"""Fixtures for network unit tests: a fake dataplane and an engine that uses it."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from engine import Engine
from tests.engine.network.fakes import FakeDataplane


@pytest.fixture
def dp() -> FakeDataplane:
    return FakeDataplane()


@pytest.fixture
def net_engine(root_dir: Path, dp: FakeDataplane, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a temp root whose network side is the fake (host-wide files in a temp dir)."""
    e = Engine(root_dir)
    e.net_dataplane = dp
    e.net_host_dir = tmp_path / "hostwide"
    yield e
    e.close()
