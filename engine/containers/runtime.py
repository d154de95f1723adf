"""The one adapter for the OCI runtime (runc or crun).

Every call to the runtime binary goes through :class:`Runtime`, so tests and
the monitor see the same command lines. Which runtime to use is decided
once per state root and remembered in the ``settings`` table: crun where a
trivial container actually runs (it refuses hybrid cgroup hosts), else runc.
``PORTSIDE_RUNTIME`` (a name or a path) overrides the choice.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import RuntimeFailure
from ..paths import Paths
from ..state import Store

CANDIDATES = ("crun", "runc")
SETTING = "runtime"
TIMEOUT = 60.0

_MSG_RE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def runtime_error_text(output: str) -> str:
    """The human part of a runtime's error output (runc logs ``msg="..."`` lines)."""
    msgs = []
    for line in output.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                msg = json.loads(line).get("msg")
            except ValueError:
                msg = None
            if msg:
                msgs.append(str(msg))
                continue
        m = _MSG_RE.search(line)
        msgs.append(m.group(1).replace('\\"', '"') if m else line)
    return "; ".join(msgs)


def _gone(text: str) -> bool:
    t = text.lower()
    return ("does not exist" in t or "not running" in t or "no such process" in t
            or "container not found" in t or "process already finished" in t)


@dataclass(frozen=True)
class Runtime:
    """An OCI runtime binary and the state directory it keeps containers in."""

    name: str          # "runc" | "crun" (or the binary's file name)
    path: str          # absolute path of the binary
    root: Path         # passed as --root, under the engine's run dir

    @property
    def global_args(self) -> list[str]:
        return ["--root", str(self.root)]

    def argv(self, *args: str) -> list[str]:
        """The full command line for a runtime subcommand."""
        return [self.path, *self.global_args, *args]

    def _run(self, *args: str, what: str, input: bytes | None = None,
             timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(self.argv(*args), input=input, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            raise RuntimeFailure(f"{self.name} {what} timed out after {timeout:.0f}s",
                                 hint="the host may be overloaded; try again") from err
        except OSError as err:
            raise RuntimeFailure(f"cannot run {self.path}: {err.strerror}",
                                 hint="install runc (apt-get install runc)") from err

    def _fail(self, what: str, cid: str, proc: subprocess.CompletedProcess[bytes]) -> RuntimeFailure:
        text = runtime_error_text(proc.stderr.decode(errors="replace") or
                                  proc.stdout.decode(errors="replace"))
        return RuntimeFailure(f"{self.name} {what} {cid[:12]} failed: {text or f'exit {proc.returncode}'}")

    # -- lifecycle ---------------------------------------------------------------
    def create(self, cid: str, bundle: Path, pid_file: Path, *,
               console_socket: Path | None = None) -> None:
        """``create``: set the container up, its process waiting to be started.

        Raises:
            RuntimeFailure: the runtime refused (the message is the runtime's).
        """
        args = ["create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        proc = self._run(*args, cid, what="create")
        if proc.returncode != 0:
            raise self._fail("create", cid, proc)

    def start(self, cid: str) -> None:
        """``start``: let a created container's process run.

        Raises:
            RuntimeFailure: the runtime refused.
        """
        proc = self._run("start", cid, what="start")
        if proc.returncode != 0:
            raise self._fail("start", cid, proc)

    def kill(self, cid: str, signal: str | int = "KILL", *, all: bool = False) -> bool:
        """Send a signal to the container's init (``all``: to every process).

        Returns:
            False when the container had already stopped (that is success:
            the process is gone either way).

        Raises:
            RuntimeFailure: any other refusal.
        """
        args = ["kill"] + (["--all"] if all else []) + [cid, str(signal)]
        proc = self._run(*args, what="kill")
        if proc.returncode == 0:
            return True
        if _gone(proc.stderr.decode(errors="replace")):
            return False
        raise self._fail("kill", cid, proc)

    def delete(self, cid: str, *, force: bool = False) -> None:
        """Forget the container (removes its cgroups). A missing container is fine.

        Raises:
            RuntimeFailure: the runtime refused (e.g. still running without ``force``).
        """
        args = ["delete"] + (["--force"] if force else []) + [cid]
        proc = self._run(*args, what="delete")
        if proc.returncode != 0 and not _gone(proc.stderr.decode(errors="replace")):
            raise self._fail("delete", cid, proc)

    def delete_begin(self, cid: str, *, force: bool = False) -> Callable[[], None]:
        """Start :meth:`delete` in the background; call the result to wait for it.

        Lets the engine unmount and tear down the network while the runtime
        removes its state and cgroups.

        Raises:
            RuntimeFailure: the runtime binary cannot be run (the returned
                function raises what :meth:`delete` would).
        """
        args = self.argv("delete", *(["--force"] if force else []), cid)
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except OSError as err:
            raise RuntimeFailure(f"cannot run {self.path}: {err.strerror}",
                                 hint="install runc (apt-get install runc)") from err

        def finish() -> None:
            try:
                _out, err = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                proc.wait()
                raise RuntimeFailure(f"{self.name} delete timed out after {TIMEOUT:.0f}s") from exc
            if proc.returncode != 0 and not _gone(err.decode(errors="replace")):
                raise self._fail("delete", cid, subprocess.CompletedProcess(args, proc.returncode, b"", err))

        return finish

    def pause(self, cid: str) -> None:
        """Freeze every process of the container.

        Raises:
            RuntimeFailure: the runtime refused.
        """
        proc = self._run("pause", cid, what="pause")
        if proc.returncode != 0:
            raise self._fail("pause", cid, proc)

    def resume(self, cid: str) -> None:
        """Thaw a paused container.

        Raises:
            RuntimeFailure: the runtime refused.
        """
        proc = self._run("resume", cid, what="resume")
        if proc.returncode != 0:
            raise self._fail("resume", cid, proc)

    # -- reading -------------------------------------------------------------------
    def state(self, cid: str) -> dict[str, Any] | None:
        """The runtime's state JSON (``status``, ``pid``...), or None if it does not know the id."""
        proc = self._run("state", cid, what="state")
        if proc.returncode != 0:
            if _gone(proc.stderr.decode(errors="replace")):
                return None
            raise self._fail("state", cid, proc)
        try:
            value = json.loads(proc.stdout)
        except ValueError as err:
            raise RuntimeFailure(f"{self.name} state {cid[:12]}: unreadable output") from err
        return value if isinstance(value, dict) else None

    def ps(self, cid: str) -> list[int]:
        """Host pids of the container's processes.

        Raises:
            RuntimeFailure: the runtime refused (e.g. not running).
        """
        proc = self._run("ps", "--format", "json", cid, what="ps")
        if proc.returncode != 0:
            raise self._fail("ps", cid, proc)
        try:
            return [int(p) for p in json.loads(proc.stdout or b"[]") or []]
        except (ValueError, TypeError) as err:
            raise RuntimeFailure(f"{self.name} ps {cid[:12]}: unreadable output") from err

    def exec_argv(self, cid: str, process_json: Path, *, tty: bool = False, detach: bool = False,
                  pid_file: Path | None = None, console_socket: Path | None = None) -> list[str]:
        """The command line that runs an extra process (``exec``) in the container."""
        args = ["exec", "--process", str(process_json)]
        if tty:
            args.append("--tty")
        if detach:
            args.append("--detach")
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        return self.argv(*args, cid)

    def version(self) -> str:
        """First line of ``<runtime> --version`` (e.g. ``runc version 1.1.5``)."""
        try:
            proc = subprocess.run([self.path, "--version"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        out = proc.stdout.decode(errors="replace").strip().splitlines()
        return out[0] if out else "unknown"


# -- choosing the runtime -----------------------------------------------------------

def _named(name_or_path: str, paths: Paths) -> Runtime:
    path = name_or_path if "/" in name_or_path else shutil.which(name_or_path)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeFailure(f"OCI runtime {name_or_path!r} not found",
                             hint="install runc or crun, or set PORTSIDE_RUNTIME to its path")
    name = os.path.basename(path)
    return Runtime(name, os.path.abspath(path), paths.run / f"runtime-{name}")


def select(db: Store, paths: Paths, env: dict[str, str] | None = None) -> Runtime:
    """The runtime this engine uses: ``PORTSIDE_RUNTIME``, else the remembered probe result.

    Raises:
        RuntimeFailure: the named runtime is missing, or no candidate works.
    """
    env = dict(os.environ) if env is None else env
    override = env.get("PORTSIDE_RUNTIME", "").strip()
    if override:
        return _named(override, paths)
    stored = db.get_setting(SETTING)
    if stored:
        try:
            return _named(stored, paths)
        except RuntimeFailure:
            pass                     # uninstalled since the probe: probe again
    errors = []
    for cand in CANDIDATES:
        path = shutil.which(cand)
        if not path:
            continue
        rt = Runtime(cand, path, paths.run / f"runtime-{cand}")
        err = probe(rt, paths)
        if err is None:
            db.set_setting(SETTING, path)
            return rt
        errors.append(f"{cand}: {err}")
    raise RuntimeFailure("no working OCI runtime found" + (f" ({'; '.join(errors)})" if errors else ""),
                         hint="apt-get install runc")


def probe(rt: Runtime, paths: Paths) -> str | None:
    """Run a trivial container (``true`` from the host's /usr, read-only) with ``rt``.

    Returns:
        None if it worked, else the runtime's error text.
    """
    tmp = Path(tempfile.mkdtemp(dir=paths.tmp, prefix="probe-"))
    cid = "portside-probe-" + tmp.name.rsplit("-", 1)[-1]
    try:
        rootfs = tmp / "rootfs"
        rootfs.mkdir()
        mounts: list[dict[str, Any]] = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        ]
        for d in ("bin", "sbin", "lib", "lib32", "lib64", "usr"):
            host = Path("/") / d
            if host.is_symlink():
                os.symlink(os.readlink(host), rootfs / d)
            elif host.is_dir():
                (rootfs / d).mkdir()
                mounts.append({"destination": f"/{d}", "type": "bind", "source": str(host),
                               "options": ["rbind", "ro"]})
        true = shutil.which("true") or "/bin/true"
        config = {
            "ociVersion": "1.0.2",
            "process": {"args": [true], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "root": {"path": str(rootfs), "readonly": True},
            "mounts": mounts,
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                     {"type": "uts"}],
                      "cgroupsPath": f"/portside/{cid}"},
        }
        (tmp / "config.json").write_text(json.dumps(config))
        try:
            proc = subprocess.run(rt.argv("run", "--bundle", str(tmp), cid), capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as err:
            return str(err)
        finally:
            subprocess.run(rt.argv("delete", "--force", cid), capture_output=True, timeout=30)
        if proc.returncode != 0:
            return runtime_error_text(proc.stderr.decode(errors="replace")) or f"exit {proc.returncode}"
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find_conmon(env: dict[str, str] | None = None) -> str:
    """Path of the conmon binary (``PORTSIDE_CONMON`` overrides).

    Raises:
        RuntimeFailure: conmon is not installed.
    """
    env = dict(os.environ) if env is None else env
    path = env.get("PORTSIDE_CONMON") or shutil.which("conmon") or ""
    if not path or not os.access(path, os.X_OK):
        raise RuntimeFailure("conmon (the container monitor) is not installed",
                             hint="apt-get install conmon")
    return path


__all__ = ["Runtime", "select", "probe", "find_conmon", "runtime_error_text"]
