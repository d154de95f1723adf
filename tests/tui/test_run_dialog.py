"""The run dialog: inline checks and the equivalent command line."""
from __future__ import annotations

from engine import Engine, Mount
from tests.tui.fixtures import run
from tui.app import PortsideApp
from tui.screens.run_dialog import RunDialog


def test_fields_build_spec_and_command_line(images_engine: Engine) -> None:
    async def go() -> None:
        app = PortsideApp(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            dialog = RunDialog(image="hello:1", images=["hello:1"], networks=["none", "host", "br"])
            await app.push_screen(dialog)
            await pilot.pause()

            def put(fid: str, value: str) -> None:
                dialog.query_one(f"#f-{fid}").value = value  # type: ignore[attr-defined]

            put("name", "web")
            put("env", 'A=1 B="two words"')
            put("volumes", "data:/data /srv:/srv:ro")
            put("ports", "8080:80")
            put("memory", "64m")
            put("cpus", "0.5")
            put("command", "sh -c 'echo hi'")
            await pilot.pause()
            spec, argv, problems = dialog.build()
            assert problems == {}
            assert argv == ["portside", "run", "-d", "--name", "web", "-e", "A=1", "-e",
                            "B=two words", "-v", "data:/data", "-v", "/srv:/srv:ro", "-p",
                            "8080:80", "--network", "br", "--memory", "64m", "--cpus", "0.5",
                            "hello:1", "sh", "-c", "echo hi"]
            assert spec.env == ("A=1", "B=two words") and spec.network == "br"
            assert spec.mounts == (Mount("volume", "data", "/data"),
                                   Mount("bind", "/srv", "/srv", read_only=True))
            assert spec.memory == 64 * 1024 * 1024 and spec.command == ("sh", "-c", "echo hi")
            assert "$ portside run -d --name web" in str(dialog.query_one("#run-cli").render())

            put("name", "-bad")
            put("ports", "80:abc")
            put("volumes", "x:relative")
            put("cpus", "zero")
            dialog.query_one("#f-network").value = "none"  # type: ignore[attr-defined]
            await pilot.pause()
            _spec, _argv, problems = dialog.build()
            assert set(problems) == {"name", "ports", "volumes", "cpus"}
            assert dialog.query_one("#run").disabled  # type: ignore[attr-defined]
            await pilot.press("ctrl+r")
            assert app.screen is dialog               # not submitted while invalid
            await pilot.press("escape")
            assert app.screen is not dialog
    run(go)


def test_the_default_bridge_is_preselected_and_goes_unsaid(images_engine: Engine) -> None:
    async def go() -> None:
        app = PortsideApp(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            dialog = RunDialog(image="hello:1", images=["hello:1"],
                               networks=["none", "host", "alpha", "portside"])
            await app.push_screen(dialog)
            await pilot.pause()
            spec, argv, problems = dialog.build()
            assert problems == {} and spec.network == "portside"
            assert argv == ["portside", "run", "-d", "hello:1"]    # as `portside run` does
            dialog.query_one("#f-network").value = "none"  # type: ignore[attr-defined]
            await pilot.pause()
            spec, argv, _ = dialog.build()
            # none is no longer what run does by itself: the line must say it
            assert spec.network == "none" and argv == ["portside", "run", "-d", "--network",
                                                       "none", "hello:1"]
    run(go)
