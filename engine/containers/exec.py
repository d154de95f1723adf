"""``exec``: run another process in a running container through the OCI runtime.

The process is described by a ``process.json`` built from the container's
own ``config.json`` process (capabilities, rlimits, no-new-privileges, so an
exec'd process never gets more than the container has) with the command,
environment, user, working directory and terminal of the request, and run
with ``<runtime> --root R exec --process process.json <id>``:

- foreground without a terminal: the runtime hands our stdio fds straight to
  the process and exits with its exit code;
- with a terminal (``-t``): the runtime runs on one end of a pty pair of
  ours (it makes the process's own pty and copies to and from that one), and
  :mod:`.pty` proxies the other end to our terminal;
- detached (``-d``): ``--detach``, stdio on /dev/null, or under a conmon
  exec monitor when a terminal is wanted (someone must hold the pty master).

Failures of the runtime itself (not of the process) are read from its JSON
log and mapped to Docker's exit codes: 127 command not found, 126 anything
else that prevented the start.
"""
from __future__ import annotations

import json
import os
import posixpath
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from ..errors import CommandNotExecutable, CommandNotFound, InvalidArgument, RuntimeFailure
from .attach import AttachIO
from .copy import RootDir
from .pty import open_pty, proxy

if TYPE_CHECKING:
    from .users import ExecUser

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RuntimeCommand(Protocol):
    """What exec needs of the OCI runtime adapter."""

    @property
    def path(self) -> str:
        """The runtime binary."""
        ...

    @property
    def root(self) -> str:
        """The runtime's state directory (``--root``)."""
        ...


class ExecFailed(RuntimeFailure):
    """The runtime could not start the exec'd process (exit 126, like Docker)."""

    exit_code = 126


@dataclass(frozen=True)
class ExecSpec:
    """What ``portside exec`` was asked to run (Docker's flags, parsed)."""

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()          # "KEY=VALUE" added to the container's env
    workdir: str = ""                  # "" = the container's working dir
    user: str = ""                     # "" = the container's user
    tty: bool = False
    interactive: bool = False
    detach: bool = False


@dataclass(frozen=True)
class ExecResult:
    """The outcome of an exec whose output was captured."""

    exit_code: int
    stdout: bytes
    stderr: bytes


def merge_exec_env(container_env: Sequence[str], extra: Sequence[str], *, tty: bool) -> list[str]:
    """The container's process env with ``-e`` values on top (later wins per key).

    Raises:
        InvalidArgument: an ``-e`` value without a name.
    """
    merged: dict[str, str] = {}
    for item in container_env:
        k, _, v = item.partition("=")
        if k:
            merged[k] = v
    for item in extra:
        k, sep, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid environment variable {item!r}", hint="use KEY=VALUE")
        if not sep:
            if k not in os.environ:
                continue              # Docker drops -e KEY when the host has no KEY
            v = os.environ[k]
        merged[k] = v
    if "PATH" not in merged:
        merged = {"PATH": DEFAULT_PATH, **merged}
    if tty and "TERM" not in merged:
        merged["TERM"] = "xterm"
    return [f"{k}={v}" for k, v in merged.items()]


def build_process(base: Mapping[str, Any], *, argv: Sequence[str], env: Sequence[str], cwd: str,
                  user: ExecUser | None, tty: bool,
                  size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI ``process`` object for an exec.

    Args:
        base: the container's ``config.json`` ``process`` (capabilities,
            rlimits, noNewPrivileges, apparmor/selinux labels are kept).
        argv: the command.
        env: the full environment.
        cwd: absolute working directory.
        user: who to run as (None: the container's user).
        tty: give the process a terminal.
        size: (rows, cols) of that terminal.

    Raises:
        InvalidArgument: an empty command or a relative working directory.
    """
    if not argv or not argv[0]:
        raise InvalidArgument("exec needs a command", hint="e.g. portside exec CONTAINER sh")
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is not an absolute path",
                              hint="use -w /some/dir")
    proc: dict[str, Any] = {k: v for k, v in base.items()
                            if k not in ("args", "env", "cwd", "terminal", "consoleSize", "user")}
    proc["args"] = list(argv)
    proc["env"] = list(env)
    proc["cwd"] = cwd
    proc["terminal"] = tty
    if tty and size:
        proc["consoleSize"] = {"height": size[0], "width": size[1]}
    if user is not None:
        proc["user"] = {"uid": user.uid, "gid": user.gid,
                        **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})}
    else:
        proc["user"] = dict(base.get("user") or {"uid": 0, "gid": 0})
    return proc


def check_command(root: RootDir, argv0: str, env: Sequence[str], cwd: str) -> None:
    """Fail early, with Docker's exit codes, if the command cannot be started.

    Looks the command up in the container (``PATH`` from ``env`` for a bare
    name, relative names against ``cwd``) without running anything.

    Raises:
        CommandNotFound: nothing by that name (exit 127).
        CommandNotExecutable: it is a directory or has no execute bit (exit 126).
    """
    if "/" in argv0:
        candidates = [argv0 if argv0.startswith("/") else posixpath.join(cwd, argv0)]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [posixpath.join(d or ".", argv0) if d.startswith("/") else posixpath.join(cwd, d, argv0)
                      for d in path.split(":")]
    seen_non_exec = None
    for c in candidates:
        ok = root.is_executable(c)
        if ok:
            return
        if ok is False and seen_non_exec is None:
            seen_non_exec = c
    if seen_non_exec is not None:
        raise CommandNotExecutable(f"{argv0}: permission denied: {seen_non_exec} is not an executable file",
                                   hint="check the file's mode (chmod +x) or the command name")
    where = "" if "/" in argv0 else " in $PATH"
    raise CommandNotFound(f"{argv0}: executable file not found{where} in the container",
                          hint="check the command name, or install it in the image")


def runtime_error(log_path: Path) -> str | None:
    """The last error the runtime logged (``--log-format json``), if any."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", "")).strip() or None
    return None


def error_for(message: str) -> RuntimeFailure:
    """Map a runtime exec error message to Docker's exit code and a hint."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec:" in low:
        return CommandNotFound(f"OCI runtime exec failed: {message}",
                               hint="check the command name, or install it in the image")
    if "permission denied" in low and "exec:" in low:
        return CommandNotExecutable(f"OCI runtime exec failed: {message}",
                                    hint="check the file's mode and the user (-u)")
    return ExecFailed(f"OCI runtime exec failed: {message}")


class Exec:
    """One exec in a running container."""

    def __init__(self, runtime: RuntimeCommand, runtime_id: str, process: Mapping[str, Any],
                 scratch: Path) -> None:
        """Args:
            runtime: the OCI runtime adapter.
            runtime_id: the container's name in the runtime.
            process: the ``process.json`` content (see :func:`build_process`).
            scratch: a directory for this exec's files (created; removed by
                :meth:`cleanup`).
        """
        self.runtime = runtime
        self.runtime_id = runtime_id
        self.process = dict(process)
        self.dir = scratch
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.spec_path = self.dir / "process.json"
        self.log_path = self.dir / "runtime.log"
        self.pid_path = self.dir / "pid"
        self.spec_path.write_text(json.dumps(self.process))

    def argv(self, *extra: str) -> list[str]:
        """The runtime command line; its own errors go to a JSON log we can read back."""
        return [self.runtime.path, "--root", str(self.runtime.root), "--log", str(self.log_path),
                "--log-format", "json", "exec", "--process", str(self.spec_path),
                "--pid-file", str(self.pid_path), *extra, self.runtime_id]

    def _finish(self, code: int) -> int:
        msg = runtime_error(self.log_path)
        if msg is not None:
            raise error_for(msg)
        return code

    def run(self, io: AttachIO) -> int:
        """Run in the foreground with ``io`` as the process's stdio; return its exit code.

        Raises:
            CommandNotFound, CommandNotExecutable, ExecFailed: the runtime
                could not start the process.
        """
        if self.process.get("terminal"):
            return self._run_tty(io)
        stdin: int = io.stdin if io.stdin is not None else subprocess.DEVNULL
        proc = subprocess.Popen(self.argv(), stdin=stdin, stdout=io.stdout, stderr=io.stderr,
                                close_fds=True)
        return self._finish(_wait(proc))

    def _run_tty(self, io: AttachIO) -> int:
        size = self.process.get("consoleSize") or {}
        master, slave = open_pty((int(size.get("height") or 24), int(size.get("width") or 80)))
        try:
            proc = subprocess.Popen(self.argv(), stdin=slave, stdout=slave, stderr=slave,
                                    close_fds=True, start_new_session=True)
        finally:
            os.close(slave)

        def tell_runtime() -> None:
            # The runtime resizes the container's pty from its stdin on SIGWINCH.
            try:
                os.kill(proc.pid, signal.SIGWINCH)
            except ProcessLookupError:
                pass

        pidfd = os.pidfd_open(proc.pid)
        try:
            proxy(master, io, done_fd=pidfd, on_resize=tell_runtime)
        finally:
            os.close(pidfd)
            os.close(master)
        return self._finish(_wait(proc))

    def capture(self, stdin: bytes | None = None, timeout: float | None = None) -> ExecResult:
        """Run in the foreground without a terminal and collect its output.

        Raises:
            CommandNotFound, CommandNotExecutable, ExecFailed: the runtime
                could not start the process.
            RuntimeFailure: ``timeout`` passed (the runtime is killed).
        """
        proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeFailure(f"exec did not finish within {timeout}s") from None
        return ExecResult(self._finish(proc.returncode), out, err)

    def detach(self) -> int:
        """Start without waiting (``exec -d``, no terminal); return the process's host pid.

        Raises:
            CommandNotFound, CommandNotExecutable, ExecFailed: the runtime
                could not start the process.
        """
        proc = subprocess.run(self.argv("--detach"), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
        self._finish(proc.returncode)
        if proc.returncode != 0:
            raise ExecFailed(f"OCI runtime exec failed with exit code {proc.returncode}")
        return _read_pid(self.pid_path)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def detach_with_monitor(conmon: str, runtime: RuntimeCommand, runtime_id: str,
                        process: Mapping[str, Any], session_dir: Path, *,
                        timeout: float = 30.0) -> int:
    """Start a detached exec that has a terminal (``exec -dt``) under conmon.

    A pty needs a holder for its master or the process gets SIGHUP; conmon
    (``--exec``) holds it, logs the output to ``session_dir/log`` and writes
    the exit code to ``session_dir/exit/<runtime_id>``. The session dir is
    kept until the container is removed (or the next exec prunes it).

    Returns:
        The process's host pid.

    Raises:
        RuntimeFailure: conmon or the runtime failed to start it.
    """
    session_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(session_dir, 0o700)
    spec = session_dir / "process.json"
    spec.write_text(json.dumps(dict(process)))
    pid_file = session_dir / "pid"
    exit_dir = session_dir / "exit"
    exit_dir.mkdir(exist_ok=True)
    argv = [conmon, "--exec", "--exec-process-spec", str(spec), "-c", runtime_id,
            "-u", session_dir.name, "-r", runtime.path,
            "--runtime-arg", "--root", "--runtime-arg", str(runtime.root),
            "-b", str(session_dir), "-p", str(pid_file), "--exit-dir", str(exit_dir),
            "-l", f"k8s-file:{session_dir / 'log'}", "--socket-dir-path", str(session_dir),
            "--full-attach", "-t", "--log-level", "error"]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, close_fds=True, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip():
            return _read_pid(pid_file)
        if any(exit_dir.iterdir()):
            break
        if proc.returncode != 0:
            break
        time.sleep(0.02)
    detail = (proc.stderr or proc.stdout or "").strip()
    raise ExecFailed(f"cannot start the detached exec: {detail or 'the monitor gave no reason'}")


def prune_sessions(sessions: Path) -> None:
    """Remove detached-exec session dirs whose process has exited."""
    if not sessions.is_dir():
        return
    for d in sessions.iterdir():
        exit_dir = d / "exit"
        if exit_dir.is_dir() and any(exit_dir.iterdir()):
            shutil.rmtree(d, ignore_errors=True)


def new_exec_id() -> str:
    return uuid.uuid4().hex


def scratch_dir(base: Path) -> Path:
    """A fresh private directory for one exec under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="exec-", dir=base))


def _wait(proc: subprocess.Popen) -> int:  # type: ignore[type-arg]
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            # ctrl-c without a terminal reaches the runtime too (same process
            # group); it forwards the signal to the process. Keep waiting.
            continue
    return 128 - code if code < 0 else code


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as err:
        raise ExecFailed(f"the runtime did not report the exec'd process ({path})") from err


__all__ = ["Exec", "ExecSpec", "ExecResult", "ExecFailed", "build_process", "check_command",
           "new_exec_id", "scratch_dir", "runtime_error", "error_for",
           "merge_exec_env", "detach_with_monitor", "prune_sessions"]
