"""The detail pane: tabs about the object selected in the list pane."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Static, TabbedContent, TabPane

from .detail_tabs import (ChangesTab, EnvTab, EventView, HistoryTab, InspectTab, Loads,
                          ProcessesTab)
from .log_pane import LogPane
from .stats_view import StatsView

# kind -> ((tab id, title), ...); the first is shown by default.
TABS: dict[str, tuple[tuple[str, str], ...]] = {
    "container": (("logs", "Logs"), ("stats", "Stats"), ("inspect", "Inspect"),
                  ("processes", "Processes"), ("env", "Env"), ("changes", "Changes")),
    "image": (("inspect", "Inspect"), ("history", "History")),
    "volume": (("inspect", "Inspect"),),
    "network": (("inspect", "Inspect"),),
    "event": (("event", "Event"),),
}


def _tab_widget(kind: str, tab: str) -> Widget:
    wid = f"{kind}-{tab}-view"
    if tab == "logs":
        return LogPane(id=wid)
    if tab == "stats":
        return StatsView(id=wid)
    if tab == "event":
        return EventView(id=wid)
    cls = {"inspect": InspectTab, "processes": ProcessesTab, "env": EnvTab,
           "changes": ChangesTab, "history": HistoryTab}[tab]
    return cls(id=wid)


class DetailPane(Vertical):
    """Shows the selected container, image, volume or network in tabs."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind: str | None = None
        self.key: str | None = None
        self.record: Any = None

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title", markup=False)
        with ContentSwitcher(initial="detail-none", id="detail-kinds"):
            yield Static("Nothing selected.", id="detail-none", classes="placeholder")
            for kind, tabs in TABS.items():
                with TabbedContent(id=f"detail-{kind}"):
                    for tab, title in tabs:
                        with TabPane(title, id=f"{kind}-{tab}"):
                            yield _tab_widget(kind, tab)

    # -- what is shown -------------------------------------------------------------------
    def show(self, kind: str, key: str | None, record: Any = None, *,
             reload: bool = False) -> None:
        """Point the pane at an object (None: nothing selected)."""
        same = (kind, key) == (self.kind, self.key)
        self.kind, self.key, self.record = kind, key, record
        self.query_one("#detail-title", Static).update(self._title(kind, key, record))
        switcher = self.query_one("#detail-kinds", ContentSwitcher)
        switcher.current = f"detail-{kind}" if key is not None else "detail-none"
        if key is not None and (not same or reload):
            self._load_active(reload=reload)

    def record_changed(self, record: Any) -> None:
        """The list saw the selected object change: refresh what depends on it."""
        self.record = record
        if self.kind is not None:
            self.query_one("#detail-title", Static).update(self._title(self.kind, self.key,
                                                                       record))
        self._load_active(reload=True, live_only=True)

    @staticmethod
    def _title(kind: str, key: str | None, record: Any) -> str:
        if key is None:
            return ""
        if kind == "container" and record is not None:
            return f"{record.name}  {record.image}  {record.status}"
        if kind == "image" and record is not None:
            return ", ".join(record.repo_tags) or record.short_id
        if kind == "event" and record is not None:
            return f"{record.type} {record.action} {record.attributes.get('name', '')}"
        return str(getattr(record, "name", key))

    def tabs(self) -> TabbedContent | None:
        if self.kind is None or self.key is None:
            return None
        return self.query_one(f"#detail-{self.kind}", TabbedContent)

    def active_view(self) -> Widget | None:
        tabs = self.tabs()
        if tabs is None or not tabs.active:
            return None
        return self.query_one(f"#{tabs.active}-view")

    def _load_active(self, *, reload: bool = False, live_only: bool = False) -> None:
        view = self.active_view()
        # Views that poll or follow stop when not shown: only the visible one costs.
        for other in self.query("LogPane, StatsView, ProcessesTab"):
            if other is not view:
                other.pause()  # type: ignore[attr-defined]
        if view is None or self.kind is None:
            return
        if isinstance(view, (LogPane, StatsView, EventView)):
            view.show(self.kind, self.key, record=self.record)
        elif isinstance(view, Loads) and not (live_only and isinstance(view, (EnvTab,
                                                                             HistoryTab))):
            view.show(self.kind, self.key, reload=reload, record=self.record)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        event.stop()
        # Shown again: read it again (one engine call). A container's files,
        # env or inspect may have changed while another tab was up.
        self._load_active(reload=True)

    def select_tab(self, tab: str) -> None:
        tabs = self.tabs()
        if tabs is not None and self.kind is not None:
            tabs.active = f"{self.kind}-{tab}"

    # -- keys (bound on the main screen: they work from the list too) ------------------
    def action_tab(self, step: int) -> None:
        tabs = self.tabs()
        if tabs is None or self.kind is None:
            return
        ids = [f"{self.kind}-{t}" for t, _ in TABS[self.kind]]
        i = ids.index(tabs.active) if tabs.active in ids else 0
        had_focus = self.has_focus_within
        tabs.active = ids[(i + step) % len(ids)]
        if had_focus:
            self.call_after_refresh(self.focus_view)

    def focus_view(self) -> None:
        view = self.active_view()
        if view is not None:
            target = view if view.can_focus else next(
                (w for w in view.query("*") if w.can_focus), None)
            if target is not None:
                target.focus()

    def focus_logs_search(self) -> None:
        self.select_tab("logs")
