"""The container lifecycle as a pure transition table.

Like youki's ``ContainerStatus`` with ``can_start``/``can_kill``/``can_delete``:
no I/O here, so every (state, operation) pair can be tested. The engine
asks this table before each step and raises :class:`InvalidState` with the
current state in the message when a request is not allowed.

States follow Docker's names::

    created --start--> running --pause--> paused --unpause--> running
    running/paused --exit|stop|kill--> exited --start--> running
    exited --policy--> restarting --start--> running      (restart policies)
    restarting --stop--> exited
    created/exited --remove--> removing;  any --force-remove--> removing
"""
from __future__ import annotations

from enum import Enum

from ..errors import InvalidState


class Status(str, Enum):
    """Where a container is in its life (``docker inspect`` .State.Status)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    REMOVING = "removing"

    def __str__(self) -> str:
        return self.value


class Op(str, Enum):
    """A request that may change a container's status."""

    START = "start"
    STOP = "stop"
    KILL = "kill"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    EXIT = "exit"                  # the container's process ended on its own
    RESTART_POLICY = "schedule a restart of"
    REMOVE = "remove"
    FORCE_REMOVE = "force-remove"
    RENAME = "rename"

    def __str__(self) -> str:
        return self.value


S, O = Status, Op

# (from, op) -> to. Anything missing is refused.
TRANSITIONS: dict[tuple[Status, Op], Status] = {
    (S.CREATED, O.START): S.RUNNING,
    (S.EXITED, O.START): S.RUNNING,
    (S.RESTARTING, O.START): S.RUNNING,

    (S.RUNNING, O.STOP): S.EXITED,
    (S.PAUSED, O.STOP): S.EXITED,
    (S.RESTARTING, O.STOP): S.EXITED,

    (S.RUNNING, O.KILL): S.EXITED,
    (S.PAUSED, O.KILL): S.EXITED,

    (S.RUNNING, O.PAUSE): S.PAUSED,
    (S.PAUSED, O.UNPAUSE): S.RUNNING,

    (S.RUNNING, O.EXIT): S.EXITED,
    (S.PAUSED, O.EXIT): S.EXITED,

    (S.EXITED, O.RESTART_POLICY): S.RESTARTING,

    (S.CREATED, O.REMOVE): S.REMOVING,
    (S.EXITED, O.REMOVE): S.REMOVING,
    (S.CREATED, O.FORCE_REMOVE): S.REMOVING,
    (S.RUNNING, O.FORCE_REMOVE): S.REMOVING,
    (S.PAUSED, O.FORCE_REMOVE): S.REMOVING,
    (S.RESTARTING, O.FORCE_REMOVE): S.REMOVING,
    (S.EXITED, O.FORCE_REMOVE): S.REMOVING,

    (S.CREATED, O.RENAME): S.CREATED,
    (S.RUNNING, O.RENAME): S.RUNNING,
    (S.PAUSED, O.RENAME): S.PAUSED,
    (S.RESTARTING, O.RENAME): S.RESTARTING,
    (S.EXITED, O.RENAME): S.EXITED,
}

_HINTS: dict[Op, str] = {
    O.START: "it is already running; see: portside ps",
    O.STOP: "it is not running",
    O.KILL: "it is not running; start it first",
    O.PAUSE: "only a running container can be paused",
    O.UNPAUSE: "only a paused container can be unpaused",
    O.REMOVE: "stop it first, or use rm -f",
    O.FORCE_REMOVE: "it is already being removed",
    O.RENAME: "it is being removed",
    O.RESTART_POLICY: "only an exited container can be restarted by its policy",
    O.EXIT: "it was not running",
}


def allowed(status: Status | str, op: Op) -> bool:
    """Whether ``op`` is allowed in ``status``."""
    return (Status(status), op) in TRANSITIONS


def next_status(status: Status | str, op: Op, name: str = "") -> Status:
    """The status after ``op``.

    Args:
        status: the current status.
        op: the requested operation.
        name: the container's name or id, for the error message.

    Returns:
        The new status.

    Raises:
        InvalidState: ``op`` is not allowed in ``status``.
    """
    st = Status(status)
    try:
        return TRANSITIONS[(st, op)]
    except KeyError:
        what = f"container {name}" if name else "the container"
        raise InvalidState(f"cannot {op} {what}: it is {st.value}", hint=_HINTS.get(op)) from None


def check(status: Status | str, op: Op, name: str = "") -> None:
    """Raise :class:`InvalidState` unless ``op`` is allowed in ``status``."""
    next_status(status, op, name)


def can_start(status: Status | str) -> bool:
    return allowed(status, O.START)


def can_stop(status: Status | str) -> bool:
    return allowed(status, O.STOP)


def can_kill(status: Status | str) -> bool:
    return allowed(status, O.KILL)


def can_pause(status: Status | str) -> bool:
    return allowed(status, O.PAUSE)


def can_unpause(status: Status | str) -> bool:
    return allowed(status, O.UNPAUSE)


def can_remove(status: Status | str, force: bool = False) -> bool:
    return allowed(status, O.FORCE_REMOVE if force else O.REMOVE)


def is_active(status: Status | str) -> bool:
    """True while a monitor may be alive for the container (running or paused)."""
    return Status(status) in (S.RUNNING, S.PAUSED)
