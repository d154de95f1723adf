"""CLI verbs for resources: stats, events, pause/unpause, update, system df|prune|events."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine import Engine
from engine.records import ContainerStats, Event
from tests.imagefactory import oci_image, oci_layout
from tui.cli import build_parser, main
from tui.cli import stats as stats_cli


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    rc = main([f"--root={root}", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    e = Engine(r)
    lay = tmp_path / "oci"
    oci_layout(lay, [oci_image(lay, [{"bin/x": b"x" * 4000}])], "one")
    img = e.load(lay)[0]
    e.tag(img.id, "demo:1")
    e.close()
    return r


def test_verbs_are_registered() -> None:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for verb in ("stats", "events", "pause", "unpause", "update", "system"):
        assert verb in sub.choices
    system = stats_cli._subcommands(sub.choices["system"])
    assert system is not None and {"df", "prune", "events"} <= set(system.choices)
    a = p.parse_args(["container", "stats", "--no-stream", "web"])
    assert a.func is stats_cli.cmd_stats and a.containers == ["web"]
    a = p.parse_args(["container", "update", "--cpus", "0.5", "web"])
    assert a.func is stats_cli.cmd_update and a.cpus == "0.5"


def test_system_verbs_join_an_existing_system_parser() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="verb")
    system = sub.add_parser("system")
    ssub = system.add_subparsers(dest="system_verb")
    info = ssub.add_parser("info")
    ssub.add_parser("df")                       # someone else's df wins; no clash
    stats_cli.register(sub)
    assert sub.choices["system"] is system
    assert ssub.choices["info"] is info
    assert {"df", "prune", "events"} <= set(ssub.choices)
    assert p.parse_args(["system", "prune", "-a", "--volumes", "-f"]).func is stats_cli.cmd_prune


def test_system_df(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rc, out, _ = run(capsys, root, "system", "df")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert lines[1].split() == ["Images", "1", "0", "4kB", "4kB", "(100%)"]
    assert lines[2].split() == ["Containers", "0", "0", "0B", "0B", "(0%)"]
    assert lines[4].split() == ["Build", "Cache", "0", "0", "0B", "0B"]
    rc, out, _ = run(capsys, root, "system", "df", "-v")
    assert "Images space usage:" in out and "demo " in out and "Local Volumes space usage:" in out
    rc, out, _ = run(capsys, root, "system", "df", "--format", "json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows[0] == {"Type": "Images", "TotalCount": "1", "Active": "0", "Size": "4kB",
                       "Reclaimable": "4kB (100%)"}


def test_system_df_templates(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rc, out, _ = run(capsys, root, "system", "df", "--format", "{{.Type}}: {{.Size}}")
    assert rc == 0 and out.splitlines()[0] == "Images: 4kB" and len(out.splitlines()) == 4
    rc, out, _ = run(capsys, root, "system", "df", "--format", "table {{.Type}}\t{{.TotalCount}}")
    assert [ln.split("   ")[0].strip() for ln in out.splitlines()[:2]] == ["TYPE", "Images"]
    assert out.splitlines()[0].split() == ["TYPE", "TOTAL"]
    rc, out, _ = run(capsys, root, "system", "df", "--format", "{{json .}}")
    assert json.loads(out.splitlines()[0])["Reclaimable"] == "4kB (100%)"
    rc, _, err = run(capsys, root, "system", "df", "--format", "{{.Colour}}")
    assert rc == 125 and "unknown field 'Colour'" in err
    rc, out, _ = run(capsys, root, "system", "df", "-v", "--format", "json")
    [image] = json.loads(out)["Images"]
    assert (image["Repository"], image["Tag"], image["Size"]) == ("demo", "1", "4kB")
    rc, _, err = run(capsys, root, "system", "df", "-v", "--format", "{{.Type}}")
    assert rc == 125 and "only --format json" in err


def test_system_df_verbose_prints_the_ellipsis_itself(capsys: pytest.CaptureFixture[str],
                                                       root: Path) -> None:
    from engine import ContainerSpec
    e = Engine(root)
    e.create(ContainerSpec(image="demo:1", command=("echo", "a long command line here"), name="xx"))
    e.close()
    rc, out, _ = run(capsys, root, "system", "df", "-v")
    assert rc == 0 and '"echo a long command …"' in out and "\\u" not in out


def test_system_prune_asks_first(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rc, out, err = run(capsys, root, "system", "prune", "-a")
    assert rc == 0
    assert "WARNING! This will remove:" in err and "without at least one container" in err
    assert "use -f" in err
    assert "demo " in run(capsys, root, "images")[1]            # nothing removed
    rc, out, _ = run(capsys, root, "system", "prune", "-a", "-f")
    assert rc == 0 and "Deleted Images:" in out and "Total reclaimed space: 4kB" in out
    assert "demo" not in run(capsys, root, "images")[1]


def test_events_past_window_and_json(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rc, out, _ = run(capsys, root, "events", "--since", "1h", "--until", "0s")
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 2 and " image load sha256:" in lines[0] and " image tag " in lines[1]
    assert lines[1].endswith("(name=demo:1)")
    rc, out, _ = run(capsys, root, "system", "events", "--since", "1h", "--until", "0s",
                     "--filter", "event=tag", "--format", "json")
    [ev] = [json.loads(x) for x in out.splitlines()]
    assert ev["Type"] == "image" and ev["Action"] == "tag" and ev["Actor"]["Attributes"] == {"name": "demo:1"}
    assert ev["timeNano"] // 10**9 == ev["time"]
    rc, out, _ = run(capsys, root, "events", "--since", "1h", "--until", "0s",
                     "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}} "
                     "{{.Actor.Attributes.colour}}")
    assert out.splitlines()[1] == "image tag demo:1 tag <no value>"
    rc, out, _ = run(capsys, root, "events", "--since", "1h", "--until", "0s", "--format", "{{json .}}")
    ev = json.loads(out.splitlines()[1])
    assert list(ev)[:4] == ["status", "id", "Type", "Action"] and ev["scope"] == "local"
    rc, _, err = run(capsys, root, "events", "--until", "0s", "--format", "{{.Type")
    assert rc == 125 and "bad --format template" in err
    rc, _, err = run(capsys, root, "events", "--until", "0s", "--format", "table {{.Type}}")
    assert rc == 125 and "cannot print a table" in err
    rc, _, err = run(capsys, root, "events", "--filter", "colour=blue", "--until", "0s")
    assert rc == 125 and "unknown event filter 'colour'" in err
    rc, _, err = run(capsys, root, "events", "--since", "someday")
    assert rc == 125 and "invalid" in err.lower()


def test_stats_with_nothing_running(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rc, out, _ = run(capsys, root, "stats", "--no-stream")
    assert rc == 0 and out.split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/",
                                       "LIMIT", "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    rc, out, _ = run(capsys, root, "stats", "--no-stream", "--format", "json")
    assert rc == 0 and out == ""
    rc, _, err = run(capsys, root, "stats", "--no-stream", "nope")
    assert rc == 125 and "no such container: nope" in err


def test_stats_all_shows_stopped_containers_as_zeros(capsys: pytest.CaptureFixture[str],
                                                    root: Path) -> None:
    from engine import ContainerSpec
    e = Engine(root)
    idle = e.create(ContainerSpec(image="demo:1", command=("true",), name="idle"))
    e.close()
    rc, out, _ = run(capsys, root, "stats", "--no-stream", "-a")
    assert rc == 0
    assert out.splitlines()[1].split() == [idle.id[:12], "idle", "0.00%", "0B", "/", "0B", "0.00%",
                                           "0B", "/", "0B", "0B", "/", "0B", "0"]
    rc, out, _ = run(capsys, root, "stats", "--no-stream", "--format", "json", "--no-trunc", "idle")
    assert json.loads(out) | {} == {
        "BlockIO": "0B / 0B", "CPUPerc": "0.00%", "Container": "idle", "ID": idle.id,
        "MemPerc": "0.00%", "MemUsage": "0B / 0B", "Name": "idle", "NetIO": "0B / 0B", "PIDs": "0"}
    rc, out, _ = run(capsys, root, "stats", "--no-stream")
    assert len(out.splitlines()) == 1                       # running only: just the header
    # Docker's templates: fields, a table with Docker's titles, {{json .}}.
    rc, out, _ = run(capsys, root, "stats", "--no-stream", "-a", "--format",
                     "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.Container}}")
    assert out == f"idle 0.00% 0B / 0B {idle.id[:12]}\n"
    rc, out, _ = run(capsys, root, "stats", "--no-stream", "--format",
                     "table {{.Container}}\t{{.ID}}\t{{.MemPerc}}\t{{.PIDs}}", "idle")
    assert [ln.split("   ") for ln in out.splitlines()][0][:1] == ["CONTAINER"]
    assert out.splitlines()[0].split() == ["CONTAINER", "CONTAINER", "ID", "MEM", "%", "PIDS"]
    assert out.splitlines()[1].split() == ["idle", idle.id[:12], "0.00%", "0"]
    rc, out, _ = run(capsys, root, "stats", "--no-stream", "--format", "{{json .}}", "idle")
    assert json.loads(out)["Container"] == "idle" and list(json.loads(out))[0] == "BlockIO"
    rc, _, err = run(capsys, root, "stats", "--no-stream", "--format", "{{.CPU}}")
    assert rc == 125 and "unknown field 'CPU'" in err and "CPUPerc" in err


def test_pause_update_errors_are_messages(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rc, out, err = run(capsys, root, "pause", "nope")
    assert rc == 1 and out == "" and "Error: no such container: nope" in err
    rc, _, err = run(capsys, root, "update", "web")
    assert rc == 125 and "nothing to update" in err
    rc, _, err = run(capsys, root, "update", "--memory", "1m", "web")
    assert rc == 1 and "no such container: web" in err


def test_formatting_like_docker() -> None:
    assert stats_cli.binary_size(0) == "0B"
    assert stats_cli.binary_size(1536) == "1.5KiB"
    assert stats_cli.binary_size(2_087_000_000) == "1.944GiB"
    assert stats_cli.human_size(0) == "0B" and stats_cli.human_size(648) == "648B"
    assert stats_cli.human_size(1234) == "1.23kB" and stats_cli.human_size(4_260_000) == "4.26MB"
    s = ContainerStats(id="f" * 64, name="web", time=datetime.now(timezone.utc), cpu_percent=12.345,
                       memory_usage=5 << 20, memory_limit=1 << 30, memory_percent=0.488,
                       net_rx=1234, net_tx=648, block_read=0, block_write=4_260_000, pids=3)
    assert stats_cli.stats_row(s) == {
        "ID": "f" * 12, "Name": "web", "CPUPerc": "12.35%", "MemUsage": "5MiB / 1GiB",
        "MemPerc": "0.49%", "NetIO": "1.23kB / 648B", "BlockIO": "0B / 4.26MB", "PIDs": "3"}
    t = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    ev = Event(seq=1, time=t, type="container", action="start", actor_id="abc",
               attributes={"name": "web", "image": "busybox"})
    line = stats_cli.format_event(ev)
    assert line.endswith(" container start abc (image=busybox, name=web)")
    assert ".123456000" in line


def test_resource_flags_for_run_join_an_existing_parser() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-m", "--memory")                 # what run already has
    p.add_argument("--cpus", type=float)
    p.add_argument("-c", "--config")                 # a clash on the short option only
    stats_cli.add_resource_flags(p)
    a = p.parse_args(["-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m",
                      "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "9",
                      "--oom-kill-disable", "-c", "x.conf"])
    assert a.config == "x.conf"
    assert stats_cli.resource_spec_fields(a) == {
        "memory": 64 << 20, "memory_swap": -1, "memory_reservation": 32 << 20,
        "cpu_shares": 512, "cpuset_cpus": "0", "pids_limit": 9, "oom_kill_disable": True}
    assert stats_cli.resource_spec_fields(p.parse_args([])) == {}
    from engine import InvalidArgument
    with pytest.raises(InvalidArgument, match="invalid size"):
        stats_cli.resource_spec_fields(p.parse_args(["--memory-swap", "lots"]))


def test_streaming_stats_primes_so_the_first_frame_has_cpu(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(timezone.utc)

    def reading(cpu: float) -> ContainerStats:
        return ContainerStats(id="f" * 64, name="web", time=now, cpu_percent=cpu, memory_usage=0,
                              memory_limit=1, memory_percent=0, net_rx=0, net_tx=0,
                              block_read=0, block_write=0, pids=1)

    class Sampler:
        readings = [reading(0.0), reading(42.0), reading(43.0)]   # the first has no CPU delta

        def sample(self, refs: object) -> list[ContainerStats]:
            return [self.readings.pop(0)]

    class FakeEngine:
        def stats_sampler(self) -> Sampler:
            return Sampler()

    class Stop(Exception):
        pass

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 1:                  # the pause after the first frame
            raise Stop

    monkeypatch.setattr(stats_cli.time, "sleep", sleep)
    a = build_parser().parse_args(["stats", "--format", "{{.Name}} {{.CPUPerc}}"])
    with pytest.raises(Stop):
        stats_cli.cmd_stats(FakeEngine(), a)  # type: ignore[arg-type]
    assert capsys.readouterr().out == "web 42.00%\n"
    assert sleeps == [stats_cli.PRIMING_SECONDS, stats_cli.REFRESH_SECONDS]
