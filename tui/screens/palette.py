"""ctrl+p: find any action, container or image by fuzzy name."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider


class PortsideCommands(Provider):
    """Actions of the app and every container and image, by name."""

    def _main(self) -> Any:
        from .main import MainScreen
        for screen in self.app.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _actions(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        main = self._main()
        if main is None:
            return
        for view, label in (("containers", "Containers"), ("images", "Images"),
                            ("volumes", "Volumes"), ("networks", "Networks"),
                            ("events", "Events")):
            yield f"Show {label}", "switch the list pane", partial(main.action_view, view)
        yield "Run a new container", "open the run dialog", main.open_run_dialog
        yield "Help: all keys", "every binding and its id", self.app.action_help

        def on_table(view: str, action: str) -> Callable[[], Any]:
            async def run() -> None:
                main.action_view(view)
                table = main.lists.table(view)
                if table is not None:
                    await table.run_action(action)
            return run

        for view, action, title, help in (
            ("containers", "lifecycle('start')", "Start container", "the current or marked ones"),
            ("containers", "lifecycle('stop')", "Stop container", "the current or marked ones"),
            ("containers", "lifecycle('restart')", "Restart container", "current or marked"),
            ("containers", "lifecycle('kill')", "Kill container", "current or marked"),
            ("containers", "pause", "Pause/unpause container", "current or marked"),
            ("containers", "remove(False)", "Remove container", "asks first"),
            ("containers", "rename", "Rename container", ""),
            ("containers", "exec_shell", "Shell in container", "sh in the current container"),
            ("containers", "attach", "Attach to container", "ctrl+p ctrl+q detaches"),
            ("containers", "prune", "Prune stopped containers", "asks first"),
            ("images", "run", "Run image", "open the run dialog for the current image"),
            ("images", "remove(False)", "Remove image", "asks first"),
            ("images", "tag", "Tag image", ""),
            ("images", "load", "Load image archive", "docker-archive, oci-archive, OCI dir"),
            ("images", "import", "Import rootfs tar", "as a one-layer image"),
            ("images", "pull", "Pull image", "from a registry"),
            ("images", "prune", "Prune untagged images", "asks first"),
            ("volumes", "create", "Create volume", ""),
            ("volumes", "prune", "Prune unused volumes", "asks first"),
        ):
            yield title, help, on_table(view, action)

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
