"""Restart policy decisions and Docker's back-off, as pure functions."""
from __future__ import annotations

import pytest

from engine.containers.model import RunState
from engine.containers.restart import BACKOFF_MAX_MS, restart_delay
from engine.errors import InvalidArgument

S = 1_000_000_000


def exited(code: int = 1, *, count: int = 0, backoff: int = 0, ran_s: float = 1, stopped: bool = False) -> RunState:
    return RunState(status="exited", exit_code=code, restart_count=count, backoff_ms=backoff,
                    started_ns=100 * S, finished_ns=100 * S + int(ran_s * S), manually_stopped=stopped)


def test_no_policy_never_restarts() -> None:
    assert restart_delay("no", exited(1)) is None


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_always_restarts_unless_stopped_by_the_user(policy: str) -> None:
    assert restart_delay(policy, exited(0)) == 100
    assert restart_delay(policy, exited(1)) == 100
    assert restart_delay(policy, exited(0, stopped=True)) is None


def test_on_failure_counts() -> None:
    assert restart_delay("on-failure", exited(0)) is None
    assert restart_delay("on-failure", exited(2, count=50)) == 100        # no limit
    assert restart_delay("on-failure:2", exited(1, count=1)) == 100
    assert restart_delay("on-failure:2", exited(1, count=2)) is None


def test_backoff_doubles_caps_and_resets_after_a_long_run() -> None:
    delays = []
    backoff = 0
    for _ in range(12):
        backoff = restart_delay("always", exited(1, backoff=backoff))  # type: ignore[assignment]
        delays.append(backoff)
    assert delays[:5] == [100, 200, 400, 800, 1600]
    assert max(delays) == BACKOFF_MAX_MS and delays[-1] == BACKOFF_MAX_MS
    assert restart_delay("always", exited(1, backoff=6400, ran_s=10)) == 100


def test_bad_policy() -> None:
    with pytest.raises(InvalidArgument):
        restart_delay("sometimes", exited(1))
