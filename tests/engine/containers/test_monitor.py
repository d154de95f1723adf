"""conmon's command line, sync pipe, exit files and liveness, on fakes."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.containers import monitor
from engine.containers.monitor import MonitorFiles
from engine.containers.runtime import Runtime
from engine.errors import CommandNotExecutable, CommandNotFound, RuntimeFailure

CID = "a" * 64


def files(tmp_path: Path) -> MonitorFiles:
    (tmp_path / "b").mkdir(exist_ok=True)
    (tmp_path / "exits").mkdir(exist_ok=True)
    return MonitorFiles(CID, tmp_path / "b", tmp_path / "exits")


def test_argv_like_podman(tmp_path: Path) -> None:
    rt = Runtime("runc", "/usr/sbin/runc", tmp_path / "rt")
    f = files(tmp_path)
    argv = monitor.conmon_argv("/usr/bin/conmon", rt, f, name="web", tty=True, stdin=True,
                               leave_stdin_open=True, log_size_max=1024,
                               exit_command=["/py", "-m", "tui", "container", "cleanup", CID],
                               socket_dir=tmp_path / "sock")
    s = " ".join(argv)
    for part in (f"-c {CID}", f"-u {CID}", "-n web", "-r /usr/sbin/runc", f"-b {f.bundle}",
                 f"--exit-dir {f.exit_dir}", f"--persist-dir {f.persist_dir}",
                 f"-l k8s-file:{f.log}", "--full-attach", "-t", "-i", "--leave-stdin-open",
                 "--log-size-max 1024", "--exit-command /py", f"--runtime-arg --root --runtime-arg {rt.root}",
                 f"--conmon-pidfile {f.conmon_pid_file}"):
        assert part in s, part
    assert argv.count("--exit-command-arg") == 5
    plain = monitor.conmon_argv("/c", rt, f, name="x", tty=False, stdin=False, leave_stdin_open=False,
                                log_size_max=None, exit_command=[], socket_dir=tmp_path)
    assert "-t" not in plain and "-i" not in plain and "--exit-command" not in plain


@pytest.mark.parametrize("text,kind", [
    ('exec: "nope": executable file not found in $PATH', CommandNotFound),
    ('exec: "/bin/nope": stat /bin/nope: no such file or directory', CommandNotFound),
    ('exec: "/etc/passwd": permission denied', CommandNotExecutable),
    ("error mounting \"/x\": no such file or directory", RuntimeFailure),
])
def test_start_errors_map_to_docker_codes(text: str, kind: type) -> None:
    err = monitor.start_error(text)
    assert type(err) is kind
    assert err.exit_code == {CommandNotFound: 127, CommandNotExecutable: 126, RuntimeFailure: 125}[kind]


def fake_conmon(tmp_path: Path, body: str) -> str:
    """A stand-in for conmon: writes to the sync pipe like the real one."""
    p = tmp_path / "conmon"
    p.write_text("#!/bin/bash\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(p)


def test_launch_reads_pid_from_sync_pipe(tmp_path: Path) -> None:
    f = files(tmp_path)
    exe = fake_conmon(tmp_path, f'echo $$ > {f.conmon_pid_file}\nprintf \'{{"data": 4242}}\\n\' >&$_OCI_SYNCPIPE\n')
    launched = monitor.launch([exe], f, env=dict(os.environ))
    assert launched.container_pid == 4242 and launched.conmon_pid > 0
    assert (f.persist_dir).is_dir()


def test_launch_reports_runtime_error(tmp_path: Path) -> None:
    f = files(tmp_path)
    import json
    msg = 'time="x" level=error msg="runc create failed: exec: \\"nope\\": executable file not found in $PATH"'
    (tmp_path / "msg.json").write_text(json.dumps({"data": -1, "message": msg}) + "\n")
    exe = fake_conmon(tmp_path, f"cat {tmp_path / 'msg.json'} >&$_OCI_SYNCPIPE\n")
    with pytest.raises(CommandNotFound, match='exec: "nope": executable file not found'):
        monitor.launch([exe], f, env=dict(os.environ))


def test_launch_without_report_is_a_failure_with_log(tmp_path: Path) -> None:
    f = files(tmp_path)
    exe = fake_conmon(tmp_path, "echo 'conmon: bad option' >&2\nexit 1\n")
    with pytest.raises(RuntimeFailure, match="bad option"):
        monitor.launch([exe], f, env=dict(os.environ))


def test_launch_removes_stale_exit_files(tmp_path: Path) -> None:
    f = files(tmp_path)
    f.persist_dir.mkdir()
    f.exit_file.write_text("1")
    f.persist_exit_file.write_text("1")
    exe = fake_conmon(tmp_path, "printf '{\"data\": 7}' >&$_OCI_SYNCPIPE\n")
    monitor.launch([exe], f, env=dict(os.environ))
    assert monitor.read_exit(f) is None


def test_read_exit(tmp_path: Path) -> None:
    f = files(tmp_path)
    assert monitor.read_exit(f) is None
    f.exit_file.write_text("")                 # being written
    assert monitor.read_exit(f) is None
    f.exit_file.write_text("137")
    ex = monitor.read_exit(f)
    assert ex is not None and ex.code == 137 and not ex.oom_killed
    assert ex.finished_ns == os.stat(f.exit_file).st_ctime_ns
    f.exit_file.unlink()
    f.persist_dir.mkdir()
    f.persist_exit_file.write_text("3")        # survives a reboot (run dir emptied)
    f.oom_file.touch()
    ex = monitor.read_exit(f)
    assert ex is not None and ex.code == 3 and ex.oom_killed


def test_alive_uses_start_time_against_pid_reuse(tmp_path: Path) -> None:
    def stat_line(pid: int, state: str, start: int) -> None:
        d = tmp_path / str(pid)
        d.mkdir(exist_ok=True)
        fields = [state] + ["0"] * 18 + [str(start)] + ["0"] * 10
        (d / "stat").write_text(f"{pid} (con mon) " + " ".join(fields) + "\n")
    stat_line(10, "S", 5000)
    stat_line(11, "Z", 6000)
    assert monitor.alive(10, 5000, tmp_path)
    assert not monitor.alive(10, 5001, tmp_path)          # same pid, another process
    assert not monitor.alive(11, 6000, tmp_path)          # zombie
    assert not monitor.alive(12, 1, tmp_path) and not monitor.alive(0, 0, tmp_path)
    assert monitor.proc_start_ticks(10, tmp_path) == 5000


def test_real_process_start_time() -> None:
    ticks = monitor.proc_start_ticks(os.getpid())
    assert ticks and monitor.alive(os.getpid(), ticks)
    assert monitor.boot_id() != ""
