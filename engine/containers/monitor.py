"""conmon, the per-container monitor, launched the way Podman launches it.

conmon double-forks and becomes the parent (subreaper) of the container, so
the container outlives portside. It runs ``<runtime> create``, reports the
container pid (or the runtime's error) on the ``_OCI_SYNCPIPE`` pipe as JSON
``{"data": <pid or -1>, "message": ...}``, copies the container's output to
the k8s-file log, writes the exit code to ``<exit-dir>/<id>`` and
``<persist-dir>/exit``, and finally execs the exit command (``portside
container cleanup <id>``), which is how cleanup and restart policies work
without a daemon.

Files for one container (all in the bundle dir ``containers/<id>/`` except
the exit file, which lives in the run dir like Podman's):
``config.json``, ``ctr.log``, ``pidfile``, ``conmon.pid``, ``conmon.log``,
``persist/exit``, ``persist/oom``, ``attach`` (SOCK_SEQPACKET), ``ctl`` and
``winsz`` (FIFOs).
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import CommandNotExecutable, CommandNotFound, RuntimeFailure
from .runtime import Runtime, runtime_error_text

SYNC_TIMEOUT = 120.0


@dataclass(frozen=True)
class MonitorFiles:
    """Where conmon keeps one container's files."""

    cid: str
    bundle: Path          # containers/<id>
    exit_dir: Path        # <run>/exits

    @property
    def config(self) -> Path:
        return self.bundle / "config.json"

    @property
    def log(self) -> Path:
        return self.bundle / "ctr.log"

    @property
    def pid_file(self) -> Path:
        return self.bundle / "pidfile"

    @property
    def conmon_pid_file(self) -> Path:
        return self.bundle / "conmon.pid"

    @property
    def conmon_log(self) -> Path:
        return self.bundle / "conmon.log"

    @property
    def persist_dir(self) -> Path:
        return self.bundle / "persist"

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.cid

    @property
    def persist_exit_file(self) -> Path:
        return self.persist_dir / "exit"

    @property
    def oom_file(self) -> Path:
        return self.persist_dir / "oom"

    @property
    def attach_socket(self) -> Path:
        """conmon's attach socket (``--full-attach``: in the bundle dir)."""
        return self.bundle / "attach"

    @property
    def ctl(self) -> Path:
        """FIFO taking ``"<type> <h> <w>\\n"`` (1 = resize, 2 = reopen log)."""
        return self.bundle / "ctl"

    @property
    def winsz(self) -> Path:
        return self.bundle / "winsz"


@dataclass(frozen=True)
class Exit:
    """What an exit file says."""

    code: int
    finished_ns: int      # the exit file's ctime, as Podman takes it
    oom_killed: bool


@dataclass(frozen=True)
class Launched:
    """A started monitor."""

    container_pid: int
    conmon_pid: int
    conmon_start: int     # clock ticks since boot, /proc/<pid>/stat field 22


def conmon_argv(conmon: str, runtime: Runtime, files: MonitorFiles, *, name: str, tty: bool,
                stdin: bool, leave_stdin_open: bool, log_size_max: int | None,
                exit_command: Sequence[str], socket_dir: Path) -> list[str]:
    """conmon's command line for one container (as Podman builds it)."""
    argv = [
        conmon, "--api-version", "1",
        "-c", files.cid, "-u", files.cid, "-n", name,
        "-r", runtime.path, "-b", str(files.bundle),
        "-p", str(files.pid_file), "--conmon-pidfile", str(files.conmon_pid_file),
        "--exit-dir", str(files.exit_dir), "--persist-dir", str(files.persist_dir),
        "-l", f"k8s-file:{files.log}", "--log-level", "warning",
        "--socket-dir-path", str(socket_dir), "--full-attach",
    ]
    for arg in runtime.global_args:
        argv += ["--runtime-arg", arg]
    if tty:
        argv.append("-t")
    if stdin:
        argv.append("-i")
        if leave_stdin_open:
            argv.append("--leave-stdin-open")
    if log_size_max:
        argv += ["--log-size-max", str(log_size_max)]
    if exit_command:
        argv += ["--exit-command", exit_command[0]]
        for a in exit_command[1:]:
            argv += ["--exit-command-arg", a]
    return argv


def launch(argv: Sequence[str], files: MonitorFiles, *, env: Mapping[str, str],
           proc_root: Path = Path("/proc"), timeout: float = SYNC_TIMEOUT) -> Launched:
    """Start conmon and wait until the runtime has created the container.

    Args:
        argv: from :func:`conmon_argv`.
        files: the container's monitor files.
        env: conmon's environment (the exit command inherits it).
        proc_root: /proc, for the monitor's start time.
        timeout: how long to wait for the runtime.

    Returns:
        The container's and the monitor's pids.

    Raises:
        CommandNotFound: the command does not exist in the container (exit 127).
        CommandNotExecutable: it exists but cannot be executed (exit 126).
        RuntimeFailure: the runtime or conmon failed for another reason.
    """
    files.persist_dir.mkdir(exist_ok=True)
    for stale in (files.exit_file, files.persist_exit_file, files.oom_file, files.pid_file,
                  files.conmon_pid_file):
        try:
            stale.unlink()
        except FileNotFoundError:
            pass
    r, w = os.pipe()
    try:
        with open(files.conmon_log, "ab") as log:
            try:
                proc = subprocess.Popen(list(argv), env={**env, "_OCI_SYNCPIPE": str(w)},
                                        pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=log, cwd=files.bundle)
            except OSError as err:
                raise RuntimeFailure(f"cannot start conmon: {err.strerror}",
                                     hint="apt-get install conmon") from err
        os.close(w)
        w = -1
        # The first conmon process exits as soon as it has forked the monitor.
        proc.wait()
        message = _read_sync(r, timeout)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if message is None:
        raise RuntimeFailure(f"conmon exited without reporting the container: {_tail(files.conmon_log)}",
                             hint=f"see {files.conmon_log}")
    pid = message.get("data")
    if not isinstance(pid, int) or pid <= 0:
        text = runtime_error_text(str(message.get("message") or "")) or _tail(files.conmon_log)
        raise start_error(text)
    conmon_pid = _read_int(files.conmon_pid_file)
    start = proc_start_ticks(conmon_pid, proc_root) if conmon_pid else None
    return Launched(pid, conmon_pid or 0, start or 0)


def start_error(text: str) -> RuntimeFailure:
    """Map the runtime's error text to Docker's exit codes (127 not found, 126 not executable)."""
    low = text.lower()
    if "exec" in low and ("executable file not found" in low or "no such file or directory" in low):
        return CommandNotFound(f"the container's command was not found: {text}",
                               hint="check the command and the image's PATH")
    if "exec" in low and "permission denied" in low:
        return CommandNotExecutable(f"the container's command cannot be executed: {text}",
                                    hint="is it a directory, or missing its execute bit?")
    return RuntimeFailure(f"the runtime failed to create the container: {text or 'no error text'}")


def _read_sync(fd: int, timeout: float) -> dict | None:  # type: ignore[type-arg]
    """The first JSON message conmon writes on the sync pipe (None at EOF)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeFailure(f"the runtime did not create the container within {timeout:.0f}s",
                                 hint="the host may be overloaded; try again")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return _parse_sync(buf) if buf.strip() else None
        buf += chunk
        msg = _parse_sync(buf)
        if msg is not None:
            return msg


def _parse_sync(buf: bytes) -> dict | None:  # type: ignore[type-arg]
    line = buf.split(b"\n", 1)[0] if b"\n" in buf else buf
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()[-limit:]
    except OSError:
        return "no monitor log"
    lines = [ln for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return "; ".join(lines[-5:]) or "no monitor log"


# -- reading what the monitor left ----------------------------------------------

def read_exit(files: MonitorFiles) -> Exit | None:
    """The exit code and time if the container has exited, else None.

    The exit dir (tmpfs) is read first; the persist copy in the container
    dir survives a reboot.
    """
    for path in (files.exit_file, files.persist_exit_file):
        try:
            st = os.stat(path)
            text = path.read_text().strip()
        except OSError:
            continue
        if not text:
            continue               # being written; the caller looks again
        try:
            code = int(text)
        except ValueError:
            code = 255
        return Exit(code, st.st_ctime_ns, files.oom_file.exists())
    return None


def proc_start_ticks(pid: int, proc_root: Path = Path("/proc")) -> int | None:
    """A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        data = (proc_root / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and ')': split after the last ')'.
    rest = data[data.rfind(b")") + 2:].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, start_ticks: int, proc_root: Path = Path("/proc")) -> bool:
    """Whether the process that had ``pid`` at ``start_ticks`` is still running (not a zombie)."""
    if pid <= 0:
        return False
    try:
        data = (proc_root / str(pid) / "stat").read_bytes()
    except OSError:
        return False
    rest = data[data.rfind(b")") + 2:].split()
    if not rest or rest[0] in (b"Z", b"X"):
        return False
    try:
        return not start_ticks or int(rest[19]) == start_ticks
    except (IndexError, ValueError):
        return False


def boot_id(proc_root: Path = Path("/proc")) -> str:
    """This boot's id; a container recorded under another boot is not running."""
    try:
        return (proc_root / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def remove_files(files: MonitorFiles) -> None:
    """Remove the exit file in the run dir (the rest goes with the container dir)."""
    try:
        files.exit_file.unlink()
    except FileNotFoundError:
        pass
