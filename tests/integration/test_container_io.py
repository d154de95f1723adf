"""exec, attach, cp, diff, commit and top on real busybox containers (root, runc, conmon).

One engine on a private root for the module, with the built-in busybox
image. Every container a test makes is removed (``rm -f``) when the test
ends, even when it fails; the root is a temp dir.
"""
from __future__ import annotations

import io
import os
import pty
import secrets
import select
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine import (CommandNotExecutable, CommandNotFound, Engine, InvalidArgument,
                    InvalidState)
from engine.containers import rootfs
from engine.containers.attach import AttachIO
from engine.containers.copy import CopyError
from tests.conftest import REPO, busybox_engine, container_maker, remove_containers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = busybox_engine(tmp_path_factory.mktemp("cio") / "root")
    yield e
    remove_containers(e)
    e.close()


@pytest.fixture
def make(engine: Engine) -> Iterator[Callable[..., str]]:
    """Create (and by default start) a container, busybox unless ``image=``; removed afterwards."""
    yield from container_maker(engine, "cio-")


def cli(engine: Engine, *args: str, input: bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "tui", "--root", str(engine.paths.root),
                           "--run-dir", str(engine.paths.run), *args],
                          input=input, capture_output=True, timeout=timeout, cwd=REPO)


def run_in_pty(argv: list[str], script: list[tuple[float, bytes]], *, rows: int = 30, cols: int = 100,
               timeout: float = 30) -> tuple[int, bytes]:
    """Run ``argv`` with a pty as its terminal, typing ``script`` (delay, bytes); return (code, output)."""
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO,
                            start_new_session=True)
    os.close(slave)
    out = bytearray()

    def typer() -> None:
        for delay, data in script:
            time.sleep(delay)
            os.write(master, data)

    t = threading.Thread(target=typer, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    try:
        code = proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, bytes(out)


# -- exec ------------------------------------------------------------------------------

def test_exec_exit_code_env_user_workdir(engine: Engine, make: Callable[..., str]) -> None:
    cid = make(env=("FROM_RUN=1",))
    assert engine.exec_run(cid, ["sh", "-c", "exit 3"]).exit_code == 3
    r = engine.exec_run(cid, ["sh", "-c", "echo $FROM_RUN $FOO; id -u; id -g; pwd"],
                        env=["FOO=bar"], user="nobody", workdir="/tmp")
    assert r.exit_code == 0
    assert r.stdout.decode().split() == ["1", "bar", "65534", "65534", "/tmp"]
    r = engine.exec_run(cid, ["id", "-u"], user="123:45")
    assert r.stdout.strip() == b"123"
    with pytest.raises(InvalidArgument, match="no-such-user"):
        engine.exec_run(cid, ["true"], user="no-such-user")


def test_exec_126_127_as_docker(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()
    with pytest.raises(CommandNotFound) as nf:
        engine.exec_run(cid, ["no-such-command"])
    assert nf.value.exit_code == 127
    with pytest.raises(CommandNotExecutable) as ne:
        engine.exec_run(cid, ["/etc/passwd"])
    assert ne.value.exit_code == 126
    p = cli(engine, "exec", cid, "no-such-command")
    assert p.returncode == 127 and b"not found" in p.stderr
    p = cli(engine, "exec", cid, "sh", "-c", "echo out; echo err >&2; exit 42")
    assert (p.returncode, p.stdout, p.stderr) == (42, b"out\n", b"err\n")


def test_exec_stdin_with_i(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()
    p = cli(engine, "exec", "-i", cid, "sh", "-c", "tr a-z A-Z", input=b"shout\n")
    assert (p.returncode, p.stdout) == (0, b"SHOUT\n")
    p = cli(engine, "exec", cid, "cat", input=b"not sent without -i\n")
    assert (p.returncode, p.stdout) == (0, b"")


def test_exec_tty_through_a_pty(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()
    argv = [sys.executable, "-m", "tui", "--root", str(engine.paths.root), "--run-dir",
            str(engine.paths.run), "exec", "-it", cid, "sh"]
    code, out = run_in_pty(argv, [(1.0, b"tty; stty size; echo $TERM\r"), (0.5, b"exit 4\r")],
                           rows=30, cols=100)
    text = out.decode(errors="replace")
    assert code == 4, text
    assert "/dev/pts/" in text and "30 100" in text and "xterm" in text


def test_exec_detached(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()
    t0 = time.monotonic()
    assert engine.exec(cid, ["sh", "-c", "sleep 1; touch /tmp/done"], detach=True) == 0
    assert time.monotonic() - t0 < 1.0
    deadline = time.monotonic() + 10
    while engine.exec_run(cid, ["test", "-e", "/tmp/done"]).exit_code != 0:
        assert time.monotonic() < deadline, "the detached exec never ran"
        time.sleep(0.2)
    # With a terminal the monitor holds it, and the process keeps running.
    assert engine.exec(cid, ["sleep", "77"], detach=True, tty=True) == 0
    assert any(p.command == "sleep 77" for p in engine.top(cid))


def test_exec_needs_a_running_container(engine: Engine, make: Callable[..., str]) -> None:
    cid = make(start=False)
    with pytest.raises(InvalidState, match="created"):
        engine.exec_run(cid, ["true"])


# -- attach -------------------------------------------------------------------------------

def test_attach_keeps_stdout_and_stderr_apart(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo out; echo err >&2; exit 6", start=False)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    code = engine.attach(cid, start=True, stdin=False, io=AttachIO(None, out_w, err_w))
    os.close(out_w)
    os.close(err_w)
    assert code == 6
    assert os.read(out_r, 100) == b"out\n" and os.read(err_r, 100) == b"err\n"


def test_attach_tty_resize_exit_code_and_detach(engine: Engine, make: Callable[..., str]) -> None:
    import fcntl
    import signal
    import struct
    import termios
    cid = make("sh", start=False, tty=True, interactive=True)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    out = bytearray()

    def drive() -> None:
        time.sleep(1.0)
        os.write(master, b"stty size\r")
        time.sleep(0.5)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(os.getpid(), signal.SIGWINCH)     # what the terminal does on a resize
        time.sleep(0.5)
        os.write(master, b"stty size; exit 9\r")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out.extend(os.read(master, 65536))
                except OSError:
                    break

    t = threading.Thread(target=drive, daemon=True)
    t.start()
    code = engine.attach(cid, start=True, io=AttachIO(slave, slave, slave))
    t.join(12)
    text = out.decode(errors="replace")
    assert code == 9, text
    assert "33 111" in text and "40 120" in text
    # Raw mode was restored on the way out.
    assert termios.tcgetattr(slave)[3] & termios.ICANON

    cid2 = make("sh", start=False, tty=True, interactive=True)
    threading.Timer(1.0, lambda: os.write(master, b"\x10\x11")).start()
    assert engine.attach(cid2, start=True, io=AttachIO(slave, slave, slave)) is None
    assert engine.container(cid2).status == "running"
    os.close(master)
    os.close(slave)


def test_attach_to_a_stopped_container_is_refused(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("true", start=False)
    with pytest.raises(InvalidState, match="start -a"):
        engine.attach(cid)


# -- cp ---------------------------------------------------------------------------------------

def test_cp_in_and_out(engine: Engine, make: Callable[..., str], tmp_path: Path) -> None:
    cid = make()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("hello\n")
    engine.copy_to(cid, str(src), "/tmp/in")
    assert engine.exec_run(cid, ["cat", "/tmp/in/sub/f.txt"]).stdout == b"hello\n"
    assert engine.exec_run(cid, ["stat", "-c", "%u", "/tmp/in/sub/f.txt"]).stdout == b"0\n"
    engine.exec_run(cid, ["sh", "-c", "mkdir /out && echo made > /out/a && ln -s a /out/l"])
    engine.copy_from(cid, "/out", str(tmp_path / "got"))
    assert (tmp_path / "got" / "a").read_text() == "made\n"
    assert os.readlink(tmp_path / "got" / "l") == "a"
    p = cli(engine, "cp", f"{cid}:/out/a", str(tmp_path / "viacli"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "viacli").read_text() == "made\n"


def test_cp_symlink_escapes_stay_in_the_container(engine: Engine, make: Callable[..., str],
                                                 tmp_path: Path) -> None:
    cid = make()
    marker = f"portside-escape-{secrets.token_hex(6)}"
    host_target = Path("/tmp") / marker
    assert not host_target.exists()
    # Links an attacker in the container would plant, each pointing at "the host".
    engine.exec_run(cid, ["sh", "-c", "ln -s / /hostroot; ln -s ../../../../../../../tmp /up; "
                                      "ln -s /proc/1/root /pid1root"])
    src = tmp_path / "payload"
    src.write_text("payload\n")
    try:
        engine.copy_to(cid, str(src), f"/hostroot/tmp/{marker}")
        engine.copy_to(cid, str(src), f"/up/{marker}-2")
        assert not host_target.exists() and not Path(f"/tmp/{marker}-2").exists()
        got = engine.exec_run(cid, ["cat", f"/tmp/{marker}", f"/tmp/{marker}-2"]).stdout
        assert got == b"payload\npayload\n"
        # Reading through them yields the container's files, never the host's.
        engine.copy_from(cid, "/hostroot/../../etc/passwd", str(tmp_path / "passwd"))
        ours = engine.exec_run(cid, ["cat", "/etc/passwd"]).stdout
        assert (tmp_path / "passwd").read_bytes() == ours
        # /proc/1/root is a magic link of the container's procfs: its text is
        # resolved in the root like any symlink, never jumped through.
        engine.copy_from(cid, f"/pid1root/tmp/{marker}", str(tmp_path / "via-proc"))
        assert (tmp_path / "via-proc").read_text() == "payload\n"
        with pytest.raises(CopyError, match="no such file"):
            engine.copy_from(cid, "/hostroot" + str(tmp_path), str(tmp_path / "nope"))
    finally:
        for p in (host_target, Path(f"/tmp/{marker}-2")):
            if p.exists() or p.is_symlink():
                p.unlink()


def test_cp_with_a_stopped_container_mounts_and_unmounts(engine: Engine, make: Callable[..., str],
                                                        tmp_path: Path) -> None:
    cid = make("sh", "-c", "echo kept > /kept.txt")
    assert engine.wait(cid) == 0
    merged = rootfs.layout(engine.paths.container(cid))[2]
    deadline = time.monotonic() + 10
    while rootfs.is_mounted(merged) and time.monotonic() < deadline:
        time.sleep(0.1)      # the monitor's exit command releases the mount
    engine.copy_from(cid, "/kept.txt", str(tmp_path / "kept"))
    assert (tmp_path / "kept").read_text() == "kept\n"
    (tmp_path / "new").write_text("new\n")
    engine.copy_to(cid, str(tmp_path / "new"), "/new.txt")
    assert not rootfs.is_mounted(merged)
    assert (engine.paths.container(cid) / "upper" / "new.txt").read_text() == "new\n"


def test_cp_tar_streams(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()
    buf = io.BytesIO()
    engine.get_archive(cid, "/etc/passwd", buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        assert tf.getnames() == ["passwd"]
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        ti = tarfile.TarInfo("streamed.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    p = cli(engine, "cp", "-", f"{cid}:/tmp", input=tar.getvalue())
    assert p.returncode == 0, p.stderr
    assert engine.exec_run(cid, ["cat", "/tmp/streamed.txt"]).stdout == b"abc"
    p = cli(engine, "cp", f"{cid}:/tmp/streamed.txt", "-")
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        assert tf.extractfile("streamed.txt").read() == b"abc"  # type: ignore[union-attr]


# -- diff, commit, top ---------------------------------------------------------------------------

def test_diff_after_touching_files(engine: Engine, make: Callable[..., str]) -> None:
    cid = make()
    assert engine.diff(cid) == []
    engine.exec_run(cid, ["sh", "-c", "touch /tmp/x; rm /etc/group; mkdir -p /opt/app; echo 1 > /opt/app/f"])
    got = [(c.kind, c.path) for c in engine.diff(cid)]
    assert got == [("C", "/etc"), ("D", "/etc/group"), ("A", "/opt"), ("A", "/opt/app"),
                   ("A", "/opt/app/f"), ("C", "/tmp"), ("A", "/tmp/x")]
    p = cli(engine, "diff", cid)
    assert p.stdout.decode().splitlines()[:2] == ["C /etc", "D /etc/group"]


def test_commit_then_run_the_image(engine: Engine, make: Callable[..., str]) -> None:
    cid = make(env=("KEEP=me",))
    engine.exec_run(cid, ["sh", "-c", "echo committed > /etc/motd; rm /etc/group"])
    tag = f"cio-commit-{secrets.token_hex(3)}:v1"
    image = engine.commit(cid, tag, message="a message", author="Tester <t@example.com>",
                          changes=['CMD ["sh", "-c", "cat /etc/motd; echo $KEEP; test -e /etc/group || echo gone"]'])
    try:
        assert tag in image.repo_tags and image.author == "Tester <t@example.com>"
        assert image.history[-1].comment == "a message"
        assert engine.container(cid).status == "running"      # paused and resumed
        run = make(image=tag)
        assert engine.wait(run, timeout=30) == 0
        assert [ln.text for ln in engine.logs(run)] == ["committed", "me", "gone"]
        engine.rm(run, force=True)
        p = cli(engine, "commit", "-c", "ENV A=1", cid)
        assert p.returncode == 0 and p.stdout.startswith(b"sha256:")
        engine.rmi(p.stdout.decode().strip())
    finally:
        engine.rmi(tag)


def test_top_lists_the_processes(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "sleep 301 & sleep 302")
    deadline = time.monotonic() + 10
    while True:
        cmds = [p.command for p in engine.top(cid)]
        if "sleep 301" in cmds and "sleep 302" in cmds:
            break
        assert time.monotonic() < deadline, cmds
        time.sleep(0.1)
    procs = engine.top(cid)
    assert {p.container_pid for p in procs} >= {1}
    assert all(p.user == "root" for p in procs)
    host = {p.command: p.pid for p in procs}
    # Docker's columns (ps -ef) plus CPID, the pid inside the container.
    lines = [ln.split(None, 8) for ln in cli(engine, "top", cid).stdout.decode().splitlines()]
    assert lines[0] == ["UID", "PID", "CPID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    by_cmd = {ln[8]: ln for ln in lines[1:]}
    assert by_cmd["sleep 302"][1:3] == [str(host["sleep 302"]), "1"]   # sh exec'd it: pid 1 inside
    assert by_cmd["sleep 301"][2] not in ("1", "?") and by_cmd["sleep 301"][6] == "?"
    # podman's descriptors: pid and ppid as the container sees them.
    out = cli(engine, "top", cid, "pid", "hpid", "ppid", "args").stdout.decode().splitlines()
    assert out[0].split() == ["PID", "HPID", "PPID", "COMMAND"]
    rows = {ln.split(None, 3)[3]: ln.split()[:3] for ln in out[1:]}
    assert rows["sleep 302"] == ["1", str(host["sleep 302"]), "0"]
    assert rows["sleep 301"][2] == "1"
    # ps options go to the host's ps, cut to the container (Docker's way).
    out = cli(engine, "top", cid, "-o", "pid,comm").stdout.decode().split()
    assert out[:2] == ["PID", "COMMAND"] and sorted(out[2:]) == sorted(
        [str(host["sleep 301"]), str(host["sleep 302"]), "sleep", "sleep"])
    p = cli(engine, "top", cid, "-o", "comm")
    assert p.returncode == 125 and b"Couldn't find PID field" in p.stderr and b"Traceback" not in p.stderr
    engine.stop(cid, timeout=1)
    with pytest.raises(InvalidState):
        engine.top(cid)


def test_top_shows_the_terminal_of_a_tty_container(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "sleep 303 & sleep 304", tty=True)
    deadline = time.monotonic() + 10
    while sorted(p.command for p in engine.top(cid)) != ["sleep 303", "sleep 304"]:
        assert time.monotonic() < deadline, [p.command for p in engine.top(cid)]
        time.sleep(0.1)
    out = cli(engine, "top", cid).stdout.decode()
    rows = [ln.split(None, 8) for ln in out.splitlines()[1:]]
    assert sorted(r[8] for r in rows) == ["sleep 303", "sleep 304"], out
    assert all(r[6].startswith("pts/") for r in rows), out


# -- the CLI as users type it -------------------------------------------------------------

def _cli_argv(engine: Engine, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui", "--root", str(engine.paths.root),
            "--run-dir", str(engine.paths.run), *args]


def test_cli_run_it_is_an_interactive_shell_with_its_exit_code(engine: Engine) -> None:
    name = f"cio-it-{secrets.token_hex(3)}"
    code, out = run_in_pty(_cli_argv(engine, "run", "-it", "--rm", "--name", name, "busybox", "sh"),
                           [(1.5, b"echo hi-$((40+2)); stty size\r"), (0.5, b"exit 3\r")],
                           rows=27, cols=91)
    text = out.decode(errors="replace")
    assert code == 3, text
    assert "hi-42" in text and "27 91" in text


def test_cli_run_it_ctrl_c_reaches_the_container_not_portside(engine: Engine) -> None:
    script = "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 1; done"
    code, out = run_in_pty(_cli_argv(engine, "run", "-it", "--rm", "busybox", "sh", "-c", script),
                           [(1.5, b"\x03")])
    text = out.decode(errors="replace")
    assert code == 7, text
    assert "ready" in text and "got-int" in text


def test_cli_logs_since_and_until(engine: Engine, make: Callable[..., str]) -> None:
    cid = make("sh", "-c", "echo early; sleep 1.5; echo late; sleep 300")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "late" not in cli(engine, "logs", cid).stdout.decode():
        time.sleep(0.1)
    lines = engine.logs(cid)
    early, late = (ln for ln in lines if ln.text in ("early", "late"))
    middle = early.time + (late.time - early.time) / 2
    since = cli(engine, "logs", "--since", middle.isoformat(), cid)
    until = cli(engine, "logs", "--until", middle.isoformat(), cid)
    assert since.returncode == 0 and until.returncode == 0, since.stderr + until.stderr
    assert since.stdout.decode().split() == ["late"]
    assert until.stdout.decode().split() == ["early"]
    stamped = cli(engine, "logs", "-t", "--tail", "1", cid).stdout.decode().split()
    assert stamped[1] == "late" and stamped[0].startswith(str(late.time.year))


def test_cli_run_rm_takes_its_anonymous_volume_along(engine: Engine) -> None:
    before = {v.name for v in engine.volumes()}
    r = cli(engine, "run", "--rm", "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f")
    assert r.returncode == 0, r.stderr
    assert {v.name for v in engine.volumes()} == before
