"""The resources part of the Engine on fake cgroup/proc trees: stats, update, df, prune, events."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from engine import Engine
from engine.containers.model import RunState, StoredConfig
from engine.errors import InvalidArgument, InvalidState, NoSuchContainer, RuntimeFailure
from engine.paths import Paths
from engine.records import ContainerSpec
from tests.engine.cgroups.faketree import FakeV1, FakeV2, add_live
from tests.imagefactory import oci_image, oci_layout

MB = 1 << 20
CID_A = "a" * 64
CID_B = "b" * 64


@pytest.fixture
def fake(tmp_path: Path) -> FakeV1:
    return FakeV1(tmp_path / "host")


@pytest.fixture
def eng(tmp_path: Path, fake: FakeV1) -> Iterator[Engine]:
    e = Engine(paths=Paths(root=tmp_path / "root", run=tmp_path / "run",
                           cgroup_root=fake.root, proc=fake.proc.root))
    yield e
    e.close()


CONMON_PID = 31337


def add_container(e: Engine, cid: str, name: str, *, status: str = "running", pid: int = 0,
                  network: str = "none", image_id: str = "sha256:" + "0" * 64,
                  **spec: object) -> None:
    """A container row as the lifecycle writes it (its config and run-state JSON).

    A running one gets a live "conmon" in the fake /proc, so reconciliation
    leaves it running.
    """
    cfg = StoredConfig(spec=ContainerSpec(image="busybox", name=name, network=network, **spec),  # type: ignore[arg-type]
                       image_ref="busybox", image_id=image_id, argv=("sleep", "30"), env=(),
                       working_dir="", user="", hostname=name[:12], stop_signal="",
                       created_ns=time.time_ns())
    st = RunState(status=status, pid=pid,
                  conmon_pid=CONMON_PID if status in ("running", "paused") else 0)
    if st.conmon_pid:
        add_live(e.paths.proc, CONMON_PID)
    with e.db.tx() as c:
        c.execute("INSERT INTO containers(id, name, image_id, status, config_json, state_json, "
                  "created_ns) VALUES (?,?,?,?,?,?,?)",
                  (cid, name, image_id, status, cfg.to_json(), st.to_json(), cfg.created_ns))


# -- stats -------------------------------------------------------------------------------
def test_stats_samples_running_containers(eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100)
    add_container(eng, CID_B, "db", pid=200, network="host")
    add_container(eng, "c" * 64, "old", status="exited")
    for cid, pid in ((CID_A, 100), (CID_B, 200)):
        fake.make(f"/portside/{cid}")
        fake.proc.add_pid(pid, nspids=(1,), rx=500, tx=600)
    fake.set("memory", f"/portside/{CID_A}", "memory.usage_in_bytes", str(10 * MB))
    fake.set("memory", f"/portside/{CID_A}", "memory.limit_in_bytes", str(100 * MB))
    fake.set("pids", f"/portside/{CID_B}", "pids.current", "4\n")
    rows = {s.name: s for s in eng.stats()}
    assert set(rows) == {"web", "db"}
    assert rows["web"].memory_usage == 10 * MB and rows["web"].memory_percent == pytest.approx(10)
    assert (rows["web"].net_rx, rows["web"].net_tx) == (500, 600)
    assert (rows["db"].net_rx, rows["db"].pids) == (0, 4)          # host network: no net I/O
    # The engine's shared sampler remembers the last reading: CPU % on the next call.
    fake.proc.set_cpu(user=200, system=0, idle=0)                   # 2 s of host CPU time
    fake.set("cpuacct", f"/portside/{CID_A}", "cpuacct.usage", str(500_000_000))
    web = eng.stats(["web"])
    assert [s.id for s in web] == [CID_A]
    assert web[0].cpu_percent == pytest.approx(0.5 / (200 / 100) * 2 * 100, rel=0.01)
    assert eng.stats(["old"]) == []                                  # not running: no row
    with pytest.raises(NoSuchContainer):
        eng.stats(["nope"])


def test_each_front_end_keeps_its_own_sampler(eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100)
    fake.make(f"/portside/{CID_A}")
    s1, s2 = eng.stats_sampler(), eng.stats_sampler()
    s1.sample()
    fake.proc.set_cpu(user=100, system=0, idle=100)
    fake.set("cpuacct", f"/portside/{CID_A}", "cpuacct.usage", str(1_000_000_000))
    assert s1.sample()[0].cpu_percent == pytest.approx(100.0)
    assert s2.sample()[0].cpu_percent == 0.0                        # its first reading


# -- update ------------------------------------------------------------------------------
def test_update_a_running_container_writes_the_cgroup_and_the_config(
        eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100, memory=64 * MB)
    p = f"/portside/{CID_A}"
    fake.make(p)
    assert eng.update("web", memory="128m", cpus=0.5, pids_limit=20) == []
    assert fake.read("memory", p, "memory.limit_in_bytes") == str(128 * MB)
    assert fake.read("cpu", p, "cpu.cfs_quota_us") == "50000"
    assert fake.read("pids", p, "pids.max") == "20"
    spec = StoredConfig.from_json(eng.db.one("SELECT config_json FROM containers")[0]).spec
    assert (spec.memory, spec.cpus, spec.pids_limit) == (128 * MB, 0.5, 20)
    assert eng.resource_limits("web")["pids"] == {"limit": 20}
    ev = eng.events(filters=["event=update"])
    assert [(e.actor_id, e.attributes["name"]) for e in ev] == [(CID_A, "web")]


def test_update_a_stopped_container_only_stores(eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_B, "db", status="exited")
    assert eng.update(CID_B[:6], cpu_shares=1) == ["Changing requested CPUShares of 1 to "
                                                   "minimum allowed of 2"]
    spec = StoredConfig.from_json(eng.db.one("SELECT config_json FROM containers")[0]).spec
    assert spec.cpu_shares == 2                                     # stored as adjusted, like Docker
    assert not fake.dir("cpu", f"/portside/{CID_B}").exists()


def test_update_warns_only_about_what_it_changes(eng: Engine) -> None:
    # Created with an out-of-range weight (stored as given) and no memory limit.
    add_container(eng, CID_B, "db", status="exited", cpu_shares=1, oom_kill_disable=True)
    assert eng.update("db", memory="64m") == []                     # neither old warning again
    assert eng.update("db", pids_limit=10) == []
    spec = StoredConfig.from_json(eng.db.one("SELECT config_json FROM containers")[0]).spec
    assert (spec.cpu_shares, spec.memory, spec.pids_limit) == (2, 64 * MB, 10)
    # A change that makes a warning true again is reported, once per such call.
    oom = ["OOM killer is disabled for the container, but no memory limit is set, this can "
           "result in the system running out of resources."]
    assert eng.update("db", memory=0) == oom
    assert eng.update("db", pids_limit=20) == []
    assert eng.update("db", cpu_shares=300000) == ["Changing requested CPUShares of 300000 to "
                                                   "maximum allowed of 262144"]
    assert eng.update("db", cpu_shares=512) == []


def test_update_refusals(eng: Engine) -> None:
    add_container(eng, CID_A, "web", status="exited", memory=64 * MB, memory_swap=128 * MB)
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        eng.update("web", memory="1m")
    with pytest.raises(InvalidArgument, match="smaller than already set memoryswap"):
        eng.update("web", memory="256m")
    with pytest.raises(InvalidArgument, match="nothing to update"):
        eng.update("web")
    with pytest.raises(InvalidArgument, match="unknown resource option"):
        eng.update("web", memory_limit="1g")
    assert eng.events(filters=["event=update"]) == []


# -- pause -----------------------------------------------------------------------------------
class RecordingRuntime:
    """Stands in for runc: records pause/resume, refuses when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = False

    def pause(self, cid: str) -> None:
        if self.fail:
            raise RuntimeFailure(f"runc pause {cid[:12]} failed: container not running")
        self.calls.append(("pause", cid))

    def resume(self, cid: str) -> None:
        self.calls.append(("resume", cid))


def test_pause_and_unpause(eng: Engine) -> None:
    rt = RecordingRuntime()
    eng.__dict__["runtime"] = rt                      # the runtime seam (a cached property)
    add_container(eng, CID_A, "web", pid=100)
    assert eng.pause("web").status == "paused"
    assert eng.container("web").status == "paused"
    with pytest.raises(InvalidState, match="cannot pause container web: it is paused"):
        eng.pause("web")
    assert eng.unpause(CID_A[:8]).status == "running"
    with pytest.raises(InvalidState, match="only a paused container can be unpaused"):
        eng.unpause("web")
    assert rt.calls == [("pause", CID_A), ("resume", CID_A)]
    evs = eng.events(filters=["container=web"])
    assert [e.action for e in evs] == ["pause", "unpause"]
    assert evs[0].attributes == {"name": "web", "image": "busybox"}


def test_pause_refused_by_the_runtime_changes_nothing(eng: Engine) -> None:
    rt = RecordingRuntime()
    rt.fail = True
    eng.__dict__["runtime"] = rt
    add_container(eng, CID_A, "web", pid=100)
    with pytest.raises(RuntimeFailure, match="container not running"):
        eng.pause("web")
    assert eng.container("web").status == "running"
    assert eng.events(filters=["event=pause"]) == []


def test_pause_of_a_stopped_container(eng: Engine) -> None:
    eng.__dict__["runtime"] = RecordingRuntime()
    add_container(eng, CID_B, "db", status="exited")
    with pytest.raises(InvalidState, match="it is exited"):
        eng.pause("db")


# -- disk usage and prune --------------------------------------------------------------------
def _load_two_images_sharing_a_layer(e: Engine, tmp: Path) -> tuple[str, str]:
    base = {"bin/base": b"B" * 50_000}
    lay = tmp / "oci"
    one = oci_image(lay, [base, {"app/one": b"1" * 10_000}], cmd=["one"])
    two = oci_image(lay, [base, {"app/two": b"2" * 20_000}], cmd=["two"])
    oci_layout(lay, [one], "one")
    first = e.load(lay)[0]
    oci_layout(lay, [two], "two")
    second = e.load(lay)[0]
    return first.id, second.id


def test_system_df(eng: Engine, tmp_path: Path) -> None:
    one, two = _load_two_images_sharing_a_layer(eng, tmp_path)
    add_container(eng, CID_A, "web", image_id=one, status="running")
    add_container(eng, CID_B, "db", image_id=one, status="exited")
    upper = eng.paths.container(CID_B) / "upper"
    upper.mkdir(parents=True)
    (upper / "log.txt").write_bytes(b"x" * 3000)
    (upper / "hard").hardlink_to(upper / "log.txt")                 # counted once
    vol = eng.paths.volumes / "data" / "_data"
    vol.mkdir(parents=True)
    (vol / "blob").write_bytes(b"v" * 7000)
    with eng.db.tx() as c:
        c.execute("INSERT INTO volumes(name, created_ns) VALUES ('data', 1), ('spare', 2)")
        c.execute("INSERT INTO container_volumes(container_id, volume) VALUES (?, 'data')", (CID_A,))
    du = eng.system_df()
    images, containers, volumes, build = du.summary
    by_id = {i.id: i for i in du.images}
    assert by_id[one].shared_size == by_id[two].shared_size == 50_000
    assert by_id[one].unique_size < by_id[two].unique_size
    assert by_id[one].containers == 2 and by_id[two].containers == 0
    assert images.total == 2 and images.active == 1
    assert images.size == by_id[one].size + by_id[two].unique_size       # shared layer once
    assert images.reclaimable == by_id[two].unique_size
    assert (containers.total, containers.active, containers.size, containers.reclaimable) == \
        (2, 1, 3000, 3000)
    assert {c.name: c.command for c in du.containers}["db"] == "sleep 30"
    assert (volumes.total, volumes.active, volumes.size, volumes.reclaimable) == (2, 1, 7000, 0)
    assert {v.name: v.links for v in du.volumes} == {"data": 1, "spare": 0}
    assert build.size == 0


def test_system_prune_volumes_and_images(eng: Engine, tmp_path: Path) -> None:
    one, two = _load_two_images_sharing_a_layer(eng, tmp_path)
    add_container(eng, CID_A, "web", image_id=one, status="running")
    add_container(eng, CID_B, "db", image_id=two, status="exited")
    upper = eng.paths.container(CID_B) / "upper"
    upper.mkdir(parents=True)
    (upper / "f").write_bytes(b"u" * 3000)
    for name in ("data", "spare"):
        (eng.paths.volumes / name / "_data").mkdir(parents=True)
    (eng.paths.volumes / "spare" / "_data" / "f").write_bytes(b"s" * 1234)
    with eng.db.tx() as c:
        c.execute("INSERT INTO volumes(name, created_ns) VALUES ('data', 1), ('spare', 2)")
        c.execute("INSERT INTO container_volumes(container_id, volume) VALUES (?, 'data')", (CID_A,))
    report = eng.system_prune(all=True, volumes=True)
    assert report.containers == (CID_B,)               # stopped; "web" runs
    assert report.volumes == ("spare",)
    assert report.images == (two,)                     # its only user was pruned first
    assert report.space_reclaimed >= 3000 + 1234 + 20_000
    assert [c.name for c in eng.containers(all=True)] == ["web"]
    assert not (eng.paths.volumes / "spare").exists() and (eng.paths.volumes / "data").exists()
    assert [e.actor_id for e in eng.events(filters=["type=volume", "event=destroy"])] == ["spare"]
    # Without --volumes and --all: volumes stay, only dangling images go.
    assert eng.system_prune().volumes == ()


# -- events through the engine -----------------------------------------------------------------
def test_engine_events_and_follow(eng: Engine, tmp_path: Path) -> None:
    import threading
    one, _ = _load_two_images_sharing_a_layer(eng, tmp_path)
    eng.tag(one, "mine:1")
    assert [e.action for e in eng.events(filters=["type=image"])] == ["load", "load", "tag"]
    stop = threading.Event()
    got = []

    def follow() -> None:
        for ev in eng.follow_events(stop=stop, poll=0.01, filters=["type=image", "event=delete"]):
            got.append(ev)
            stop.set()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    try:
        time.sleep(0.05)
        eng.rmi("mine:1")                        # the last name: the image goes too
        t.join(5)
    finally:
        stop.set()
    assert not t.is_alive() and [(e.action, e.actor_id) for e in got] == [("delete", one)]
    past = list(eng.follow_events(since="1h", stop=lambda: True))
    assert [e.seq for e in past] == [e.seq for e in eng.events()]


def test_v2_host_engine_stats(tmp_path: Path) -> None:
    fake = FakeV2(tmp_path / "host")
    e = Engine(paths=Paths(root=tmp_path / "root", run=tmp_path / "run",
                           cgroup_root=fake.root, proc=fake.proc.root))
    add_container(e, CID_A, "web", pid=7)
    fake.make(f"/portside/{CID_A}")
    fake.set(f"/portside/{CID_A}", "memory.current", str(3 * MB))
    fake.set(f"/portside/{CID_A}", "memory.max", str(30 * MB))
    fake.proc.add_pid(7, rx=1, tx=2)
    [s] = e.stats()
    assert (s.memory_usage, s.memory_limit, s.net_rx, s.net_tx) == (3 * MB, 30 * MB, 1, 2)
    assert json.loads(json.dumps(s.memory_percent)) == pytest.approx(10)


# -- OOM kills while running and at exit ---------------------------------------------------
def _set_oom_kills(fake: FakeV1, cid: str, n: int) -> None:
    fake.set("memory", f"/portside/{cid}", "memory.oom_control",
             f"oom_kill_disable 0\nunder_oom 0\noom_kill {n}\n")


def _exit(eng: Engine, cid: str, code: int, *, conmon_oom: bool = False) -> None:
    """What conmon leaves when the container's process exits."""
    files = eng.container_files(cid)
    files.exit_file.parent.mkdir(parents=True, exist_ok=True)
    files.persist_dir.mkdir(parents=True, exist_ok=True)
    if conmon_oom:
        files.oom_file.touch()
    files.exit_file.write_text(str(code))


def _actions(eng: Engine, cid: str) -> list[str]:
    return [e.action for e in eng.events(filters=[f"container={cid}"])]


def test_an_oom_kill_in_a_running_container_is_an_event_once_and_not_again_at_exit(
        eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100, memory=32 * MB)
    fake.make(f"/portside/{CID_A}")
    assert eng.container("web").state.oom_killed is False and _actions(eng, CID_A) == []
    _set_oom_kills(fake, CID_A, 1)                   # dd killed; sh lives on
    info = eng.container("web")
    assert info.status == "running" and info.state.oom_killed        # as Docker's inspect
    eng.containers()                                 # every later sync sees the same count
    eng.container("web")
    assert eng.check_oom_kills() == 0
    assert _actions(eng, CID_A) == ["oom"]
    _set_oom_kills(fake, CID_A, 2)                   # a second kill is a second event
    assert eng.check_oom_kills() == 1
    assert _actions(eng, CID_A) == ["oom", "oom"]
    # It exits (killed) later: conmon's oom file and the cgroup's count say
    # nothing new, so only die follows, still saying oomKilled.
    _exit(eng, CID_A, 137, conmon_oom=True)
    assert eng.container("web").status == "exited"
    evs = eng.events(filters=[f"container={CID_A}"])
    assert [e.action for e in evs] == ["oom", "oom", "die"]
    assert (evs[-1].attributes["exitCode"], evs[-1].attributes["oomKilled"]) == ("137", "true")


def test_an_oom_kill_first_seen_at_exit_is_oom_then_die(eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100, memory=32 * MB)
    fake.make(f"/portside/{CID_A}")
    _set_oom_kills(fake, CID_A, 1)
    _exit(eng, CID_A, 137)
    info = eng.container("web")
    assert info.status == "exited" and info.state.oom_killed
    assert _actions(eng, CID_A) == ["oom", "die"]


def test_conmons_oom_file_counts_when_the_cgroup_is_gone(eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100, memory=32 * MB)      # no cgroup: already deleted
    _exit(eng, CID_A, 137, conmon_oom=True)
    assert eng.container("web").state.oom_killed
    assert _actions(eng, CID_A) == ["oom", "die"]


def test_a_plain_exit_has_no_oom_event(eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100, memory=32 * MB)
    fake.make(f"/portside/{CID_A}")
    _exit(eng, CID_A, 0)
    assert eng.container("web").state.oom_killed is False
    assert _actions(eng, CID_A) == ["die"]


def test_the_periodic_check_reads_only_running_containers_with_a_memory_limit(
        eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "limited", pid=100, memory=32 * MB)
    add_container(eng, CID_B, "unlimited", pid=200)
    add_container(eng, "c" * 64, "stopped", status="exited", memory=32 * MB)
    for cid in (CID_A, CID_B, "c" * 64):
        fake.make(f"/portside/{cid}")
        _set_oom_kills(fake, cid, 1)
    assert eng.check_oom_kills() == 1
    assert [(e.actor_id, e.action) for e in eng.events()] == [(CID_A, "oom")]
    assert _actions(eng, CID_B) == []                 # a sync of it still reports one
    eng.container("unlimited")
    assert _actions(eng, CID_B) == ["oom"]


def test_an_events_follower_records_oom_kills_of_running_containers(
        eng: Engine, fake: FakeV1) -> None:
    add_container(eng, CID_A, "web", pid=100, memory=32 * MB)
    fake.make(f"/portside/{CID_A}")
    _set_oom_kills(fake, CID_A, 1)
    # stop is already true: the follower checks, queries once and ends.
    got = list(eng.follow_events(stop=lambda: True, filters=["event=oom"]))
    assert [(e.actor_id, e.action, e.attributes["name"]) for e in got] == [(CID_A, "oom", "web")]
    assert list(eng.follow_events(stop=lambda: True, filters=["event=oom"])) == []
    assert RunState.from_json(eng.db.one("SELECT state_json FROM containers")[0]).oom_kills == 1
