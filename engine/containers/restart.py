"""Restart policies without a daemon: whether, and after how long, to restart.

Docker's rules: ``no`` never; ``always`` and ``unless-stopped`` unless the
user stopped the container; ``on-failure[:N]`` after a non-zero exit, at
most N times. The delay before a restart is Docker's back-off: 100 ms,
doubling on every restart up to a minute, back to 100 ms after a run that
lasted at least 10 seconds. Pure functions, so the rules are unit-tested.
"""
from __future__ import annotations

from .model import RunState
from .spec import parse_restart

BACKOFF_START_MS = 100
BACKOFF_MAX_MS = 60_000
BACKOFF_RESET_AFTER_NS = 10 * 1_000_000_000


def restart_delay(policy: str, st: RunState) -> int | None:
    """Milliseconds to wait before restarting after the exit recorded in ``st``.

    Args:
        policy: the container's ``--restart`` value.
        st: its state after the exit (exit code, restart count, times, the
            last back-off, whether the user stopped it).

    Returns:
        The delay, or None for no restart.

    Raises:
        InvalidArgument: a malformed policy.
    """
    name, max_retries = parse_restart(policy)
    if name == "no" or st.manually_stopped:
        return None
    if name == "on-failure":
        if st.exit_code == 0 or (max_retries and st.restart_count >= max_retries):
            return None
    ran_ns = st.finished_ns - st.started_ns if st.started_ns else 0
    if st.backoff_ms == 0 or ran_ns >= BACKOFF_RESET_AFTER_NS:
        return BACKOFF_START_MS
    return min(st.backoff_ms * 2, BACKOFF_MAX_MS)
