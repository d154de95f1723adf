"""The transition table, checked exhaustively: every (state, operation) pair."""
from __future__ import annotations

import itertools

import pytest

from engine.containers import lifecycle
from engine.containers.lifecycle import Op, Status
from engine.errors import InvalidState

S, O = Status, Op

# The whole table, written out independently of the implementation.
EXPECTED = {
    (S.CREATED, O.START): S.RUNNING, (S.EXITED, O.START): S.RUNNING,
    (S.RESTARTING, O.START): S.RUNNING,
    (S.RUNNING, O.STOP): S.EXITED, (S.PAUSED, O.STOP): S.EXITED, (S.RESTARTING, O.STOP): S.EXITED,
    (S.RUNNING, O.KILL): S.EXITED, (S.PAUSED, O.KILL): S.EXITED,
    (S.RUNNING, O.PAUSE): S.PAUSED, (S.PAUSED, O.UNPAUSE): S.RUNNING,
    (S.RUNNING, O.EXIT): S.EXITED, (S.PAUSED, O.EXIT): S.EXITED,
    (S.EXITED, O.RESTART_POLICY): S.RESTARTING,
    (S.CREATED, O.REMOVE): S.REMOVING, (S.EXITED, O.REMOVE): S.REMOVING,
    **{(s, O.FORCE_REMOVE): S.REMOVING for s in (S.CREATED, S.RUNNING, S.PAUSED, S.RESTARTING, S.EXITED)},
    **{(s, O.RENAME): s for s in (S.CREATED, S.RUNNING, S.PAUSED, S.RESTARTING, S.EXITED)},
}


@pytest.mark.parametrize("status,op", list(itertools.product(Status, Op)))
def test_every_pair(status: Status, op: Op) -> None:
    want = EXPECTED.get((status, op))
    if want is None:
        assert not lifecycle.allowed(status, op)
        with pytest.raises(InvalidState) as exc:
            lifecycle.next_status(status, op, "web")
        # The message names the container and its current state.
        assert "web" in str(exc.value) and status.value in str(exc.value)
    else:
        assert lifecycle.allowed(status, op)
        assert lifecycle.next_status(status, op) is want


def test_removing_allows_nothing() -> None:
    assert not any(lifecycle.allowed(S.REMOVING, op) for op in Op)


def test_predicates_match_table() -> None:
    for s in Status:
        assert lifecycle.can_start(s) == ((s, O.START) in EXPECTED)
        assert lifecycle.can_stop(s) == ((s, O.STOP) in EXPECTED)
        assert lifecycle.can_kill(s) == ((s, O.KILL) in EXPECTED)
        assert lifecycle.can_pause(s) == ((s, O.PAUSE) in EXPECTED)
        assert lifecycle.can_unpause(s) == ((s, O.UNPAUSE) in EXPECTED)
        assert lifecycle.can_remove(s) == ((s, O.REMOVE) in EXPECTED)
        assert lifecycle.can_remove(s, force=True) == ((s, O.FORCE_REMOVE) in EXPECTED)


def test_strings_accepted_and_hint_given() -> None:
    assert lifecycle.can_start("exited")
    with pytest.raises(InvalidState) as exc:
        lifecycle.check("running", O.REMOVE, "db")
    assert "rm -f" in str(exc.value)
    assert lifecycle.is_active("paused") and not lifecycle.is_active("exited")
