"""The Images list and what can be done to an image from it."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message

from engine import ImageInfo

from .format import human_size, short_ago, timestamp
from .resource_table import Cell, ColumnSpec, ResourceTable


def _tags(i: ImageInfo) -> Cell:
    text = ", ".join(i.repo_tags) if i.repo_tags else "<none>"
    return Cell(text, style="" if i.repo_tags else "dim")


COLUMNS: tuple[ColumnSpec[ImageInfo], ...] = (
    ColumnSpec("tags", "REPOSITORY:TAG", _tags),
    ColumnSpec("id", "IMAGE ID", lambda i: Cell(i.short_id, style="dim"), width=12),
    ColumnSpec("created", "CREATED", lambda i: Cell(short_ago(i.created), -timestamp(i.created))),
    ColumnSpec("size", "SIZE", lambda i: Cell(human_size(i.size), i.size)),
)


class ImagesTable(ResourceTable[ImageInfo]):
    """Images in the store, one row per image (tags joined)."""

    kind = "image"
    EMPTY = ("No images. {image.load} loads an archive, {image.pull} pulls; "
             "or: portside image bootstrap busybox")
    COLUMNS = COLUMNS
    DEFAULT_SORT = "created"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run", id="image.run"),
        Binding("d", "remove", "Remove", id="image.remove"),
        Binding("D", "remove(True)", "Force remove", show=False, id="image.force_remove"),
        Binding("t", "tag", "Tag", id="image.tag"),
        Binding("H", "show_tab('history')", "History", show=False, id="image.history"),
        Binding("i", "show_tab('inspect')", "Inspect", show=False, id="image.inspect"),
        Binding("L", "load", "Load", id="image.load"),
        Binding("I", "import", "Import", show=False, id="image.import"),
        Binding("p", "pull", "Pull", show=False, id="image.pull"),
        Binding("P", "prune", "Prune", show=False, id="image.prune"),
    ]

    class ShowTab(Message):
        """Ask the screen to show a detail tab for the current image."""

        def __init__(self, tab: str) -> None:
            super().__init__()
            self.tab = tab

    class RunRequested(Message):
        """Open the run dialog for an image."""

        def __init__(self, image: str) -> None:
            super().__init__()
            self.image = image

    def label_of(self, key: str) -> str:
        info = self.records.get(key)
        if info is not None and info.repo_tags:
            return info.repo_tags[0]
        return key.split(":", 1)[-1][:12]

    # -- actions -------------------------------------------------------------
    def action_run(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.RunRequested(self.label_of(key)))

    def action_show_tab(self, tab: str) -> None:
        self.post_message(self.ShowTab(tab))

    def action_remove(self, force: bool = False) -> None:
        from ..screens.dialogs import ConfirmScreen
        key = self.current_key
        if key is None:
            return
        info = self.records[key]
        name = self.label_of(key)
        more = (f"\nIt has {len(info.repo_tags)} tags; only {name} is removed."
                if len(info.repo_tags) > 1 else "")
        body = f"{name} ({info.short_id}, {human_size(info.size)}){more}"
        if force:
            body += "\nForce: even if containers use it."

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.engine_call(self.app.engine.rmi, name, force=force,  # type: ignore[attr-defined]
                                     done=self._removed, title=f"Removing {name}")

        self.app.push_screen(ConfirmScreen(f"Remove image {name}?", body), answered)

    def _removed(self, lines: list[str]) -> None:
        self.app.notify("\n".join(lines[-3:]) or "removed", title="image removed")
        self.post_message(self.Changed())

    def action_tag(self) -> None:
        from ..screens.dialogs import PromptScreen
        key = self.current_key
        if key is None:
            return
        source = self.label_of(key)

        def answered(target: str | None) -> None:
            if target:
                self.app.engine_call(self.app.engine.tag, key, target,  # type: ignore[attr-defined]
                                     done=lambda _r: self._tagged(target),
                                     title=f"Tagging {source}")

        self.app.push_screen(PromptScreen(f"Tag {source} as", placeholder="name[:tag]",
                                          validate=_valid_ref), answered)

    def _tagged(self, target: str) -> None:
        self.app.notify(target, title="tagged")
        self.post_message(self.Changed())

    def action_load(self) -> None:
        self._ask_path("load", "Load images from", "docker-archive or oci-archive tar, "
                       "or an OCI layout directory")

    def action_import(self) -> None:
        self._ask_path("import", "Import a rootfs tar as an image",
                       "a tar of a root filesystem (plain, gzip or zstd); "
                       "add ' as name:tag' to name it")

    def action_pull(self) -> None:
        from ..screens.dialogs import PromptScreen
        if not hasattr(self.app.engine, "pull"):  # type: ignore[attr-defined]
            self.app.notify("this engine cannot pull", severity="warning")
            return

        def answered(ref: str | None) -> None:
            if ref:
                self.post_message(self.JobRequested("pull", ref, None))

        self.app.push_screen(PromptScreen("Pull image", placeholder="registry/name:tag",
                                          validate=_valid_ref), answered)

    class JobRequested(Message):
        """A long job with progress (load, import, pull) for the screen to run."""

        def __init__(self, job: str, source: str, ref: str | None) -> None:
            super().__init__()
            self.job = job
            self.source = source
            self.ref = ref

    def _ask_path(self, job: str, title: str, help: str) -> None:
        from ..screens.dialogs import PromptScreen

        def answered(value: str | None) -> None:
            if value:
                path, _, ref = value.partition(" as ")
                self.post_message(self.JobRequested(job, str(Path(path.strip()).expanduser()),
                                                    ref.strip() or None))

        self.app.push_screen(PromptScreen(title, placeholder="/path/to/image.tar", help=help,
                                          validate=_existing_path), answered)

    def action_prune(self) -> None:
        from ..screens.dialogs import ConfirmScreen
        dangling = [i for i in self.records.values() if not i.repo_tags]
        body = (f"{len(dangling)} untagged image(s) not used by any container."
                if dangling else "There are no untagged images; nothing may be removed.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.engine_call(self.app.engine.image_prune,  # type: ignore[attr-defined]
                                     done=self._pruned, title="Pruning images")

        self.app.push_screen(ConfirmScreen("Remove untagged images?", body, yes="Prune"),
                             answered)

    def _pruned(self, result: tuple[list[str], int]) -> None:
        removed, freed = result
        self.app.notify(f"{len(removed)} image(s), {human_size(freed)} freed", title="pruned")
        self.post_message(self.Changed())


def _valid_ref(value: str) -> str | None:
    if " " in value:
        return "a reference has no spaces"
    if value != value.strip() or value.endswith(":") or value.startswith(":"):
        return "looks like name[:tag]"
    return None


def _existing_path(value: str) -> str | None:
    path = value.partition(" as ")[0].strip()
    if not Path(path).expanduser().exists():
        return f"no such file or directory: {path}"
    return None


__all__ = ["ImagesTable"]
