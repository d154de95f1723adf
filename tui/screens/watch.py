"""Noticing engine changes, from this process or any other, cheaply.

With the engine's event log, one thread follows it (one indexed query per
poll, see ``Engine.follow_events``) and marks which lists an event touches;
the lister fetches only those lists, at most a few times a second. A full
re-list still runs every ten seconds, as a safety net: a change whose event
was lost (a process killed mid-way) still shows. Without
an event log every list is fetched each poll and compared. Either way only
lists that differ from last time are reported.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

# list name -> engine method that lists it, and its arguments
LISTERS: dict[str, tuple[str, dict[str, Any]]] = {
    "containers": ("containers", {"all": True}),
    "images": ("images", {}),
    "volumes": ("volumes", {}),
    "networks": ("networks", {}),
}

# event type -> lists it may change
EVENT_LISTS: dict[str, tuple[str, ...]] = {
    "container": ("containers", "images"),   # images: "in use" changes with containers
    "image": ("images",),
    "volume": ("volumes",),
    "network": ("networks", "containers"),
}


class EngineWatch:
    """:meth:`follow` in one thread, :meth:`poll` in another."""

    def __init__(self, engine: Any, *, full_every: float = 10.0,
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
        self._dirty: set[str] = set(self.listers)
        self._lock = threading.Lock()
        self._last_full = float("-inf")
        self._events: list[Any] = []

    @property
    def has_events(self) -> bool:
        return hasattr(self.engine, "follow_events")

    def follow(self, stop: threading.Event, wake: threading.Event, poll: float = 0.2,
               history: str = "1h", keep: int = 1000) -> None:
        """Gather events and mark lists dirty as they arrive, until ``stop`` is set.

        Starts with the last ``history`` of events (at most ``keep``) so the
        events view is not empty. Runs in a thread.
        """
        past = self.engine.events(since=history)[-keep:] if history else []
        with self._lock:
            self._events.extend(past)
        since = past[-1].seq if past else None
        wake.set()
        for ev in self.engine.follow_events(since_seq=since, stop=stop, poll=poll):
            names = [n for n in EVENT_LISTS.get(ev.type, ()) if n in self.listers]
            with self._lock:
                self._dirty.update(names)
                self._events.append(ev)
            wake.set()

    def poll(self, force: bool = False) -> dict[str, list[Any]]:
        """Fetch what may have changed; return only lists that differ from last time.

        ``"events"`` holds the events that arrived since the last poll.
        """
        now = self.clock()
        with self._lock:
            kinds, self._dirty = self._dirty, set()
            events, self._events = self._events, []
        if force or not self.has_events or now - self._last_full >= self.full_every:
            kinds = set(self.listers)
            self._last_full = now
        changed: dict[str, list[Any]] = {"events": events} if events else {}
        for name in sorted(kinds):
            records = self.listers[name]()
            if records != self.last.get(name):
                self.last[name] = records
                changed[name] = records
        return changed
