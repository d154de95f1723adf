"""The container lifecycle on real busybox containers (root, runc, conmon, overlayfs).

One engine on a private root for the module, with the built-in busybox
image. Every container a test makes is removed (``rm -f``) when the test
ends, even when it fails, so conmon exits, mounts go, runtime state and
cgroups are deleted; the module checks that at the end.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine import (CommandNotExecutable, CommandNotFound, ContainerSpec, Engine, InvalidState,
                    NameConflict, NoSuchContainer)
from engine.containers import monitor, rootfs
from engine.records import Mount
from tests.conftest import REPO, busybox_engine, container_maker, remove_containers

pytestmark = pytest.mark.integration

DEFAULT_CAPS_HEX = "00000000a80425fb"     # Docker's 14 default capabilities


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = busybox_engine(tmp_path_factory.mktemp("ctr") / "root")
    yield e
    remove_containers(e)
    # Nothing of ours is left running or mounted.
    assert e.containers(all=True) == []
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(e.paths.containers) not in mountinfo
    listed = subprocess.run(["runc", "--root", str(e.paths.run / "runtime-runc"), "list", "-q"],
                            capture_output=True, text=True).stdout.split()
    assert listed == []
    e.close()


@pytest.fixture
def make(engine: Engine) -> Iterator[Callable[..., str]]:
    """Create (and by default start) a busybox container; all are removed afterwards."""
    yield from container_maker(engine, "t-")


def cli(engine: Engine, *args: str, timeout: float = 60,
        input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", "--root", str(engine.paths.root),
                           "--run-dir", str(engine.paths.run), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          input=input.decode() if input else None)


def output(engine: Engine, cid: str) -> str:
    assert engine.wait(cid, timeout=30) is not None
    return "\n".join(line.text for line in engine.logs(cid))


def run_out(engine: Engine, make: Callable[..., str], *command: str, **kw: object) -> tuple[int, str]:
    cid = make(*command, **kw)
    code = engine.wait(cid, timeout=30)
    return code, "\n".join(line.text for line in engine.logs(cid))


# -- run and exit codes -------------------------------------------------------------------

def test_cli_run_exit_codes_and_streams(engine: Engine) -> None:
    p = cli(engine, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3
    assert p.stdout == "out\n" and p.stderr == "err\n"
    assert cli(engine, "run", "--rm", "busybox", "true").returncode == 0
    p = cli(engine, "run", "--rm", "busybox", "no-such-command")
    assert p.returncode == 127 and "not found" in p.stderr
    p = cli(engine, "run", "--rm", "busybox", "/etc/passwd")
    assert p.returncode == 126 and "permission denied" in p.stderr
    p = cli(engine, "run", "--rm", "no-such-image-here:v1")
    assert p.returncode == 125
    # --rm removed every one of them, even those that failed to start.
    assert engine.containers(all=True) == []


def test_engine_errors_for_missing_or_unexecutable_commands(engine: Engine, make: Callable[..., str]) -> None:
    with pytest.raises(CommandNotFound):
        make("no-such-command")
    with pytest.raises(CommandNotExecutable):
        make("/etc")
    created = [c for c in engine.containers(all=True) if c.command == ("/etc",)]
    assert created and created[0].status == "created" and created[0].state.exit_code == 126


def test_env_image_then_flags(engine: Engine, make: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "hostval")
    code, out = run_out(engine, make, "env", env=("A=1", "FROM_HOST", "PATH=/bin:/usr/bin"), hostname="h1")
    lines = out.splitlines()
    assert code == 0
    assert "A=1" in lines and "FROM_HOST=hostval" in lines and "PATH=/bin:/usr/bin" in lines
    assert "HOSTNAME=h1" in lines and "HOME=/root" in lines


def test_user_by_name_and_number(engine: Engine, make: Callable[..., str]) -> None:
    assert run_out(engine, make, "id", user="nobody")[1].startswith("uid=65534(nobody) gid=65534(nobody)")
    assert run_out(engine, make, "id", user="1234:5678")[1].startswith("uid=1234 gid=5678")
    with pytest.raises(Exception, match="unable to find user ghost"):
        make("id", user="ghost")


def test_workdir_created_and_used(engine: Engine, make: Callable[..., str]) -> None:
    assert run_out(engine, make, "pwd", working_dir="/srv/app/data") == (0, "/srv/app/data")


def test_entrypoint_and_cmd_overrides(engine: Engine) -> None:
    p = cli(engine, "run", "--rm", "--entrypoint", "echo", "busybox", "hello", "world")
    assert (p.returncode, p.stdout) == (0, "hello world\n")
    p = cli(engine, "run", "--rm", "--entrypoint", "", "busybox", "echo", "plain")
    assert p.stdout == "plain\n"


def test_capabilities(engine: Engine, make: Callable[..., str]) -> None:
    def capeff(**kw: object) -> str:
        out = run_out(engine, make, "grep", "CapEff", "/proc/self/status", **kw)[1]
        return out.split()[1]
    assert capeff() == DEFAULT_CAPS_HEX
    assert capeff(cap_drop=("ALL",)) == "0000000000000000"
    assert int(capeff(cap_add=("SYS_ADMIN",)), 16) == int(DEFAULT_CAPS_HEX, 16) | (1 << 21)
    assert int(capeff(cap_drop=("CHOWN",)), 16) == int(DEFAULT_CAPS_HEX, 16) & ~1
    assert int(capeff(privileged=True), 16) > int(DEFAULT_CAPS_HEX, 16)
    inh = run_out(engine, make, "grep", "CapInh", "/proc/self/status")[1].split()[1]
    assert inh == "0000000000000000"


def test_seccomp_and_no_new_privileges(engine: Engine, make: Callable[..., str]) -> None:
    status = run_out(engine, make, "cat", "/proc/self/status")[1]
    assert "Seccomp:\t2" in status and "NoNewPrivs:\t0" in status
    status = run_out(engine, make, "cat", "/proc/self/status",
                     security_opt=("seccomp=unconfined", "no-new-privileges"))[1]
    assert "Seccomp:\t0" in status and "NoNewPrivs:\t1" in status


def test_masked_and_readonly_paths(engine: Engine, make: Callable[..., str]) -> None:
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
              if os.path.exists(p)]
    assert masked, "the host has none of the masked /proc files"
    reads = "; ".join(f"wc -c < {p}" for p in masked)
    code, out = run_out(engine, make, "sh", "-c",
                        f"{reads}; ls /sys/firmware | wc -l; "
                        "(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo WROTE; "
                        "touch /sys/x 2>/dev/null && echo SYSRW; echo done")
    lines = out.splitlines()
    assert lines[:len(masked)] == ["0"] * len(masked)      # masked: /dev/null bound over them
    assert lines[len(masked)] == "0"                       # /sys/firmware: an empty read-only tmpfs
    assert "WROTE" not in lines and "SYSRW" not in lines and lines[-1] == "done"


def test_read_only_rootfs(engine: Engine, make: Callable[..., str]) -> None:
    code, out = run_out(engine, make, "sh", "-c", "touch /x && echo ROOT_RW; touch /tmp/y && echo TMP_RW",
                        read_only=True, mounts=(Mount("tmpfs", "", "/tmp"),))
    assert "ROOT_RW" not in out and "TMP_RW" in out
    assert "ROOT_RW" in run_out(engine, make, "sh", "-c", "touch /x && echo ROOT_RW")[1]


def test_standard_mounts_hosts_and_limits(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "cat /etc/hostname; grep -c localhost /etc/hosts; "
               "grep -c nameserver /etc/resolv.conf; ulimit -n; df -k /dev/shm | tail -1; "
               "cat /proc/net/dev | grep -c :; mount | grep -c ' /proc '", network="none")
    lines = output(engine, cid).splitlines()
    assert lines[0] == cid[:12]
    assert int(lines[1]) >= 1 and int(lines[2]) >= 1
    import resource
    assert int(lines[3]) == resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert lines[4].split()[1] == str(64 * 1024)           # /dev/shm is 64 MiB
    assert lines[5] == "1"                                # --network none: only lo
    assert int(lines[6]) >= 1


def test_bind_mount_and_tmpfs(engine: Engine, make: Callable[..., str], tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    out = run_out(engine, make, "sh", "-c", "cat /h/in.txt; echo back > /h/out.txt; "
                  "mount | grep ' /scratch ' | grep -c tmpfs; touch /ro/x 2>/dev/null || echo RO",
                  mounts=(Mount("bind", str(tmp_path), "/h"), Mount("tmpfs", "", "/scratch"),
                          Mount("bind", str(tmp_path), "/ro", True)))[1]
    assert out.splitlines() == ["from host", "1", "RO"]
    assert (tmp_path / "out.txt").read_text() == "back\n"


def test_files_survive_stop_and_start(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "if [ -f /marker ]; then echo again; exit 7; fi; touch /marker")
    assert engine.wait(cid, timeout=30) == 0
    engine.start(cid)
    assert engine.wait(cid, timeout=30) == 7
    assert [ln.text for ln in engine.logs(cid)] == ["again"]
    info = engine.container(cid)
    assert info.status == "exited" and info.state.exit_code == 7


# -- stop, kill, signals ------------------------------------------------------------------

def test_stop_sends_term_then_the_handler_exit_code(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.1; done")
    _wait_for_log(engine, cid, "ready")
    t = time.monotonic()
    info = engine.stop(cid, timeout=10)
    assert time.monotonic() - t < 5
    assert info.status == "exited" and info.state.exit_code == 42
    assert "got TERM" in [ln.text for ln in engine.logs(cid)]
    assert not rootfs.is_mounted(rootfs.layout(engine.paths.container(cid))[2])


def test_stop_kills_after_timeout(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    _wait_for_log(engine, cid, "ready")
    t = time.monotonic()
    info = engine.stop(cid, timeout=1)
    assert 0.9 < time.monotonic() - t < 8
    assert info.state.exit_code == 137
    assert engine.stop(cid).status == "exited"            # stopping a stopped container: no-op


def test_kill_with_signal(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "trap 'exit 5' HUP; echo ready; while true; do sleep 0.1; done")
    _wait_for_log(engine, cid, "ready")
    engine.kill(cid, "HUP")
    assert engine.wait(cid, timeout=10) == 5
    with pytest.raises(InvalidState, match="exited"):
        engine.kill(cid)
    cid2 = make("sleep", "300")
    assert engine.kill(cid2).state.exit_code == 137


def test_restart_verb(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo run; sleep 300")
    _wait_for_log(engine, cid, "run")
    first_pid = engine.container(cid).state.pid
    info = engine.restart(cid, timeout=1)
    assert info.status == "running" and info.state.pid != first_pid
    _wait_for(lambda: [ln.text for ln in engine.logs(cid)] == ["run", "run"])


# -- restart policies -----------------------------------------------------------------------

def test_restart_on_failure_with_a_limit(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo try; exit 1", restart="on-failure:2")
    _wait_for(lambda: engine.container(cid).state.restart_count == 2
              and engine.container(cid).status == "exited", timeout=30)
    time.sleep(1.0)                                       # and no third restart
    info = engine.container(cid)
    assert info.state.restart_count == 2 and info.status == "exited" and info.state.exit_code == 1
    assert [ln.text for ln in engine.logs(cid)] == ["try"] * 3


def test_on_failure_does_not_restart_success_and_stop_wins(engine: Engine, make: Callable[..., str]) -> None:
    ok = make("true", restart="on-failure")
    assert engine.wait(ok, timeout=10) == 0
    time.sleep(0.5)
    assert engine.container(ok).state.restart_count == 0
    always = make("sh", "-c", "echo up; sleep 300", restart="always")
    _wait_for_log(engine, always, "up")
    engine.stop(always, timeout=1)
    time.sleep(1.0)
    assert engine.container(always).status == "exited"    # a stopped container stays stopped


def test_always_restarts_after_exit(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo tick; sleep 0.2", restart="always")
    _wait_for(lambda: engine.container(cid).state.restart_count >= 2, timeout=30)
    engine.stop(cid, timeout=1)
    assert engine.container(cid).status == "exited"


def test_unless_stopped_restarts_until_stopped(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo tick; sleep 0.2; exit 4", restart="unless-stopped")
    _wait_for(lambda: engine.container(cid).state.restart_count >= 2, timeout=30)
    engine.stop(cid, timeout=1)
    time.sleep(1.0)
    info = engine.container(cid)
    assert info.status == "exited"                       # stopped by the user: it stays so
    count = info.state.restart_count
    time.sleep(1.0)
    assert engine.container(cid).state.restart_count == count


# -- monitor loss, reconcile, cleanup ----------------------------------------------------------

def test_kill_9_of_conmon_is_reconciled(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sleep", "300")
    st = engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))
    import json
    conmon_pid = json.loads(st["state_json"])["conmon_pid"]
    ctr_pid = engine.container(cid).state.pid
    assert "conmon" in Path(f"/proc/{conmon_pid}/cmdline").read_text()
    os.kill(conmon_pid, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{conmon_pid}").exists() or
              Path(f"/proc/{conmon_pid}/stat").read_text().split(") ")[1].startswith("Z"))
    info = engine.container(cid)
    assert info.status == "exited" and "conmon" in info.state.error
    _wait_for(lambda: not _pid_alive(ctr_pid))             # the orphaned container was stopped
    # The next listing cleans up what the dead monitor's exit hook never did.
    engine.containers(all=True)
    assert not rootfs.is_mounted(rootfs.layout(engine.paths.container(cid))[2])
    assert engine.runtime.state(cid) is None
    engine.rm(cid)


def test_kill_9_of_portside_mid_run(engine: Engine) -> None:
    """The container outlives a killed CLI; its exit is still recorded and cleaned up."""
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--root", str(engine.paths.root), "--run-dir",
                             str(engine.paths.run), "run", "--name", "orphan", "busybox", "sh", "-c",
                             "echo started; sleep 2; exit 6"], cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        proc.kill()
        proc.wait()
        assert engine.container("orphan").status == "running"
        assert engine.wait("orphan", timeout=30) == 6
        merged = rootfs.layout(engine.paths.container(engine.container("orphan").id))[2]
        _wait_for(lambda: not rootfs.is_mounted(merged), timeout=20)
    finally:
        engine.rm("orphan", force=True)


def test_crash_mid_start_leftovers_cleaned_by_listing(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("true", start=False)
    # What a portside killed between mounting and launching the monitor leaves.
    import json
    from engine.containers.model import RunState
    row = engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))
    st = RunState.from_json(row["state_json"]).but(mounted=True, runtime_created=True)
    rootfs.mount(engine.paths.container(cid), engine.image_store.lower_dirs(engine.container(cid).image_id))
    with engine.db.tx() as c:
        c.execute("UPDATE containers SET state_json=? WHERE id=?", (st.to_json(), cid))
    engine.containers(all=True)
    assert not rootfs.is_mounted(rootfs.layout(engine.paths.container(cid))[2])
    assert json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))[0])["mounted"] is False
    engine.start(cid)
    assert engine.wait(cid, timeout=10) == 0


def test_oom_kill_is_reported(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1", memory=8 << 20)
    code = engine.wait(cid, timeout=30)
    info = engine.container(cid)
    assert code == 137 and info.state.oom_killed
    assert engine.container_inspect(cid)["State"]["OOMKilled"] is True
    actions = [r["action"] for r in engine.db.query(
        "SELECT action FROM events WHERE actor_id=? ORDER BY seq", (cid,))]
    assert actions.index("oom") == actions.index("die") - 1


def test_cli_run_interactive_stdin_and_detached(engine: Engine) -> None:
    p = cli(engine, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end", input=b"abc\ndef\n")
    assert (p.returncode, p.stdout) == (0, "abc\ndef\nend\n")
    p = cli(engine, "run", "-d", "--name", "detached-one", "busybox", "sleep", "300")
    try:
        assert p.returncode == 0 and len(p.stdout.strip()) == 64
        assert engine.container("detached-one").status == "running"
        p = cli(engine, "stop", "-t", "1", "detached-one")
        assert p.stdout == "detached-one\n"
        assert "Exited (137)" in cli(engine, "ps", "-a", "--filter", "name=detached-one").stdout
    finally:
        engine.rm("detached-one", force=True)


def test_cleanup_after_exit_unmounts_and_deletes_runtime_state(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("true")
    engine.wait(cid, timeout=10)
    merged = rootfs.layout(engine.paths.container(cid))[2]
    # conmon's exit command (portside container cleanup) does this without us.
    _wait_for(lambda: not rootfs.is_mounted(merged), timeout=20)
    _wait_for(lambda: engine.runtime.state(cid) is None, timeout=20)
    assert not Path(f"/sys/fs/cgroup/pids/portside/{cid}").exists()


def test_rm_force_of_a_running_container(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sleep", "300")
    pid = engine.container(cid).state.pid
    with pytest.raises(InvalidState, match="running"):
        engine.rm(cid)
    engine.rm(cid, force=True)
    with pytest.raises(NoSuchContainer):
        engine.container(cid)
    assert not engine.paths.container(cid).exists()
    assert not _pid_alive(pid)


def test_wait_reports_code_after_auto_remove(engine: Engine) -> None:
    info = engine.run(ContainerSpec(image="busybox", command=("sh", "-c", "exit 9"), auto_remove=True))
    assert engine.wait(info.id, timeout=30) == 9
    _wait_for(lambda: not engine.paths.container(info.id).exists(), timeout=20)
    assert engine.wait(info.id) == 9                       # from its "die" event


# -- listing, inspect, names -----------------------------------------------------------------

def test_ps_filters_and_cli_columns(engine: Engine, make: Callable[..., str]) -> None:
    up = make("sleep", "300", labels={"tier": "web"}, name="filter-up")
    down = make("true", name="filter-down")
    engine.wait(down, timeout=10)
    running = [c.id for c in engine.containers()]
    assert up in running and down not in running
    assert [c.id for c in engine.containers(filters=["status=exited", "name=filter-"])] == [down]
    assert [c.id for c in engine.containers(all=True, filters=["label=tier=web"])] == [up]
    assert [c.id for c in engine.containers(all=True, filters=["label=tier"])] == [up]
    assert {c.id for c in engine.containers(all=True, filters=["ancestor=busybox"])} >= {up, down}
    assert [c.id for c in engine.containers(all=True, filters=[f"id={up[:10]}"])] == [up]
    assert [c.id for c in engine.containers(all=True, filters=["exited=0", "name=filter"])] == [down]
    p = cli(engine, "ps", "-a", "--filter", "name=filter-")
    header, *rows = p.stdout.splitlines()
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    text = "\n".join(rows)
    assert "Up " in text and "Exited (0)" in text and "filter-up" in text and '"sleep 300"' in text
    assert cli(engine, "ps", "-q", "--no-trunc", "--filter", "name=filter-up").stdout.strip() == up


def test_inspect_is_docker_shaped(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sleep", "300", name="inspect-me")
    data = engine.container_inspect("inspect-me")
    assert data["Id"] == cid and data["Name"] == "/inspect-me"
    st = data["State"]
    assert st["Status"] == "running" and st["Running"] and st["Pid"] > 0 and st["ExitCode"] == 0
    assert st["StartedAt"].endswith("Z") and st["FinishedAt"] == "0001-01-01T00:00:00Z"
    assert not st["OOMKilled"]
    assert data["Config"]["Cmd"] == ["sleep", "300"] and data["HostConfig"]["NetworkMode"] == "bridge"
    assert data["GraphDriver"]["Data"]["MergedDir"].endswith("/merged")
    import json
    p = cli(engine, "inspect", "inspect-me")
    assert json.loads(p.stdout)[0]["Id"] == cid


def test_names_rename_and_conflicts(engine: Engine, make: Callable[..., str]) -> None:
    a = make("sleep", "300", name="name-a")
    make("sleep", "300", name="name-b")
    with pytest.raises(NameConflict, match="already in use"):
        make("true", name="name-a")
    with pytest.raises(NameConflict):
        engine.rename(a, "name-b")
    engine.rename("name-a", "name-c")
    assert engine.container("name-c").id == a
    assert engine.container(a[:8]).name == "name-c"
    auto = make("true", name=None)
    assert "_" in engine.container(auto).name


def test_twenty_processes_race_for_one_name(engine: Engine) -> None:
    name = f"race-{secrets.token_hex(3)}"
    argv = [sys.executable, "-m", "tui", "--root", str(engine.paths.root), "--run-dir",
            str(engine.paths.run), "run", "-d", "--name", name, "busybox", "sleep", "300"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
             for _ in range(20)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    try:
        winners = [r for r in results if r[0] == 0]
        losers = [r for r in results if r[0] != 0]
        assert len(winners) == 1
        assert all(code == 125 and "already in use" in err for code, _out, err in losers)
        same = [c for c in engine.containers(all=True) if c.name == name]
        assert len(same) == 1 and same[0].id == winners[0][1].strip() and same[0].status == "running"
        assert len(engine.containers(all=True, filters=[f"name={name}"])) == 1
    finally:
        for c in engine.containers(all=True, filters=[f"name={name}"]):
            engine.rm(c.id, force=True)


# -- logs ----------------------------------------------------------------------------------

def test_logs_tail_streams_and_follow(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "for i in 1 2 3 4 5; do echo out$i; done; echo bad >&2")
    engine.wait(cid, timeout=10)
    assert [ln.text for ln in engine.logs(cid, tail=2)] == ["out5", "bad"]
    assert [ln.stream for ln in engine.logs(cid)][-1] == "stderr"
    p = cli(engine, "logs", "--tail", "3", cid)
    assert p.stdout == "out4\nout5\n" and p.stderr == "bad\n"
    p = cli(engine, "logs", "-t", "-n", "1", cid)
    assert p.stderr.split(" ", 1)[1] == "bad\n" and p.stderr[:4].isdigit()
    live = make("sh", "-c", "echo one; sleep 1; echo two")
    got = [ln.text for ln in engine.logs(live, follow=True)]
    assert got == ["one", "two"]                            # follow ends when the container does


def test_log_max_size_option(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
               log_opts={"max-size": "20k"})
    engine.wait(cid, timeout=30)
    assert monitor.MonitorFiles(cid, engine.paths.container(cid), engine.paths.exits).log.stat().st_size <= 40 * 1024
    assert list(engine.logs(cid, tail=1))[0].text == "line-2999-xxxxxxxxxxxxxxxxxxxx"


def test_cli_create_start_attach_wait(engine: Engine) -> None:
    cid = cli(engine, "create", "--name", "cli-life", "busybox", "sh", "-c", "echo hi; exit 4").stdout.strip()
    try:
        assert len(cid) == 64
        p = cli(engine, "start", "-a", "cli-life")
        assert p.returncode == 4 and p.stdout == "hi\n"
        assert cli(engine, "wait", "cli-life").stdout == "4\n"
        assert cli(engine, "rename", "cli-life", "cli-life2").returncode == 0
        assert cli(engine, "rm", "cli-life2").stdout == "cli-life2\n"
    finally:
        try:
            engine.rm(cid, force=True)
        except NoSuchContainer:
            pass


def test_container_prune(engine: Engine, make: Callable[..., str]) -> None:
    done = make("true")
    engine.wait(done, timeout=10)
    up = make("sleep", "300")
    removed = engine.container_prune()
    assert done in removed and up not in removed
    assert engine.container(up).status == "running"


def test_info(engine: Engine) -> None:
    info = engine.info()
    assert info.runtime.startswith(("runc", "crun")) and "conmon" in info.conmon_version
    assert info.storage_driver == "overlay" and info.cgroup_version in ("v1", "v1 (hybrid)", "v2")
    assert cli(engine, "info").returncode == 0


# -- helpers --------------------------------------------------------------------------------

def _wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _wait_for_log(engine: Engine, cid: str, text: str) -> None:
    _wait_for(lambda: any(ln.text == text for ln in engine.logs(cid)))


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


# -- volumes ---------------------------------------------------------------------------------

def test_named_volume_persists_and_gets_the_image_files(engine: Engine, make: Callable[..., str]) -> None:
    vol = f"v-{secrets.token_hex(4)}"
    try:
        a = make("sh", "-c", "echo kept > /data/f; ls /etc | grep -c passwd",
                 mounts=(Mount("volume", vol, "/data"), Mount("volume", vol + "-etc", "/etc")))
        assert output(engine, a) == "1"                    # copy-up: /etc/passwd came along
        b = make("cat", "/data/f", mounts=(Mount("volume", vol, "/data"),))
        assert output(engine, b) == "kept"
        assert engine.volume(vol).name == vol
        engine.rm(a)
        engine.rm(b, volumes=True)                         # -v keeps named volumes
        assert engine.volume(vol).name == vol
    finally:
        for v in (vol, vol + "-etc"):
            for c in engine.containers(all=True):
                if any(m.source == v for m in c.mounts):
                    engine.rm(c.id, force=True)
            engine.volume_rm(v, force=True)


def test_anonymous_volume_removed_with_rm_v(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo x > /scratch/f", mounts=(Mount("volume", "", "/scratch"),))
    engine.wait(cid, timeout=10)
    vol = next(m.source for m in engine.container(cid).mounts if m.destination == "/scratch")
    assert len(vol) == 64 and (Path(engine.volume(vol).mountpoint) / "f").read_text() == "x\n"
    p = cli(engine, "rm", "-v", cid)
    assert p.returncode == 0
    assert vol not in [v.name for v in engine.volumes()]


def test_paused_containers_can_be_stopped_killed_and_removed(engine: Engine, make: Callable[..., str]) -> None:
    a, b, c = make("sleep", "300"), make("sleep", "300"), make("sleep", "300")
    for cid in (a, b, c):
        engine.pause(cid)
        assert engine.container(cid).status == "paused"
    assert engine.stop(a, timeout=1).status == "exited"
    assert engine.kill(b).state.exit_code == 137
    pid = engine.container(c).state.pid
    engine.rm(c, force=True)
    assert not _pid_alive(pid)


def test_runtime_is_remembered_per_run(engine: Engine, make: Callable[..., str]) -> None:
    import json
    cid = make("sleep", "300")
    st = json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))[0])
    assert st["runtime"] == engine.runtime.path


def test_restart_backoff_waiter_killed_leaves_it_exited(engine: Engine, make: Callable[..., str]) -> None:
    import json
    cid = make("sh", "-c", "exit 1", restart="always")
    # Wait until a back-off is long enough to catch the waiter sleeping.
    def waiting() -> bool:
        st = json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))[0])
        return st["status"] == "restarting" and st["backoff_ms"] >= 800 and st["waiter_pid"] > 0
    _wait_for(waiting, timeout=30)
    st = json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))[0])
    os.kill(st["waiter_pid"], signal.SIGKILL)
    _wait_for(lambda: not _pid_alive(st["waiter_pid"]))
    info = engine.container(cid)
    assert info.status == "exited" and "interrupted" in info.state.error
    time.sleep(1.5)
    assert engine.container(cid).status == "exited"       # and nothing restarts it


def test_rm_finishes_a_removal_that_crashed(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("true")
    engine.wait(cid, timeout=10)
    with engine.db.tx() as c:        # what a portside killed inside rm leaves behind
        c.execute("UPDATE containers SET status='removing', state_json=json_set(state_json, "
                  "'$.status', 'removing') WHERE id=?", (cid,))
    assert engine.container(cid).status == "removing"
    assert "Removal In Progress" in cli(engine, "ps", "-a", "--filter", f"id={cid}").stdout
    engine.rm(cid)
    with pytest.raises(NoSuchContainer):
        engine.container(cid)


def test_stop_and_rm_racing_end_consistent(engine: Engine, make: Callable[..., str]) -> None:
    for _ in range(3):
        cid = make("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
        base = [sys.executable, "-m", "tui", "--root", str(engine.paths.root), "--run-dir", str(engine.paths.run)]
        procs = [subprocess.Popen(base + args + [cid], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for args in (["stop", "-t", "5"], ["rm", "-f"], ["kill"], ["restart", "-t", "1"])]
        codes = [p.wait(60) for p in procs]
        assert codes[1] == 0                                   # rm -f always wins in the end
        with pytest.raises(NoSuchContainer):
            engine.container(cid)
        assert not engine.paths.container(cid).exists()
        assert engine.runtime.state(cid) is None
        assert str(engine.paths.container(cid)) not in Path("/proc/self/mountinfo").read_text()


def test_log_max_file_beyond_one_is_refused(engine: Engine) -> None:
    from engine import InvalidArgument
    with pytest.raises(InvalidArgument, match="max-file"):
        engine.create(ContainerSpec(image="busybox", command=("true",), log_opts={"max-file": "3"},
                                    name="max-file-3"))
    with pytest.raises(NoSuchContainer):
        engine.container("max-file-3")                     # refused before anything was made


def test_the_first_open_after_a_reboot_reconciles_every_container(engine: Engine,
                                                                 make: Callable[..., str]) -> None:
    import json
    cid = make("true")
    engine.wait(cid)
    deadline = time.monotonic() + 20          # the exit hook releases the mount and runtime state
    while time.monotonic() < deadline:
        st = json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))[0])
        if not st["mounted"] and not st["runtime_created"]:
            break
        time.sleep(0.05)
    # What a reboot leaves behind: a record that says running, from another
    # boot, whose monitor is long gone, and the run dir's marker of that boot.
    st.update(status="running", boot_id="an-earlier-boot", conmon_pid=0, pid=0)
    with engine.db.tx() as c:
        c.execute("UPDATE containers SET status=?, state_json=? WHERE id=?",
                  ("running", json.dumps(st, sort_keys=True), cid))
    (engine.paths.run / "boot_id").write_text("an-earlier-boot")
    files = engine.container_files(cid)                      # it never exited: no exit files
    files.exit_file.unlink(missing_ok=True)
    files.persist_exit_file.unlink(missing_ok=True)
    Engine(engine.paths.root, engine.paths.run).close()      # only opened, nothing listed
    row = engine.db.one("SELECT status, state_json FROM containers WHERE id=?", (cid,))
    assert row[0] == "exited"
    assert "rebooted" in json.loads(row[1])["error"]
    assert (engine.paths.run / "boot_id").read_text() == monitor.boot_id()


def test_a_container_from_before_a_reboot_starts_again(engine: Engine, make: Callable[..., str]) -> None:
    # A reboot as the engine sees it where /run is on disk (as here): monitor and
    # processes gone, mounts gone, the runtime's state dir and the record left.
    import json
    cid = make("sleep", "300", network="none")
    st = json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?", (cid,))[0])
    ctr_pid = engine.container(cid).state.pid
    os.kill(st["conmon_pid"], signal.SIGKILL)
    os.kill(ctr_pid, signal.SIGKILL)
    _wait_for(lambda: not _pid_alive(ctr_pid))
    rootfs.unmount(engine.paths.container(cid))
    assert engine.runtime.state(cid) is not None                 # runc still has its state
    st.update(boot_id="an-earlier-boot", conmon_pid=0)
    with engine.db.tx() as c:
        c.execute("UPDATE containers SET state_json=? WHERE id=?", (json.dumps(st, sort_keys=True), cid))
    (engine.paths.run / "boot_id").write_text("an-earlier-boot")
    after = Engine(engine.paths.root, engine.paths.run)
    try:
        assert after.container(cid).status == "exited"
        after.start(cid)                                         # not "container already exists"
        assert after.container(cid).status == "running"
    finally:
        after.close()
