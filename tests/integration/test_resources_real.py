"""Limits, stats, pause and events on real busybox containers (root, runc, conmon).

The cgroup-level behaviour is also tested without containers in
``test_cgroups_real.py``; here the same limits go through the Engine, the
runtime config and the CLI, as a user gets them.
"""
from __future__ import annotations

import json
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import pytest

from engine import ContainerSpec, Engine, InvalidArgument, InvalidState, ResourceError
from engine.cgroups import container_cgroup
from engine.records import Event
from tests.conftest import REPO, busybox_engine, container_maker, remove_containers

pytestmark = pytest.mark.integration

MB = 1 << 20


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = busybox_engine(tmp_path_factory.mktemp("res") / "root")
    yield e
    remove_containers(e)
    assert e.containers(all=True) == []
    e.close()


@pytest.fixture
def run(engine: Engine) -> Iterator[Callable[..., str]]:
    """Run a busybox container; every one is removed afterwards, even on failure."""
    yield from container_maker(engine, "r-")


def log_texts(engine: Engine, cid: str) -> list[str]:
    return [line.text for line in engine.logs(cid)]


def wait_for(cond: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(follower: subprocess.Popen[str]) -> None:
    """End an `events` follower we started: ^C as a user would, then KILL if it lingers."""
    follower.send_signal(signal.SIGINT)
    try:
        follower.wait(10)
    except subprocess.TimeoutExpired:
        follower.kill()
        follower.wait()


def test_memory_hog_is_oom_killed_and_reported(engine: Engine, run: Callable[..., str]) -> None:
    # dd's 200 MiB buffer is filled from /dev/zero: every page is touched.
    cid = run("dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1", memory=32 * MB)
    assert engine.wait(cid, timeout=30) == 137
    info = engine.container(cid)
    assert info.state.oom_killed and info.state.exit_code == 137
    assert engine.container_inspect(cid)["State"]["OOMKilled"] is True
    evs = engine.events(filters=[f"container={cid}"])
    assert [e.action for e in evs][-2:] == ["oom", "die"]            # Docker's order
    assert (evs[-1].attributes["exitCode"], evs[-1].attributes["oomKilled"]) == ("137", "true")
    assert [e.action for e in engine.events(filters=["event=oom", f"container={cid}"])] == ["oom"]


def test_an_oom_kill_in_a_container_that_keeps_running_reaches_a_follower_once(
        engine: Engine, run: Callable[..., str]) -> None:
    # dd is OOM-killed at once; sh lives on. Docker reports the oom then, not at the exit.
    name = f"oom-{secrets.token_hex(4)}"
    since = f"{time.time() - 1:.3f}"           # the follower misses nothing while it starts
    follower = subprocess.Popen(_cli(engine, "events", "--format", "json", "--since", since,
                                     "--filter", "event=oom", "--filter", f"container={name}"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout],  # type: ignore[union-attr]
                         daemon=True).start()
        cid = run("sh", "-c", "dd if=/dev/zero of=/dev/null bs=200M count=1; exec sleep 300",
                  name=name, memory=32 * MB)
        # No call of ours syncs the container meanwhile: the follower's own check records it.
        try:
            got = json.loads(lines.get(timeout=30))
        except queue.Empty:
            raise AssertionError("the follower saw no oom event") from None
        assert (got["Action"], got["Actor"]["ID"]) == ("oom", cid)
        info = engine.container(cid)
        assert info.status == "running" and info.state.oom_killed
        engine.kill(cid)
        assert engine.wait(cid, timeout=30) == 137
        evs = engine.events(filters=[f"container={cid}"])
        assert [e.action for e in evs].count("oom") == 1               # not again at the exit
        assert (evs[-1].action, evs[-1].attributes["oomKilled"]) == ("die", "true")
        time.sleep(1.5)                         # a second check of the follower's finds nothing new
        assert lines.empty(), "the oom event arrived twice"
    finally:
        _stop(follower)


def test_every_resource_flag_reaches_the_cgroup(engine: Engine, run: Callable[..., str]) -> None:
    cid = run("sleep", "300", memory=64 * MB, memory_swap=96 * MB, memory_reservation=32 * MB,
              cpu_shares=512, cpuset_cpus="0", cpu_period=50000, cpu_quota=25000, pids_limit=33)
    lim = engine.resource_limits(cid)
    assert lim["memory"] == {"limit": 64 * MB, "reservation": 32 * MB, "swap": 96 * MB}
    assert lim["cpu"] == {"shares": 512, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"}
    assert lim["pids"] == {"limit": 33}
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        engine.create(ContainerSpec(image="busybox", command=("true",), memory=4 * MB))
    with pytest.raises(InvalidArgument, match="Minimum memoryswap limit should be larger"):
        engine.create(ContainerSpec(image="busybox", command=("true",), memory=64 * MB,
                                    memory_swap=32 * MB))


def test_fork_loop_stops_at_the_pids_limit(engine: Engine, run: Callable[..., str]) -> None:
    # The shell, the subshell that forks and its children share the 10 pids.
    script = ("(for i in $(seq 30); do sleep 300 & echo $i; done); echo after; "
              "exec sleep 300")
    cid = run("sh", "-c", script, pids_limit=10)
    wait_for(lambda: "after" in log_texts(engine, cid), what="the fork loop")
    logs = list(engine.logs(cid))
    # stdout and stderr are separate pipes: compare each on its own.
    assert [x.text for x in logs if x.stream == "stdout"] == [str(i) for i in range(1, 9)] + ["after"]
    assert any("can't fork" in x.text for x in logs if x.stream == "stderr")
    [s] = engine.stats([cid])
    assert s.pids == 9                      # the shell (now sleep) and 8 sleeps
    assert len(engine.top(cid)) == 9
    assert engine.resource_limits(cid)["pids"] == {"limit": 10}


def test_half_a_cpu_holds_a_busy_loop_near_50_percent(engine: Engine, run: Callable[..., str]) -> None:
    # The top CPU weight so that the other tests running beside this one cannot
    # push the loop below its quota.
    cid = run("sh", "-c", "while :; do :; done", cpus=0.5, cpu_shares=262144)
    sampler = engine.stats_sampler()
    time.sleep(0.5)
    sampler.sample([cid])
    time.sleep(3)
    [s] = sampler.sample([cid])
    assert 30 <= s.cpu_percent <= 70, f"CPU {s.cpu_percent:.1f}%"
    assert engine.resource_limits(cid)["cpu"]["quota"] == 50000


def test_stats_of_a_known_workload(engine: Engine, run: Callable[..., str]) -> None:
    default = next(n for n in engine.networks() if n.name == "portside")
    script = (f"head -c 40m /dev/zero > /dev/shm/hold; ping -c 5 -i 0.2 {default.gateway}; "
              "echo ready; exec sleep 300")
    cid = run("sh", "-c", script, memory=128 * MB, network=default.name)
    wait_for(lambda: "ready" in log_texts(engine, cid), what="the workload")
    [s] = engine.stats([cid])
    assert s.id == cid and s.name == engine.container(cid).name
    assert 40 * MB <= s.memory_usage <= 128 * MB         # the tmpfs file is charged to it
    assert s.memory_limit == 128 * MB and 30 <= s.memory_percent <= 100
    assert s.pids == 1
    assert s.net_tx >= 5 * 98 and s.net_rx >= 5 * 98      # five echo requests and replies
    [p] = engine.top(cid)
    assert p.container_pid == 1 and p.command.startswith("sleep")
    # Loopback-only containers show no network traffic.
    quiet = run("sh", "-c", "ping -c 3 -i 0.2 127.0.0.1; exec sleep 300", network="none")
    wait_for(lambda: any("packet loss" in t for t in log_texts(engine, quiet)), what="ping")
    [q] = engine.stats([quiet])
    assert (q.net_rx, q.net_tx) == (0, 0)


def test_stats_of_every_running_container(engine: Engine, run: Callable[..., str]) -> None:
    ids = {run("sleep", "300") for _ in range(3)}
    stopped = run("true")
    engine.wait(stopped, timeout=20)
    got = {s.id for s in engine.stats()}
    assert ids <= got and stopped not in got


def test_pause_and_unpause_freeze_the_container(engine: Engine, run: Callable[..., str]) -> None:
    cid = run("sh", "-c", "while :; do :; done", cpu_shares=262144)   # wins the CPU when thawed
    cg = container_cgroup(engine.paths, cid)
    before = datetime.now(timezone.utc)
    assert engine.pause(cid).status == "paused"
    assert cg.freezer_state() == "frozen"
    paused = engine.container(cid)
    assert paused.status == "paused"
    assert paused.state.paused_at is not None and paused.state.paused_at >= before - timedelta(seconds=1)
    assert [c.id for c in engine.containers(filters=["status=paused"])] == [cid]
    u0 = cg.stats().cpu_usage_ns
    time.sleep(0.5)
    assert cg.stats().cpu_usage_ns - u0 < 5_000_000
    with pytest.raises(InvalidState, match="it is paused"):
        engine.pause(cid)
    thawed = engine.unpause(cid)
    assert thawed.status == "running" and thawed.state.paused_at is None
    assert cg.freezer_state() == "thawed"
    u1 = cg.stats().cpu_usage_ns
    time.sleep(1)  # thawed: it runs again (other work on the host may share the CPU)
    assert cg.stats().cpu_usage_ns - u1 > 150_000_000
    actions = [e.action for e in engine.events(filters=[f"container={cid}"])]
    assert actions[-2:] == ["pause", "unpause"]


def test_update_a_running_container_and_keep_it_over_a_restart(
        engine: Engine, run: Callable[..., str]) -> None:
    cid = run("sh", "-c", "head -c 24m /dev/zero > /dev/shm/hold; exec sleep 300", memory=256 * MB)
    wait_for(lambda: engine.stats([cid])[0].memory_usage >= 24 * MB, what="the 24 MiB file")
    assert engine.update(cid, memory="64m", pids_limit=20, cpus=1.5) == []
    lim = engine.resource_limits(cid)
    assert lim["memory"]["limit"] == 64 * MB
    assert lim["pids"] == {"limit": 20}
    assert (lim["cpu"]["quota"], lim["cpu"]["period"]) == (150000, 100000)
    # Below what it holds (this host has no swap): the kernel refuses, nothing is stored.
    with pytest.raises(ResourceError, match="cannot set memory limit"):
        engine.update(cid, memory="16m")
    assert engine.resource_limits(cid)["memory"]["limit"] == 64 * MB
    # The stored config carries the update into the next start.
    engine.stop(cid, timeout=1)
    engine.start(cid)
    lim = engine.resource_limits(cid)
    assert lim["memory"]["limit"] == 64 * MB and lim["pids"] == {"limit": 20}
    assert lim["cpu"]["quota"] == 150000
    assert [e.action for e in engine.events(filters=[f"container={cid}", "event=update"])] == ["update"]


# -- events across processes -----------------------------------------------------------------
def _cli(engine: Engine, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui", "--root", str(engine.paths.root),
            "--run-dir", str(engine.paths.run), *args]


def test_a_second_process_follows_our_events_in_order(engine: Engine, run: Callable[..., str]) -> None:
    name = f"ev-{secrets.token_hex(4)}"
    follower = subprocess.Popen(_cli(engine, "events", "--format", "json", "--filter",
                                     f"container={name}"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        time.sleep(1.5)                     # let it start following (it begins at "now")
        cid = run("sh", "-c", "exec sleep 300", name=name)
        engine.pause(cid)
        engine.unpause(cid)
        engine.update(cid, pids_limit=50)
        engine.kill(cid)
        engine.wait(cid, timeout=20)
        engine.rm(cid)
        expected = [e.action for e in engine.events(filters=[f"container={name}"])]
        assert expected[:2] == ["create", "start"] and expected[-1] == "destroy"
        # A reader thread, because select() on a buffered pipe misses lines already read ahead.
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout],  # type: ignore[union-attr]
                         daemon=True).start()
        got: list[dict[str, object]] = []
        deadline = time.monotonic() + 20
        while len(got) < len(expected) and time.monotonic() < deadline:
            try:
                got.append(json.loads(lines.get(timeout=0.5)))
            except queue.Empty:
                pass
        assert [g["Action"] for g in got] == expected        # in order, none lost or doubled
        assert all(g["Actor"]["ID"] == cid for g in got)  # type: ignore[index]
        time.sleep(0.5)
        assert lines.empty(), "an event arrived twice"
    finally:
        _stop(follower)


def test_we_follow_a_second_processes_events(engine: Engine, run: Callable[..., str]) -> None:
    cid = run("sh", "-c", "exec sleep 300")
    got: list[Event] = []
    stop = threading.Event()

    def follow() -> None:
        for ev in engine.follow_events(stop=stop, poll=0.02, filters=[f"container={cid}"]):
            got.append(ev)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        for verb in ("pause", "unpause", "pause", "unpause"):
            r = subprocess.run(_cli(engine, verb, cid), capture_output=True, text=True, cwd=REPO,
                               timeout=60)
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == cid
        wait_for(lambda: len(got) >= 4, what="four events")
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(5)
    assert [e.action for e in got] == ["pause", "unpause", "pause", "unpause"]
    assert [e.seq for e in got] == sorted({e.seq for e in got})
