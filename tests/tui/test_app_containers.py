"""The app driving real busybox containers (root, runc, conmon): every container action.

One engine on a private root for the module with the built-in busybox
image; every container a test makes is force-removed afterwards.
"""
from __future__ import annotations

import secrets
from typing import Any, Callable, Iterator

import pytest

from engine import ContainerSpec, Engine
from tests.conftest import busybox_engine, container_maker, remove_containers
from tests.tui import fixtures
from tests.tui.fixtures import run, wait_for
from tui.app import PortsideApp
from tui.config import builtin_highlights
from tui.screens.dialogs import ConfirmScreen, PromptScreen
from tui.screens.run_dialog import RunDialog
from tui.widgets.containers_table import ContainersTable
from tui.widgets.detail import DetailPane
from tui.widgets.detail_tabs import ProcessesTab
from tui.widgets.log_pane import LogPane
from tui.widgets.stats_view import StatsView

pytestmark = pytest.mark.integration

SLEEPER = ("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = busybox_engine(tmp_path_factory.mktemp("tui") / "root")
    yield e
    remove_containers(e)
    e.close()


@pytest.fixture
def make(engine: Engine) -> Iterator[Callable[..., str]]:
    # The default exits on SIGTERM at once, so stop does not wait out its timeout.
    yield from container_maker(engine, "tui-", SLEEPER)
    remove_containers(engine)           # and what the app's own actions made


def make_app(engine: Engine) -> PortsideApp:
    return fixtures.make_app(engine, highlights=builtin_highlights())  # type: ignore[no-any-return]


def status(engine: Engine, cid: str) -> str:
    return engine.container(cid).status


async def containers(app: PortsideApp, pilot: Any, *cids: str) -> ContainersTable:
    table = app.query_one(ContainersTable)
    await wait_for(pilot, lambda: all(c in table.records for c in cids), timeout=10)
    table.focus()
    return table


async def detail_of(app: PortsideApp, pilot: Any, cid: str) -> DetailPane:
    """Select ``cid`` in the list and wait until the detail pane shows it."""
    table = await containers(app, pilot, cid)
    table.select_key(cid)
    detail = app.query_one(DetailPane)
    await wait_for(pilot, lambda: detail.key == cid)
    return detail


def test_lifecycle_keys(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await containers(app, pilot, cid)
            table.select_key(cid)
            await pilot.press("p")                               # pause
            await wait_for(pilot, lambda: status(engine, cid) == "paused", 15)
            await wait_for(pilot, lambda: "paused" in table.get_cell(cid, "status").plain)
            await pilot.press("p")                               # unpause
            await wait_for(pilot, lambda: status(engine, cid) == "running", 15)
            await pilot.press("K")                               # kill
            await wait_for(pilot, lambda: status(engine, cid) == "exited", 15)
            await wait_for(pilot, lambda: "exited(137)" in table.get_cell(cid, "status").plain)
            await pilot.press("u")                               # start a stopped one
            await wait_for(pilot, lambda: status(engine, cid) == "running", 15)
            await pilot.press("r")                               # restart
            await wait_for(pilot, lambda: engine.container(cid).state.restart_count >= 0
                           and status(engine, cid) == "running", 20)
            await pilot.press("s")                               # stop (sleep dies on TERM)
            await wait_for(pilot, lambda: status(engine, cid) == "exited", 20)
            await wait_for(pilot, lambda: not table.pending)     # the stop call returned
            await pilot.press("R")                               # rename
            assert isinstance(app.screen, PromptScreen)
            app.screen.query_one("Input").value = "renamed-" + cid[:6]  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(pilot, lambda: engine.container(cid).name == "renamed-" + cid[:6], 10)
            await wait_for(pilot, lambda: table.get_cell(cid, "name").plain.startswith("renamed-"))
            await pilot.press("d")                               # remove asks first
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: cid not in table.records, 15)
            assert all(c.id != cid for c in engine.containers(all=True))
    run(go)


def test_bulk_stop_and_force_remove(engine: Engine, make: Callable[..., str]) -> None:
    a, b, c = make(), make(), make()

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await containers(app, pilot, a, b, c)
            table.select_key(a)
            await pilot.press("space")
            table.select_key(b)
            await pilot.press("space")
            assert set(table.targets()) == {a, b}
            await pilot.press("s")
            await wait_for(pilot, lambda: status(engine, a) == status(engine, b) == "exited", 30)
            assert status(engine, c) == "running"
            await pilot.press("escape")                          # clears the marks
            assert not table.marked
            table.select_key(c)
            await pilot.press("D")                               # force remove, running
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: c not in table.records, 20)
            await pilot.press("P")                               # prune the stopped two
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: a not in table.records and b not in table.records, 20)
    run(go)


def test_logs_stats_processes_of_a_running_container(engine: Engine,
                                                      make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; "
               "echo ERROR $i >&2; sleep 0.2; done")

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await containers(app, pilot, cid)
            table.select_key(cid)
            pane = app.query_one(LogPane)
            await wait_for(pilot, lambda: pane.key == cid and pane.view.rows >= 4, 10)
            rows = pane.view.rows
            await wait_for(pilot, lambda: pane.view.rows > rows + 4, 10)   # follows
            assert pane.view.following
            detail = app.query_one(DetailPane)
            detail.select_tab("stats")
            stats = app.query_one(StatsView)
            await wait_for(pilot, lambda: stats._prev is not None, 10)
            assert stats._prev.pids >= 1
            detail.select_tab("processes")
            procs = app.query_one(ProcessesTab)
            await wait_for(pilot, lambda: procs.row_count >= 2, 10)
            commands = " ".join(str(procs.get_row_at(i)[-1]) for i in range(procs.row_count))
            assert "sh -c" in commands
    run(go)


def test_run_dialog_runs_a_container(engine: Engine, make: Callable[..., str]) -> None:
    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await containers(app, pilot)
            await pilot.press("n")
            assert isinstance(app.screen, RunDialog)
            dialog = app.screen
            dialog.query_one("#f-image").value = "busybox"      # type: ignore[attr-defined]
            dialog.query_one("#f-name").value = "from-dialog"   # type: ignore[attr-defined]
            dialog.query_one("#f-command").value = "sh -c 'echo $FOO; sleep 60'"  # type: ignore[attr-defined]
            dialog.query_one("#f-env").value = "FOO=bar"        # type: ignore[attr-defined]
            dialog.query_one("#f-network").value = "none"       # type: ignore[attr-defined]
            await pilot.pause()
            cli = str(dialog.query_one("#run-cli").render())
            assert "portside run -d --name from-dialog -e FOO=bar --network none busybox sh -c" \
                in cli
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: any(c.name == "from-dialog"
                                              for c in table.records.values()), 20)
            info = engine.container("from-dialog")
            assert info.status == "running" and "FOO=bar" in info.env
    run(go)


def test_exec_hands_the_terminal_to_portside_exec(engine: Engine,
                                                  make: Callable[..., str]) -> None:
    cid = make()

    async def go() -> None:
        app = make_app(engine)
        seen: list[list[str]] = []
        shown: list[list[str] | None] = []

        def fake(argv: list[str], note: str = "", shown_as: list[str] | None = None) -> int:
            seen.append(argv)
            shown.append(shown_as)
            return 0

        app.run_in_terminal = lambda argv, note="", shown=None: fake(argv, note, shown)  # type: ignore
        async with app.run_test(size=(80, 24)) as pilot:
            table = await containers(app, pilot, cid)
            table.select_key(cid)
            await pilot.press("e")
            assert seen and seen[0][-4:] == ["exec", "-it", cid, "sh"]
            assert seen[0][seen[0].index("--root") + 1] == str(engine.paths.root)
            name = engine.container(cid).name
            assert shown[0] == ["portside", "exec", "-it", name, "sh"]    # what users type
            await pilot.press("a")                                     # attach: the same way
            assert seen[1][-2:] == ["attach", cid] and shown[1] == ["portside", "attach", name]
    run(go)


def test_changes_from_another_process_show_within_a_second(engine: Engine,
                                                           make: Callable[..., str]) -> None:
    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await containers(app, pilot)
            other = Engine(engine.paths.root, engine.paths.run)   # a second user of the root
            cid = make()
            await wait_for(pilot, lambda: cid in table.records, 1.5)
            other.stop(cid, timeout=1)
            await wait_for(pilot, lambda: "exited" in table.get_cell(cid, "status").plain, 1.5)
            other.close()
    run(go)


def test_network_create_and_remove(engine: Engine) -> None:
    from tui.widgets.networks_table import NetworksTable
    name = f"tuinet{secrets.token_hex(2)}"

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("4")
            table = app.query_one(NetworksTable)
            await pilot.press("c")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*name, "enter")
            await wait_for(pilot, lambda: any(n.name == name for n in table.records.values()),
                           15)
            key = next(k for k, n in table.records.items() if n.name == name)
            table.select_key(key)
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: key not in table.records, 15)
            assert all(n.name != name for n in engine.networks())
    run(go)


def test_changes_tab_reads_again_when_shown_again_and_tabs_cycle(
        engine: Engine, make: Callable[..., str]) -> None:
    from tui.widgets.detail_tabs import ChangesTab
    cid = make()

    def paths(tab: ChangesTab) -> set[str]:
        return {str(tab.get_row_at(i)[1]) for i in range(tab.row_count)}

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            detail = await detail_of(app, pilot, cid)
            tabs = detail.tabs()
            assert tabs is not None and tabs.active == "container-logs"
            for want in ("stats", "inspect", "processes", "env", "changes"):   # ] cycles
                await pilot.press("right_square_bracket")
                await wait_for(pilot, lambda: tabs.active == f"container-{want}")
            changes = app.query_one(ChangesTab)
            await wait_for(pilot, lambda: changes.key == cid and changes.row_count >= 0)
            await pilot.pause(0.3)
            assert "/tui-marker" not in paths(changes)
            engine.exec_run(cid, ["touch", "/tui-marker"])
            await pilot.press("left_square_bracket")           # away, then back
            await wait_for(pilot, lambda: tabs.active == "container-env")
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: "/tui-marker" in paths(changes), 10)
            await pilot.press("right_square_bracket")          # wraps round to Logs
            await wait_for(pilot, lambda: tabs.active == "container-logs")
            # z zooms the detail pane (the list goes) and back
            main = app.main
            lists = app.query_one("#lists")
            assert lists.region.height > 0
            await pilot.press("z")
            await pilot.pause()
            assert main.has_class("-zoom") and lists.region.height == 0
            assert detail.has_focus_within
            await pilot.press("z")
            assert not main.has_class("-zoom") and app.query_one(ContainersTable).has_focus
    run(go)


def test_merged_logs_via_keys(engine: Engine, make: Callable[..., str]) -> None:
    a = make("sh", "-c", "while true; do echo from-a; sleep 0.3; done")
    b = make("sh", "-c", "while true; do echo from-b; sleep 0.3; done")

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await containers(app, pilot, a, b)
            await pilot.press("L")                              # nothing marked: says so
            await wait_for(pilot, lambda: any("mark two" in n.message
                                              for n in app._notifications))
            for key in (a, b):
                table.select_key(key)
                await pilot.press("space")
            assert table.marked == {a, b}
            await pilot.press("L")
            pane = app.query_one(LogPane)
            await wait_for(pilot, lambda: pane.merged is not None)
            await wait_for(pilot, lambda: pane.merged is not None and {
                line.text for line in pane.merged.iter_rows()} >= {"from-a", "from-b"}, 10)
            assert app.main.has_class("-zoom")
    run(go)


def test_stats_say_the_cpu_limit_of_a_limited_container(engine: Engine) -> None:
    spec = ContainerSpec(image="busybox", command=SLEEPER, name=f"tui-{secrets.token_hex(3)}",
                         cpus=0.5)
    cid = engine.run(spec).id

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            detail = await detail_of(app, pilot, cid)
            detail.select_tab("stats")
            stats = app.query_one(StatsView)
            cpu = stats.query_one("#m-cpu")
            await wait_for(pilot, lambda: stats._prev is not None, 10)
            assert "of 50% (limit)" in _metric_text(cpu), _metric_text(cpu)
    try:
        run(go)
    finally:
        engine.rm(cid, force=True)


def _metric_text(metric: Any) -> str:
    return str(metric.query_one(".metric-value").render())


def test_network_prune_removes_unused_networks(engine: Engine) -> None:
    from tui.widgets.networks_table import NetworksTable
    name = f"tuinet{secrets.token_hex(2)}"
    engine.network_create(name)

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("4")
            table = app.query_one(NetworksTable)
            await wait_for(pilot, lambda: any(n.name == name for n in table.records.values()),
                           15)
            await pilot.press("P")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: all(n.name != name for n in table.records.values()),
                           15)
            assert all(n.name != name for n in engine.networks())
            assert any("pruned" in n.message for n in app._notifications)
    try:
        run(go)
    finally:
        if any(n.name == name for n in engine.networks()):
            engine.network_rm(name)


def test_the_header_counts_paused_containers_apart(engine: Engine, make: Callable[..., str]) -> None:
    from tui.widgets.host_bar import HostBar
    cid = make()

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await containers(app, pilot, cid)
            engine.pause(cid)                    # by another user of the root, as it were
            bar = app.query_one(HostBar)
            await wait_for(pilot, lambda: "1 paused" in str(bar.render()), 10)
            engine.unpause(cid)
            await wait_for(pilot, lambda: "paused" not in str(bar.render()), 10)
    run(go)
