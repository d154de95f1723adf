"""Shared fixtures: an engine on a private temp root, root/tool checks."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from engine import Engine

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Integration tests need root; as non-root they are reported as skipped
    # (never silently passed). CI runs as root, so there they always run.
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration test: needs root")
        for item in items:
            if "integration" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def engine(root_dir: Path) -> Iterator[Engine]:
    e = Engine(root_dir)
    yield e
    e.close()


def need_tool(name: str) -> str:
    """Path of a host tool the test needs; a clear failure if `make setup` was skipped."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make setup`")
    return path
