"""The Containers list and the lifecycle actions on the marked or current rows."""
from __future__ import annotations

import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ClassVar, Deque

from textual.binding import Binding, BindingType
from textual.message import Message

from engine import ContainerInfo

from .format import BARS, STATUS_ORDER, bar_levels, cpu_top, short_ago, status_text, timestamp
from .resource_table import Cell, ColumnSpec, ResourceTable


def _status(c: ContainerInfo) -> Cell:
    st = c.state
    since = st.started_at if st.status == "running" else st.finished_at
    if st.status == "paused":
        # How long it has been paused, if the engine records when; the
        # start time would read as paused for the whole run.
        since = st.paused_at
    elif st.status == "created":
        since = None
    text, style = status_text(st.status, st.exit_code, since)
    return Cell(text, (STATUS_ORDER.get(st.status, 9), -timestamp(since or c.created)), style)


def _command(c: ContainerInfo) -> Cell:
    return Cell(" ".join(c.command), style="dim")


COLUMNS: tuple[ColumnSpec[ContainerInfo], ...] = (
    ColumnSpec("name", "NAME", lambda c: Cell(c.name, style="bold")),
    ColumnSpec("image", "IMAGE", lambda c: Cell(c.image)),
    ColumnSpec("status", "STATUS", _status),
    # Filled in by the table from its samples (see ContainersTable.set_cpu).
    ColumnSpec("cpu", "CPU", lambda c: Cell("", -1.0)),
    # A narrow table keeps NAME, IMAGE, STATUS, CPU and gives COMMAND the
    # rest: the id and the age are in the detail pane (Inspect) anyway.
    ColumnSpec("created", "CREATED", lambda c: Cell(short_ago(c.created), -timestamp(c.created)),
               hide_below=100),
    ColumnSpec("id", "ID", lambda c: Cell(c.short_id, style="dim"), width=12, hide_below=120),
    ColumnSpec("command", "COMMAND", _command),
)

SPARK_WIDTH = 8        # samples kept per row (the widest sparkline)
NARROW_SPARK = 4       # the sparkline's length in a table narrower than WIDE_SPARK
WIDE_SPARK = 120


def spark(values: Deque[float] | list[float], width: int = SPARK_WIDTH) -> str:
    """A tiny sparkline of the last ``width`` CPU %.

    Its shape only; the number beside it says how much.
    """
    recent = list(values)[-width:]
    levels = bar_levels(recent, len(recent), cpu_top(recent))
    return "".join(BARS[i] for i in levels).rjust(width, " ")


_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_DOING = {"started": "starting…", "stopped": "stopping…", "restarted": "restarting…",
          "killed": "killing…", "paused": "pausing…", "unpaused": "unpausing…",
          "removed": "removing…"}
_INFINITIVE = {"started": "start", "stopped": "stop", "restarted": "restart", "killed": "kill",
               "paused": "pause", "unpaused": "unpause", "removed": "remove"}
BULK_THREADS = 8    # engine calls at once for a bulk action


def valid_name(value: str) -> str | None:
    if not _NAME.fullmatch(value):
        return "letters, digits, _ . - (starting with a letter or digit)"
    return None


class ContainersTable(ResourceTable[ContainerInfo]):
    """Every container (running and stopped); space marks rows for bulk actions."""

    kind = "container"
    EMPTY = "No containers. {container.run} runs one; or: portside run IMAGE COMMAND"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "status"
    MARKABLE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "mark", "Mark", show=False, id="container.mark"),
        Binding("ctrl+a", "mark_all", "Mark all", show=False, id="container.mark_all"),
        Binding("u", "lifecycle('start')", "Start", id="container.start"),
        Binding("s", "lifecycle('stop')", "Stop", id="container.stop"),
        Binding("r", "lifecycle('restart')", "Restart", id="container.restart"),
        Binding("K", "lifecycle('kill')", "Kill", show=False, id="container.kill"),
        Binding("p", "pause", "Pause/unpause", show=False, id="container.pause"),
        Binding("d", "remove(False)", "Remove", id="container.remove"),
        Binding("D", "remove(True)", "Force remove", show=False, id="container.force_remove"),
        Binding("R", "rename", "Rename", show=False, id="container.rename"),
        Binding("e", "exec_shell", "Shell", id="container.exec"),
        Binding("a", "attach", "Attach", show=False, id="container.attach"),
        Binding("n", "run_new", "Run new", show=False, id="container.run"),
        Binding("L", "merge_logs", "Merged logs", show=False, id="container.merged_logs"),
        Binding("P", "prune", "Prune", show=False, id="container.prune"),
    ]

    class MergeLogs(Message):
        """Show the logs of these containers merged by time."""

        def __init__(self, keys: list[str]) -> None:
            super().__init__()
            self.keys = keys

    class RunRequested(Message):
        """Open the run dialog (prefilled from a container's image, if any)."""

        def __init__(self, image: str = "") -> None:
            super().__init__()
            self.image = image

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pending: dict[str, str] = {}     # id -> "stopping…" while an action runs
        self.cpu: dict[str, Deque[float]] = {}  # id -> recent CPU %, newest last
        self.spark_width = SPARK_WIDTH

    def layout_for(self, width: int) -> Any:
        return (super().layout_for(width), NARROW_SPARK if width < WIDE_SPARK else SPARK_WIDTH)

    def _add_columns(self, width: int) -> None:
        super()._add_columns(width)
        self.spark_width = self._layout[1]

    def _column(self, key: str) -> int:
        return self._column_keys().index(key)

    def _row_cells(self, record: ContainerInfo) -> tuple[Cell, ...]:
        cells = list(super()._row_cells(record))
        busy = self.pending.get(record.id)
        if busy is not None:
            i = self._column("status")
            cells[i] = Cell(busy, cells[i].order, "italic yellow")  # keeps its place
        hist = self.cpu.get(record.id)
        if hist and record.status in ("running", "paused"):
            cells[self._column("cpu")] = Cell(f"{spark(hist, self.spark_width)} {hist[-1]:3.0f}%",
                                              (hist[-1], record.id))
        return tuple(cells)

    # -- the CPU column ----------------------------------------------------------
    def visible_running(self) -> list[str]:
        """Running containers on screen: the only ones worth sampling."""
        top = int(self.scroll_y)
        rows = self.ordered_rows[top:top + self.size.height]
        return [r.key.value for r in rows if r.key.value is not None
                and r.key.value in self.records
                and self.records[r.key.value].status in ("running", "paused")]

    def set_cpu(self, samples: dict[str, float]) -> None:
        """New CPU samples: only the sampled rows' CPU cells change."""
        for cid in [k for k in self.cpu if k not in self.records]:
            del self.cpu[cid]
        col = self._column("cpu")
        for cid, pct in samples.items():
            record = self.records.get(cid)
            self.cpu.setdefault(cid, deque(maxlen=SPARK_WIDTH)).append(pct)
            old = self._cells.get(cid)
            if record is None or old is None:
                continue
            cells = self._row_cells(record)
            if not old[col].same(cells[col]):
                self.update_cell(cid, "cpu", cells[col],
                                 update_width=cells[col].cell_len > old[col].cell_len)
                self._cells[cid] = old[:col] + (cells[col],) + old[col + 1:]

    def label_of(self, key: str) -> str:
        c = self.records.get(key)
        return c.name if c is not None else key[:12]

    def haystack(self, c: ContainerInfo) -> str:
        labels = " ".join(f"{k}={v}" for k, v in c.labels.items())
        return f"{c.name} {c.image} {c.status} {c.id[:12]} {' '.join(c.command)} {labels}".lower()

    # -- helpers ---------------------------------------------------------------
    @property
    def engine(self) -> Any:
        return self.app.engine  # type: ignore[attr-defined]

    def _has(self, method: str) -> bool:
        if hasattr(self.engine, method):
            return True
        self.app.notify(f"this engine has no {method}() yet", severity="warning")
        return False

    def _each(self, keys: list[str], verb: str, call: Callable[[str], Any], *,
              failing: str | None = None) -> None:
        """Run ``call`` on each container at once; one summary toast at the end.

        ``verb`` is what success says ("stopped"); ``failing`` what a failure's
        title says could not be done ("stop", "rename to db"; default: from
        ``verb``). Each container gets its own thread: stopping two that
        ignore SIGTERM takes one timeout, not two.
        """
        names = {k: self.label_of(k) for k in keys}
        doing = _DOING.get(verb)
        failing = failing or _INFINITIVE.get(verb, verb)
        engine = self.engine
        if doing:
            self.pending.update({k: doing for k in keys})
            self._apply(set(keys))

        def one(k: str) -> Exception | None:
            try:
                call(k)
                return None
            except Exception as err:  # collected: one bad container must not stop the rest
                return err
            finally:
                close = getattr(engine, "close", None)
                if close is not None:
                    close()           # this pool thread's database connection

        def run_all() -> tuple[list[str], list[tuple[str, Exception]]]:
            if len(keys) == 1:
                results = [one(keys[0])]
            else:
                with ThreadPoolExecutor(max_workers=min(BULK_THREADS, len(keys)),
                                        thread_name_prefix="bulk") as pool:
                    results = list(pool.map(one, keys))
            ok = [names[k] for k, err in zip(keys, results) if err is None]
            failed = [(names[k], err) for k, err in zip(keys, results) if err is not None]
            return ok, failed

        def done(result: tuple[list[str], list[tuple[str, Exception]]]) -> None:
            for k in keys:
                self.pending.pop(k, None)
            self._apply(set(keys))
            ok, failed = result
            if ok:
                self.app.notify(", ".join(ok), title=verb)
            for name, err in failed:
                self.app.report_error(err, f"could not {failing}: {name}")  # type: ignore[attr-defined]
            self.post_message(self.Changed())

        what = names[keys[0]] if len(keys) == 1 else f"{len(keys)} containers"
        self.app.engine_call(run_all, done=done,  # type: ignore[attr-defined]
                             title=f"could not {failing}: {what}")

    # -- actions ---------------------------------------------------------------
    def action_mark(self) -> None:
        self.toggle_mark()

    def action_mark_all(self) -> None:
        self.mark_all()

    _PAST = {"start": "started", "stop": "stopped", "restart": "restarted", "kill": "killed"}

    def action_lifecycle(self, verb: str) -> None:
        keys = self.targets()
        if not keys or not self._has(verb):
            return
        method = getattr(self.engine, verb)
        self._each(keys, self._PAST[verb], method)

    def action_pause(self) -> None:
        keys = self.targets()
        if not keys or not self._has("pause"):
            return
        paused = [k for k in keys if self.records[k].status == "paused"]
        others = [k for k in keys if k not in paused]
        if others:
            self._each(others, "paused", self.engine.pause)
        if paused:
            self._each(paused, "unpaused", self.engine.unpause)

    def action_remove(self, force: bool = False) -> None:
        from ..screens.dialogs import ConfirmScreen
        keys = self.targets()
        if not keys or not self._has("rm"):
            return
        names = [self.label_of(k) for k in keys]
        running = [self.label_of(k) for k in keys
                   if self.records[k].status in ("running", "paused", "restarting")]
        title = (f"Remove container {names[0]}?" if len(keys) == 1
                 else f"Remove {len(keys)} containers?")
        body = ", ".join(names)
        if force and running:
            body += f"\n\nForce: {', '.join(running)} will be killed first."
        elif running:
            body += (f"\n\n{', '.join(running)} still running: removal fails unless "
                     "stopped (D removes by force).")

        def answered(yes: bool | None) -> None:
            if yes:
                self.marked -= set(keys)
                self._each(keys, "removed", lambda k: self.engine.rm(k, force=force))

        self.app.push_screen(ConfirmScreen(title, body, yes="Force remove" if force else "Remove"),
                             answered)

    def action_rename(self) -> None:
        from ..screens.dialogs import PromptScreen
        key = self.current_key
        if key is None or not self._has("rename"):
            return
        old = self.label_of(key)

        def answered(new: str | None) -> None:
            if new and new != old:
                self._each([key], f"renamed to {new}", lambda k: self.engine.rename(k, new),
                           failing=f"rename to {new}")

        self.app.push_screen(PromptScreen(f"Rename {old}", value=old, validate=valid_name),
                             answered)

    def action_exec_shell(self) -> None:
        key = self.current_key
        if key is None:
            return
        c = self.records[key]
        if c.status != "running":
            self.app.notify(f"{c.name} is {c.status}; start it first (u)", severity="warning")
            return
        code = self.app.run_in_terminal(  # type: ignore[attr-defined]
            self.app.portside_argv("exec", "-it", key, "sh"),  # type: ignore[attr-defined]
            shown=["portside", "exec", "-it", c.name, "sh"])
        if code not in (None, 0, 130):
            self.app.notify(f"the shell exited with {code}", severity="warning")

    def action_attach(self) -> None:
        key = self.current_key
        if key is None:
            return
        c = self.records[key]
        if c.status != "running":
            self.app.notify(f"{c.name} is {c.status}; start it first (u)", severity="warning")
            return
        # Detach keys are read from stdin: only a container with stdin open
        # (run -i) has one; otherwise attaching is watching its output.
        note = ("ctrl+p ctrl+q detaches (the container keeps running)" if c.interactive
                else "ctrl+c stops watching (the container keeps running)")
        self.app.run_in_terminal(self.app.portside_argv("attach", key),  # type: ignore[attr-defined]
                                 note=note, shown=["portside", "attach", c.name])

    def action_merge_logs(self) -> None:
        keys = self.targets()
        if len(keys) < 2:
            self.app.notify("mark two or more containers with space first", severity="warning")
            return
        self.post_message(self.MergeLogs(keys))

    def action_run_new(self) -> None:
        c = self.current
        self.post_message(self.RunRequested(c.image if c is not None else ""))

    def action_prune(self) -> None:
        from ..screens.dialogs import ConfirmScreen
        if not self._has("container_prune"):
            return
        stopped = [c.name for c in self.records.values()
                   if c.status in ("exited", "created", "dead")]
        body = (", ".join(stopped[:20]) + (" …" if len(stopped) > 20 else "")
                if stopped else "No stopped containers.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.engine_call(self.engine.container_prune,  # type: ignore[attr-defined]
                                     done=self._pruned, title="Pruning containers")

        self.app.push_screen(ConfirmScreen(f"Remove {len(stopped)} stopped container(s)?",
                                           body, yes="Prune"), answered)

    def _pruned(self, result: Any) -> None:
        removed = result[0] if isinstance(result, tuple) else result
        self.app.notify(f"{len(removed)} container(s) removed", title="pruned")
        self.post_message(self.Changed())
