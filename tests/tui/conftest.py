"""Fixtures for app tests: a real engine on a temp root with small real images."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine
from tests.tui.fixtures import add_image


@pytest.fixture
def images_engine(engine: Engine) -> Engine:
    for ref in ("hello:1", "alpine:3.19", "web:latest"):
        add_image(engine, ref)
    return engine


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "ctr.log"
