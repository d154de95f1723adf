#!/usr/bin/env python3
"""Regenerate screenshots/*.svg (+ .png) from a scripted run on real containers.

Run as root (``make screenshots``): it makes a private engine root in a temp
dir, builds the busybox image, starts a few containers that log, drives the
app with Textual's Pilot at a fixed size, saves each screen, converts SVG to
PNG (cairosvg or rsvg-convert, when either is there) and removes everything
it made.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TZ", "UTC")
time.tzset()

from engine import ContainerSpec, Engine, EngineError  # noqa: E402
from tui.app import PortsideApp  # noqa: E402
from tui.config import Config, HighlightRule, builtin_highlights  # noqa: E402

OUT = REPO / "screenshots"
SIZE = (120, 34)

CHATTY = r"""
i=0
while true; do
  i=$((i+1))
  echo "$(date +%T) GET /api/items/$i 200 $((i % 97))ms"
  [ $((i % 6)) = 0 ] && echo "ERROR upstream timeout after 3000ms (request $i)" >&2
  [ $((i % 9)) = 0 ] && echo "WARN slow query: SELECT * FROM items ($((i * 7 % 500))ms)"
  [ $((i % 4)) = 0 ] && printf '\033[36mcache\033[0m hit ratio \033[1m%d%%\033[0m\n' $((60 + i % 40))
  sleep 0.3
done
"""


def containers(engine: Engine) -> dict[str, str]:
    """A small, lively set: a chatty web server, a worker, a failed job, a created one."""
    specs = [
        ContainerSpec(image="busybox", name="web", command=("sh", "-c", CHATTY),
                      env=("PORT=8080", "MODE=production"), labels={"tier": "front"}),
        ContainerSpec(image="busybox", name="worker",
                      command=("sh", "-c", "n=0; while true; do n=$((n+1)); echo batch $n; "
                               "i=0; while [ $i -lt $((20000 + n % 5 * 8000)) ]; do "
                               "i=$((i+1)); done; dd if=/dev/zero of=/tmp/x bs=64k count=16 "
                               "2>/dev/null; sleep 0.4; done")),
        ContainerSpec(image="busybox", name="migrate",
                      command=("sh", "-c", "echo applying 3 migrations; echo 'ERROR: relation "
                               "\"users\" already exists' >&2; exit 1")),
        ContainerSpec(image="busybox", name="cache", command=("sleep", "3600")),
    ]
    ids = {}
    for spec in specs:
        info = engine.run(spec)
        ids[spec.name or info.id] = info.id
    ids["backup"] = engine.create(ContainerSpec(image="busybox", name="backup",
                                                command=("tar", "czf", "/tmp/b.tgz", "/etc"))).id
    engine.pause(ids["cache"])
    return ids


def images(engine: Engine) -> None:
    engine.tag("busybox:latest", "registry.local/tools/busybox:1.36")
    engine.tag("busybox:latest", "shell:debug")
    for ref, size in (("app/api:2.3.1", 40_000), ("app/worker:2.3.1", 90_000), (None, 5_000)):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = os.urandom(size)
            ti = tarfile.TarInfo("srv/app.bin")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        buf.seek(0)
        engine.import_image(buf, ref, changes=['CMD ["/srv/app.bin"]'],
                            message="release build" if ref else "")
    if hasattr(engine, "volume_create"):
        for name in ("pgdata", "uploads"):
            engine.volume_create(name)


def wait_for_exit_hooks(root: Path, timeout: float = 15.0) -> None:
    """Let the monitors' exit commands (``container cleanup``) finish before the
    root goes; one that runs after would create the root again."""
    import psutil
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = False
        for proc in psutil.process_iter(["cmdline"]):
            if str(root) in " ".join(proc.info["cmdline"] or ()):
                busy = True
                break
        if not busy:
            return
        time.sleep(0.2)


def _has_converter() -> bool:
    try:
        import cairosvg  # type: ignore[import-not-found]  # noqa: F401
        return True
    except (ImportError, OSError):           # not installed, or no libcairo
        return shutil.which("rsvg-convert") is not None


def convert(svg: Path) -> Path | None:
    """PNG beside the SVG, or None when no converter is installed."""
    png = svg.with_suffix(".png")
    # Converters drop the no-break spaces Textual writes at the edges of text
    # runs; plain spaces with xml:space="preserve" keep the columns.
    text = svg.read_text(encoding="utf-8").replace("&#160;", " ")
    text = text.replace("<svg ", '<svg xml:space="preserve" ', 1)
    try:
        import cairosvg  # type: ignore[import-not-found]
        cairosvg.svg2png(bytestring=text.encode(), write_to=str(png))
        return png
    except (ImportError, OSError):
        pass
    tool = shutil.which("rsvg-convert")
    if tool:
        subprocess.run([tool, "-o", str(png)], input=text.encode(), check=True)
        return png
    return None


async def shoot(engine: Engine, ids: dict[str, str], out: Path) -> list[Path]:
    config = Config(highlights=(HighlightRule(__import__("re").compile(r"\bGET\b"), "bold blue"),)
                    + builtin_highlights())
    app = PortsideApp(engine, config, watch_interval=0.2)
    saved: list[Path] = []

    def save(name: str) -> None:
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
        saved.append(path)
        print(f"  {path}")

    async def wait(cond: Callable[[], bool], timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise SystemExit(f"screenshots: timed out waiting on the app ({cond})")
            await pilot.pause(0.1)

    async with app.run_test(size=SIZE) as pilot:
        from tui.widgets.containers_table import ContainersTable
        from tui.widgets.detail import DetailPane
        from tui.widgets.images_table import ImagesTable
        from tui.widgets.log_pane import LogPane
        from tui.widgets.stats_view import StatsView

        table = app.query_one(ContainersTable)
        await wait(lambda: all(i in table.records for i in ids.values()))
        table.focus()
        table.select_key(ids["web"])
        pane = app.query_one(LogPane)
        await wait(lambda: pane.key == ids["web"] and pane.view.rows > 25)
        await wait(lambda: len(table.cpu.get(ids["worker"], ())) >= 6, 30)
        save("containers")

        # logs, zoomed, with a search
        await pilot.press("z")
        pane.view.focus()
        await pilot.press("t", "slash", *"timeout", "enter")
        await wait(lambda: pane.view.current_match is not None)
        await pilot.pause(0.3)
        save("logs-search")
        await pilot.press("escape", "escape")

        # stats of the busy worker
        table.focus()
        table.select_key(ids["worker"])
        app.query_one(DetailPane).select_tab("stats")
        stats = app.query_one(StatsView)
        await wait(lambda: len(stats._hist.get("cpu", ())) >= 20, 40)
        save("stats")
        app.query_one(DetailPane).select_tab("logs")

        # images with history
        await pilot.press("2")
        images_table = app.query_one(ImagesTable)
        await wait(lambda: images_table.row_count > 0)
        images_table.select_key(engine.image("busybox:latest").id)
        await pilot.press("H")
        await pilot.pause(0.5)
        save("images")

        # the run dialog, filled in
        await pilot.press("1")
        table.focus()
        await pilot.press("n")
        dialog = app.screen
        for fid, value in (("image", "busybox:latest"), ("name", "api"),
                           ("command", "sh -c 'httpd -f -p 8080'"),
                           ("env", "MODE=staging LOG_LEVEL=debug"),
                           ("volumes", "uploads:/srv/uploads"), ("memory", "128m"),
                           ("cpus", "0.5")):
            dialog.query_one(f"#f-{fid}").value = value  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        save("run-dialog")
        await pilot.press("escape")

        # help
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        save("help")
        await pilot.press("escape")
    return saved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--out", type=Path, default=OUT, help="where to write (default screenshots/)")
    p.add_argument("--svg-only", action="store_true", help="do not need a PNG converter")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        sys.stderr.write("screenshots: run as root (it starts real containers)\n")
        return 1
    if not a.svg_only and not _has_converter():
        sys.stderr.write("screenshots: no PNG converter: apt-get install librsvg2-bin "
                         "(rsvg-convert), or pass --svg-only\n")
        return 1
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="portside-shots-"))
    engine = Engine(tmp / "root")
    try:
        print("building busybox and starting containers...")
        engine.bootstrap_busybox()
        images(engine)
        ids = containers(engine)
        time.sleep(2)
        print("driving the app:")
        saved = asyncio.run(shoot(engine, ids, out))
        if a.svg_only:
            return 0
        pngs = [p for p in (convert(s) for s in saved) if p is not None]
        print(f"converted {len(pngs)} to PNG")
        return 0 if len(pngs) == len(saved) else 1
    finally:
        for c in engine.containers(all=True):
            try:
                engine.rm(c.id, force=True)
            except EngineError:
                pass
        wait_for_exit_hooks(tmp)
        try:
            engine.system_reset()      # its bridge stays up until then (as docker0)
        except EngineError as err:
            print(f"system reset of the temp root failed: {err}", file=sys.stderr)
            engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
