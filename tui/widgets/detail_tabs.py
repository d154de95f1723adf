"""Detail tabs that load one object's data in a worker: inspect, env, history, top, diff.

A tab loads only while it is visible (the pane tells it what is selected
when it is shown), so moving the cursor through a long list does one engine
call for the visible tab, not one per tab.
"""
from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar, Sequence

from rich.json import JSON
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from engine import InvalidState

from .format import human_size, short_ago
from .text_view import TextView


class Loads:
    """Mixin: ``show(key)`` fetches in a thread, ``draw(data)`` draws on the UI thread."""

    kind: str = ""
    key: str | None = None
    METHOD: ClassVar[str] = ""

    def method_for(self, engine: Any) -> Callable[[str], Any] | None:
        return getattr(engine, self.METHOD, None) if self.METHOD else None

    def skip_reason(self, record: Any) -> str | None:
        """Why not to ask the engine for this record (e.g. not running), or None."""
        return None

    def show(self, kind: str, key: str | None, *, reload: bool = False,
             record: Any = None) -> None:
        if key == self.key and kind == self.kind and not reload:
            return
        self.kind, self.key = kind, key
        if key is None:
            self.render_empty("nothing selected")
            return
        reason = self.skip_reason(record) if record is not None else None
        if reason:
            self.render_empty(reason)
            return
        app: Any = self.app  # type: ignore[attr-defined]
        fn = self.method_for(app.engine)
        if fn is None:
            self.render_empty(f"not available: this engine has no {self.METHOD}() yet")
            return
        app.engine_call(fn, key, done=self._loaded(kind, key), exclusive=True,
                        group=f"detail-{id(self)}", title=f"Reading {key[:12]}")

    def _loaded(self, kind: str, key: str) -> Callable[[Any], None]:
        def done(data: Any) -> None:
            if (kind, key) == (self.kind, self.key):
                self.draw(data)
        done.__self__ = self  # type: ignore[attr-defined]  # the app skips it once we are gone
        return done

    def render_empty(self, message: str) -> None:
        raise NotImplementedError

    def draw(self, data: Any) -> None:
        raise NotImplementedError


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class InspectTab(Loads, TextView):
    """``inspect`` JSON, highlighted."""

    METHODS: ClassVar[dict[str, str]] = {
        "container": "container_inspect", "image": "image_inspect",
        "volume": "volume_inspect", "network": "network_inspect",
    }

    def method_for(self, engine: Any) -> Callable[[str], Any] | None:
        self.METHOD = self.METHODS.get(self.kind, "")  # type: ignore[misc]
        return getattr(engine, self.METHOD, None)

    def render_empty(self, message: str) -> None:
        self.set_content(Text(message, style="dim"))

    def draw(self, data: Any) -> None:
        keep = self.key == getattr(self, "_rendered_key", None)
        self._rendered_key = self.key
        self.set_content(JSON(json.dumps(_jsonable(data), indent=2)), keep_scroll=keep)


class RowsTab(Loads, DataTable):
    """A table of rows from the engine (env, history, processes, changes)."""

    HEADERS: ClassVar[tuple[str, ...]] = ()

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="rows.down"),
        Binding("k", "cursor_up", "Up", show=False, id="rows.up"),
        Binding("g", "scroll_top", "Top", show=False, id="rows.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="rows.bottom"),
        Binding("h", "scroll_left", "Left", show=False, id="rows.left"),
        Binding("l", "scroll_right", "Right", show=False, id="rows.right"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def shape(self, data: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
        """Headers and rows for ``data``; subclasses shape their engine's answer."""
        return self.HEADERS, list(data)

    def render_empty(self, message: str) -> None:
        self.clear(columns=True)
        self.add_column("")
        self.add_row(Text(message, style="dim"))

    def draw(self, data: Any) -> None:
        headers, rows = self.shape(data)
        keep = self.cursor_row if self.key == getattr(self, "_rendered_key", None) else 0
        self._rendered_key = self.key
        self.clear(columns=True)
        for h in headers:
            self.add_column(h)
        for row in rows:
            self.add_row(*[c if isinstance(c, Text) else Text(str(c)) for c in row])
        if not rows:
            self.add_row(*[Text("(none)", style="dim")] + [Text("")] * (len(headers) - 1))
        self.move_cursor(row=min(keep, max(0, self.row_count - 1)), animate=False)


class EnvTab(RowsTab):
    """The container's environment, one variable a row."""

    METHOD = "container"
    HEADERS = ("NAME", "VALUE")

    def shape(self, data: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
        out = []
        for item in getattr(data, "env", ()):
            name, _, value = item.partition("=")
            out.append((Text(name, style="bold"), value))
        return self.HEADERS, sorted(out, key=lambda r: r[0].plain)


class HistoryTab(RowsTab):
    """``docker history``: newest step first."""

    METHOD = "history"
    HEADERS = ("CREATED", "CREATED BY", "SIZE", "COMMENT")

    def shape(self, data: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
        return self.HEADERS, [
            (short_ago(h.created), Text(h.created_by or "", overflow="ellipsis"),
             human_size(h.size), h.comment) for h in data]


class ProcessesTab(RowsTab):
    """``top``: the container's processes."""

    METHOD = "top"
    HEADERS = ("PID", "USER", "CPU%", "MEM", "TIME", "STATUS", "COMMAND")
    EVERY = 3.0          # seconds between refreshes while shown

    def skip_reason(self, record: Any) -> str | None:
        status = getattr(record, "status", "running")
        if status not in ("running", "paused"):
            self.pause()
            return f"{status}: no processes (start it with u)"
        return None

    def show(self, kind: str, key: str | None, *, reload: bool = False,
             record: Any = None) -> None:
        super().show(kind, key, reload=reload, record=record)
        if key is not None and getattr(self, "_timer", None) is None and \
                self.skip_reason(record) is None:
            self._timer = self.set_interval(self.EVERY, self._again)

    def _again(self) -> None:
        if self.key is not None:
            Loads.show(self, self.kind, self.key, reload=True)

    def method_for(self, engine: Any) -> Callable[[str], Any] | None:
        top = getattr(engine, "top", None)
        if top is None:
            return None

        def processes(key: str) -> Any:
            try:
                return top(key)
            except InvalidState:       # it stopped between two refreshes
                return []
        return processes

    def pause(self) -> None:
        """Stop refreshing (the tab is hidden)."""
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.stop()
            self._timer = None

    def shape(self, data: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
        records = list(data)
        if records and hasattr(records[0], "pid") and hasattr(records[0], "command"):
            return self.HEADERS, [
                (p.pid if p.container_pid is None else f"{p.pid} ({p.container_pid})", p.user,
                 f"{p.cpu_percent:.1f}", human_size(p.memory_rss), _cpu_time(p.cpu_time),
                 p.status, Text(p.command, overflow="ellipsis")) for p in records]
        return self._generic(data)

    def _generic(self, data: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
        # ``top`` gives (titles, rows) like Docker's API, or a list of records.
        if isinstance(data, tuple) and len(data) == 2:
            titles, rows = data
            return list(titles), [list(r) for r in rows]
        titles_attr = getattr(data, "titles", None)
        if titles_attr is not None:
            return list(titles_attr), [list(r) for r in getattr(data, "processes", [])]
        records = list(data)
        if records and is_dataclass(records[0]):
            names = [f.name for f in fields(records[0])]
            return [n.upper() for n in names], [[getattr(r, n) for n in names] for r in records]
        return ("PROCESS",), [[r] for r in records]


def _cpu_time(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


class ChangesTab(RowsTab):
    """``diff``: files added (A), changed (C) and deleted (D) in the container."""

    METHOD = "diff"
    HEADERS = ("KIND", "PATH")
    _STYLE: ClassVar[dict[str, str]] = {"A": "green", "C": "yellow", "D": "red"}

    def shape(self, data: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
        out = []
        for change in data:
            if isinstance(change, tuple):
                kind, path = change[0], change[1]
            else:
                kind = getattr(change, "kind", "?")
                path = getattr(change, "path", str(change))
            kind = {0: "C", 1: "A", 2: "D"}.get(kind, kind) if isinstance(kind, int) else str(kind)
            out.append((Text(kind, style=self._STYLE.get(kind, "")), path))
        return self.HEADERS, out


class EventView(TextView):
    """One event, from the list's record (no engine call)."""

    def show(self, kind: str, key: str | None, record: Any = None) -> None:
        from .events_table import event_text
        if record is not None:
            self.set_content(event_text(record))
