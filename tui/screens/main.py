"""The main screen: header, list pane, detail pane, jobs, footer.

It coordinates its children: lists tell it what is selected (messages up),
it tells the detail pane what to show (attributes down), and it runs the
watcher thread that keeps every list current.
"""
from __future__ import annotations

import threading
from typing import Any, ClassVar

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import get_current_worker

from engine import EngineError

from ..widgets.containers_table import ContainersTable
from ..widgets.detail import DetailPane
from ..widgets.events_table import EventsTable
from ..widgets.host_bar import HostBar
from ..widgets.images_table import ImagesTable
from ..widgets.jobs import Jobs
from ..widgets.lists import VIEWS, ListPane
from ..widgets.resource_table import ResourceTable
from .watch import LISTERS, EngineWatch

class ListsChanged(Message):
    """The watcher saw lists change (name -> the new records)."""

    def __init__(self, changed: dict[str, list[Any]]) -> None:
        super().__init__()
        self.changed = changed


WIDE = 150          # columns from which list and detail sit side by side
TIME_REFRESH = 30.0  # seconds between redraws of "5m ago" style cells
CPU_EVERY = 3.0      # seconds between CPU samples of the visible running rows


class MainScreen(Screen[None]):
    """Lists on top (or left), details below (or right)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "view('containers')", "Containers", show=False, id="view.containers"),
        Binding("2", "view('images')", "Images", show=False, id="view.images"),
        Binding("3", "view('volumes')", "Volumes", show=False, id="view.volumes"),
        Binding("4", "view('networks')", "Networks", show=False, id="view.networks"),
        Binding("5", "view('events')", "Events", show=False, id="view.events"),
        # Esc then a digit typed within Textual's escape delay (0.1 s) arrives
        # as one key: alt+digit, which Textual names after the character a
        # Mac's option+digit types (esc 1 -> "¡", inverted_exclamation_mark).
        # They mean the view: without these, the esc and the digit were both lost.
        Binding("alt+1,inverted_exclamation_mark", "view('containers')", "Containers",
                show=False, id="view.containers_alt"),
        Binding("alt+2,trade_mark_sign", "view('images')", "Images",
                show=False, id="view.images_alt"),
        Binding("alt+3,pound_sign", "view('volumes')", "Volumes",
                show=False, id="view.volumes_alt"),
        Binding("alt+4,cent_sign", "view('networks')", "Networks",
                show=False, id="view.networks_alt"),
        Binding("alt+5,infinity", "view('events')", "Events",
                show=False, id="view.events_alt"),
        Binding("tab", "cycle_view(1)", "Next view", show=False, id="view.next"),
        Binding("shift+tab", "cycle_view(-1)", "Prev view", show=False, id="view.prev"),
        Binding("right_square_bracket", "detail_tab(1)", "Next tab", show=False,
                id="detail.next_tab"),
        Binding("left_square_bracket", "detail_tab(-1)", "Prev tab", show=False,
                id="detail.prev_tab"),
        Binding("z", "zoom", "Zoom", show=False, id="main.zoom"),
        Binding("escape", "back", "Back", show=False, id="main.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._wake = threading.Event()
        self._force = threading.Event()
        self._stop = threading.Event()
        self._sampler: Any = None
        self._cpu_busy = False
        self._last_error = ""

    def compose(self) -> ComposeResult:
        yield HostBar(id="hostbar")
        with Horizontal(id="body"):
            available = {v for v in LISTERS if hasattr(self.engine, LISTERS[v][0])}
            if hasattr(self.engine, "follow_events"):
                available.add("events")
            yield ListPane(available, id="lists")
            yield DetailPane(id="detail")
        yield Jobs(id="jobs")
        yield Footer(compact=True)

    @property
    def engine(self) -> Any:
        return self.app.engine  # type: ignore[attr-defined]

    @property
    def lists(self) -> ListPane:
        return self.query_one(ListPane)

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    def on_mount(self) -> None:
        bar = self.query_one(HostBar)
        bar.root = str(self.engine.paths.root)
        app: Any = self.app
        if hasattr(self.engine, "info"):
            app.engine_call(self.engine.info, done=bar.set_info, title="Reading host facts")
        self._watch = EngineWatch(self.engine)
        if self._watch.has_events:
            app.engine_call(self._watch.follow, self._stop, self._wake, group="watch-events",
                            title="Following engine events")
        app.engine_call(self._watch_loop, group="watch", title="Watching the engine")
        self.set_interval(TIME_REFRESH, self._refresh_times)
        if hasattr(self.engine, "stats_sampler"):
            self.set_interval(CPU_EVERY, self._sample_cpu)
        self.lists.show_view("containers")

    def on_screen_suspend(self) -> None:
        # A dialog is up: its keys apply, not ours; a dimmed footer of ours
        # under it would list keys that do nothing now.
        self.query_one(Footer).display = False

    def on_screen_resume(self) -> None:
        self.query_one(Footer).display = True

    def on_unmount(self) -> None:
        self._stop.set()
        self._wake.set()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE, "-wide")

    # -- watching --------------------------------------------------------------------------
    def _watch_loop(self) -> None:
        """Runs in a thread until the screen goes: poll, post what changed, wait."""
        worker = get_current_worker()
        watch = self._watch
        gap = self.app.watch_interval  # type: ignore[attr-defined]
        # With events, wake on them (and re-list everything now and then);
        # without, re-list on a timer.
        timeout = watch.full_every if watch.has_events else max(gap, 1.0)
        while not worker.is_cancelled and not self._stop.is_set():
            try:
                changed = watch.poll(force=self._force.is_set())
                self._force.clear()
                self._last_error = ""
            except EngineError as err:
                changed = {}
                if str(err) != self._last_error:     # say it once, not every poll
                    self._last_error = str(err)
                    self.app.call_from_thread(self.app.report_error, err,  # type: ignore[attr-defined]
                                              "Refreshing")
            if changed:
                self.post_message(ListsChanged(changed))
            self._wake.wait(timeout)
            self._wake.clear()
            # Events come in bursts (create, start, ...): gather them.
            self._stop.wait(min(gap, 0.1))

    def poll_now(self) -> None:
        self._force.set()
        self._wake.set()

    def on_lists_changed(self, event: ListsChanged) -> None:
        lists = self.lists
        bar = self.query_one(HostBar)
        for name, records in event.changed.items():
            table = lists.table(name)
            if isinstance(table, EventsTable):
                table.extend(records)
            elif table is not None:
                table.sync(records)
            if name == "containers":
                running = sum(1 for c in records if c.status in ("running", "restarting"))
                paused = sum(1 for c in records if c.status == "paused")
                bar.set_counts(running=running, paused=paused,
                               stopped=len(records) - running - paused)
            elif name in ("images", "volumes"):
                bar.set_counts(**{name: len(records)})
        self._refresh_detail()

    def _refresh_detail(self) -> None:
        detail = self.detail
        table = self.lists.table()
        if table is None or detail.kind not in (None, table.kind):
            return
        if detail.key != table.current_key:     # rows went away under the cursor
            key = table.current_key
            detail.show(table.kind, key, table.records.get(key) if key else None)
            return
        if detail.key is None:
            return
        record = table.records.get(detail.key)
        if record is not None and record != detail.record:
            detail.record_changed(record)

    def _sample_cpu(self) -> None:
        """Sample CPU of the running containers on screen (nothing when hidden)."""
        table = self.lists.table("containers")
        if not isinstance(table, ContainersTable) or self.lists.view != "containers" \
                or self.has_class("-zoom") or self._cpu_busy or self.app.screen is not self:
            return
        ids = table.visible_running()
        if not ids:
            return
        self._cpu_busy = True
        if self._sampler is None:
            self._sampler = self.engine.stats_sampler()
        sampler = self._sampler

        def sample() -> dict[str, float]:
            try:
                return {s.id: s.cpu_percent for s in sampler.sample(ids)}
            except EngineError:        # one went away meanwhile: next time
                return {}
            finally:
                self._cpu_busy = False

        self.app.engine_call(sample, done=table.set_cpu,  # type: ignore[attr-defined]
                             group="cpu", title="Sampling CPU")

    def _refresh_times(self) -> None:
        table = self.lists.table()
        if table is not None:
            table.refresh_rows()

    # -- list -> detail -----------------------------------------------------------------------
    def on_resource_table_current_changed(self, event: ResourceTable.CurrentChanged) -> None:
        table = event.table
        if table is not self.lists.table():
            return
        self.detail.show(table.kind, event.key, table.records.get(event.key) if event.key else None)

    def on_resource_table_opened(self, event: ResourceTable.Opened) -> None:
        self.detail.focus_view()

    def on_resource_table_changed(self, event: ResourceTable.Changed) -> None:
        self.poll_now()

    def on_containers_table_merge_logs(self, event: ContainersTable.MergeLogs) -> None:
        from ..widgets.log_pane import LogPane, log_path_of
        table = self.lists.table("containers")
        assert table is not None
        logs = [(k, table.label_of(k), log_path_of(self.app, k)) for k in event.keys]
        self.detail.select_tab("logs")
        if not self.has_class("-zoom"):
            self.action_zoom()
        pane = self.detail.query_one(LogPane)
        pane.open_merged(logs)
        self.call_after_refresh(self.detail.focus_view)

    def on_images_table_show_tab(self, event: ImagesTable.ShowTab) -> None:
        self.detail.select_tab(event.tab)
        self.call_after_refresh(self.detail.focus_view)

    # -- run and jobs ------------------------------------------------------------------------
    @on(ImagesTable.RunRequested)
    @on(ContainersTable.RunRequested)
    def _run_requested(self, event: Any) -> None:
        self.open_run_dialog(event.image)

    def open_run_dialog(self, image: str = "") -> None:
        from .run_dialog import RunDialog
        if not hasattr(self.engine, "run"):
            self.app.notify("this engine cannot run containers yet", severity="warning")
            return
        images = self.lists.table("images")
        names = sorted(t for i in (images.records.values() if images else ()) for t in i.repo_tags)
        networks = self.lists.table("networks")
        nets = ["none", "host"] + sorted(
            getattr(n, "name", "") for n in (networks.records.values() if networks else ()))

        def ran(result: Any) -> None:
            if result is None:
                return
            spec, detach = result
            self.app.engine_call(self.engine.run, spec, done=self._started,  # type: ignore[attr-defined]
                                 title=f"Running {spec.image}")

        self.app.push_screen(RunDialog(image=image, images=names, networks=nets), ran)

    def _started(self, result: Any) -> None:
        info = result[0] if isinstance(result, tuple) else result
        name = getattr(info, "name", None) or str(info)[:12]
        self.app.notify(name, title="container started")
        self.poll_now()
        self.lists.show_view("containers")
        cid = getattr(info, "id", None)
        table = self.lists.table("containers")
        if cid and table is not None:
            self.set_timer(0.6, lambda: table.select_key(cid))

    @on(ImagesTable.JobRequested)
    def _job(self, event: ImagesTable.JobRequested) -> None:
        jobs = self.query_one(Jobs)
        verb = {"load": "Loading", "import": "Importing", "pull": "Pulling"}[event.job]
        job = jobs.start(f"{verb} {event.source}")
        report = jobs.reporter(job)
        engine = self.engine

        def run() -> Any:
            if event.job == "load":
                return engine.load(event.source, progress=report)
            if event.job == "import":
                return engine.import_image(event.source, event.ref, progress=report)
            return engine.pull(event.source, progress=report)

        def done(result: Any) -> None:
            infos = result if isinstance(result, list) else [result]
            names = ", ".join((i.repo_tags[0] if i.repo_tags else i.short_id) for i in infos)
            self.app.notify(names or "nothing", title=f"{event.job}ed".replace("ee", "e"))
            self.poll_now()

        worker = self.app.engine_call(run, done=done,  # type: ignore[attr-defined]
                                      title=f"{verb} {event.source}")
        self._finish_when_done(worker, job)

    def _finish_when_done(self, worker: Any, job: Any) -> None:
        def check() -> None:
            if worker.is_finished:
                self.query_one(Jobs).finish(job)
                timer.stop()
        timer = self.set_interval(0.2, check)

    # -- keys ---------------------------------------------------------------------------------
    def action_view(self, view: str) -> None:
        self.lists.show_view(view)

    def action_cycle_view(self, step: int) -> None:
        names = [v for v, _ in VIEWS]
        i = names.index(self.lists.view)
        self.lists.show_view(names[(i + step) % len(names)])

    def action_detail_tab(self, step: int) -> None:
        """``]``/``[``: the detail pane's next/previous tab, from the list or the pane."""
        self.detail.action_tab(step)

    def action_zoom(self) -> None:
        self.toggle_class("-zoom")
        if self.has_class("-zoom"):
            self.detail.focus_view()
        else:
            table = self.lists.table()
            if table is not None:
                table.focus()

    def action_back(self) -> None:
        if self.has_class("-zoom"):
            self.action_zoom()
            return
        if self.detail.has_focus_within:
            table = self.lists.table()
            if table is not None:
                table.focus()
                return
        if self.lists.clear_filter():
            return
        table = self.lists.table()
        if table is not None and table.clear_marks():
            return
        raise SkipAction()

