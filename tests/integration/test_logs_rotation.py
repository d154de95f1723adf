"""``logs -f`` of a real conmon log rotated fast (``--log-opt max-size=4k``) loses no line.

conmon 2.1 rotates by renaming a fresh ``ctr.log.tmp`` over ``ctr.log``: the
old file is unlinked, so a follower must have each file open before the next
rotation. A busybox writer prints a sequence counter at about 1000 lines/s
(a file lasts ~80 ms); the follower must see every number once, in order.
"""
from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Iterator

import pytest

from engine import ContainerSpec, Engine
from tests.conftest import busybox_engine, remove_containers

pytestmark = pytest.mark.integration

COUNT = 6000


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = busybox_engine(tmp_path / "root")
    yield e
    remove_containers(e)
    e.close()


def test_follow_survives_fast_rotation(engine: Engine) -> None:
    # Five lines, then 5 ms: ~1000 lines/s, ~90 lines per 4 kB file.
    script = (f"i=0; while [ $i -lt {COUNT} ]; do "
              "i=$((i+1)); echo $i; i=$((i+1)); echo $i; i=$((i+1)); echo $i; "
              "i=$((i+1)); echo $i; i=$((i+1)); echo $i; usleep 5000; done")
    # Created first, so the follower is reading before the first line is written.
    info = engine.create(ContainerSpec(image="busybox", command=("sh", "-c", script),
                                       name=f"rot-{secrets.token_hex(4)}", network="none",
                                       log_opts={"max-size": "4k"}))
    seen: list[str] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            seen.extend(line.text for line in engine.logs(info.id, follow=True))
        except BaseException as err:   # noqa: BLE001 - reported below
            errors.append(err)

    engine.start(info.id)
    t = threading.Thread(target=follow)
    t.start()
    assert engine.wait(info.id) == 0
    t.join(timeout=60)
    assert not t.is_alive() and not errors
    numbers = [int(x) for x in seen]
    missing = sorted(set(range(1, COUNT + 1)) - set(numbers))
    assert not missing, f"{len(missing)} lines lost, first {missing[:10]}"
    assert numbers == list(range(1, COUNT + 1))                 # in order, none doubled
    files = engine.container_files(info.id)
    assert Path(files.log).stat().st_size <= 8 * 1024          # it did rotate
