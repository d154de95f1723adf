"""ctrl+p: find any action, container or image by fuzzy name."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .keys import MOVES, BoundAction, all_bindings, keys_of

VIEW_OF = {"container": "containers", "image": "images", "volume": "volumes",
           "network": "networks"}


class PortsideCommands(Provider):
    """Actions of the app and every container and image, by name."""

    def _main(self) -> Any:
        from .main import MainScreen
        for screen in self.app.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _actions(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        """Every binding that does something, from the one registry help uses too."""
        main = self._main()
        if main is None:
            return
        yield "Run a new container", "open the run dialog (n)", main.open_run_dialog
        seen: set[tuple[str, str]] = set()
        for b in all_bindings():
            target = self._target_of(b)
            if target is None or b.action_name in MOVES or (target, b.binding.action) in seen:
                continue            # once per action: "1" and "alt+1" both switch views
            seen.add((target, b.binding.action))
            keys = keys_of(b, getattr(getattr(self.app, "config", None), "keymap", {}) or {})
            yield f"{b.section}: {b.description}", f"key: {keys}", partial(
                self._run, target, b.binding.action)

    @staticmethod
    def _target_of(b: BoundAction) -> str | None:
        """Which widget runs ``b``'s action: app, main, detail, logs, table, lists or a view.

        None: not an action to find by name (dialogs, inputs, help).
        """
        from ..app import PortsideApp
        from ..widgets.detail import DetailPane
        from ..widgets.lists import ListPane
        from ..widgets.log_view import LogView
        from ..widgets.resource_table import ResourceTable
        from .main import MainScreen
        owner = b.owner
        if issubclass(owner, PortsideApp):
            return "app"
        if issubclass(owner, MainScreen):
            return "main"
        if issubclass(owner, DetailPane):
            return "detail"
        if issubclass(owner, LogView):
            return "logs"
        if owner is ResourceTable:
            return "table"
        if issubclass(owner, ListPane):
            return "lists"
        if issubclass(owner, ResourceTable):
            return VIEW_OF.get(getattr(owner, "kind", ""))
        return None

    async def _run(self, target: str, action: str) -> None:
        from ..widgets.detail import DetailPane
        from ..widgets.log_view import LogView
        main = self._main()
        if main is None:
            return
        if target == "app":
            await self.app.run_action(action)
        elif target == "main":
            await main.run_action(action)
        elif target == "detail":
            await main.query_one(DetailPane).run_action(action)
        elif target == "table":
            table = main.lists.table()
            if table is not None:
                await table.run_action(action)
        elif target == "lists":
            await main.lists.run_action(action)
        elif target == "logs":
            if main.lists.view != "containers":
                main.action_view("containers")
            detail = main.query_one(DetailPane)
            if detail.kind != "container" or detail.key is None:
                self.app.notify("select a container first", severity="warning")
                return
            detail.select_tab("logs")
            view = detail.query_one(LogView)
            view.focus()
            await view.run_action(action)
        else:
            main.action_view(target)
            table = main.lists.table(target)
            if table is not None:
                await table.run_action(action)

    def _objects(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        main = self._main()
        if main is None:
            return
        for view in ("containers", "images", "volumes", "networks"):
            table = main.lists.table(view)
            if table is None:
                continue
            for key, record in table.records.items():
                names: list[str]
                if view == "images":
                    names = list(record.repo_tags) or [table.label_of(key)]
                else:
                    names = [table.label_of(key)]
                detail = getattr(record, "status", "") or getattr(record, "driver", "")
                for name in names:
                    yield (f"{table.kind} {name}", f"{key[:19]} {detail}".strip(),
                           partial(self._select, view, key))

    def _select(self, view: str, key: str) -> None:
        main = self._main()
        if main is None:
            return
        main.action_view(view)
        table = main.lists.table(view)
        if table is not None:
            table.select_key(key)

    async def discover(self) -> Hits:
        for title, help, run in self._actions():
            yield DiscoveryHit(title, run, help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for source in (self._actions(), self._objects()):
            for title, help, run in source:
                score = matcher.match(title)
                if score > 0:
                    yield Hit(score, matcher.highlight(title), run, text=title, help=help)
