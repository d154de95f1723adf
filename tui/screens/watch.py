"""Noticing engine changes, from this process or any other, cheaply.

With an event log (``engine.events`` / ``engine.last_event_seq``), a poll is
one indexed query; a list is fetched again only when an event of its kind
arrived. A slower full re-list still runs now and then, because some
changes (a container exiting on its own) are only noticed when somebody
reads the state. Without an event log every list is fetched each poll and
compared. Either way only lists that differ are reported.
"""
from __future__ import annotations

import time
from typing import Any, Callable

# list name -> engine method that lists it
LISTERS: dict[str, tuple[str, dict[str, Any]]] = {
    "containers": ("containers", {"all": True}),
    "images": ("images", {}),
    "volumes": ("volumes", {}),
    "networks": ("networks", {}),
}

EVENT_KINDS = {"container": "containers", "image": "images", "volume": "volumes",
               "network": "networks"}


class EngineWatch:
    """Call :meth:`poll` from one thread; it returns the lists that changed."""

    def __init__(self, engine: Any, *, full_every: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.full_every = full_every
        self.clock = clock
        self.listers: dict[str, Callable[[], list[Any]]] = {}
        for name, (method, kwargs) in LISTERS.items():
            fn = getattr(engine, method, None)
            if fn is not None:
                self.listers[name] = (lambda fn=fn, kw=kwargs: fn(**kw))
        self.last: dict[str, list[Any]] = {}
        self.seq: int | None = None
        self._last_full = float("-inf")

    @property
    def has_events(self) -> bool:
        return hasattr(self.engine, "last_event_seq") and hasattr(self.engine, "events_since")

    def _changed_kinds(self) -> set[str]:
        """Lists touched by events since the last poll (all of them the first time)."""
        if not self.has_events:
            return set(self.listers)
        if self.seq is None:
            self.seq = self.engine.last_event_seq()
            return set(self.listers)
        events = self.engine.events_since(self.seq)
        kinds: set[str] = set()
        for ev in events:
            self.seq = max(self.seq, ev.seq)
            name = EVENT_KINDS.get(ev.type)
            if name in self.listers:
                kinds.add(name)
            if ev.type == "container":
                # a container's create/remove changes which images are in use
                kinds.add("images")
        return kinds

    def poll(self, force: bool = False) -> dict[str, list[Any]]:
        """Fetch what may have changed; return only lists that differ from last time."""
        kinds = self._changed_kinds()
        now = self.clock()
        if force or now - self._last_full >= self.full_every:
            kinds = set(self.listers)
            self._last_full = now
        changed: dict[str, list[Any]] = {}
        for name in sorted(kinds):
            records = self.listers[name]()
            if records != self.last.get(name):
                self.last[name] = records
                changed[name] = records
        return changed
