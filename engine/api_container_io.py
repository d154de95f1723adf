"""Getting into and out of containers: exec, attach, cp, diff, commit, top.

Part of the :class:`engine.Engine` facade. Each verb reads like a recipe:
find the container, check its state, then let ``containers/`` do the work
(:mod:`.containers.exec`, :mod:`.containers.attach`, :mod:`.containers.copy`,
:mod:`.containers.changes`, :mod:`.containers.commit`).
"""
from __future__ import annotations

import json
import os
import shlex
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator

from .base import EngineBase
from .containers import rootfs as rootfs_mod
from .containers.model import StoredConfig
from .errors import EngineError, InvalidArgument, InvalidState, NoSuchContainer
from .records import ContainerInfo, ImageInfo, ProcessInfo

# The code of each verb (attach, exec, copy, diff, commit) is imported by the
# verb itself, so a process that runs one verb loads only that one's code.
if TYPE_CHECKING:
    import socket

    from .containers.attach import AttachIO
    from .containers.changes import FileChange
    from .containers.copy import RootDir
    from .containers.exec import ExecResult, ExecSpec
    from .containers.monitor import MonitorFiles
    from .containers.runtime import Runtime

# Paths the runtime creates in the rootfs as mount points; left out of diff
# and commit when they are empty and the image does not have them.
RUNTIME_MOUNT_POINTS = ("/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                        "/sys/fs/cgroup", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                        "/run/.containerenv", "/.dockerenv")


class ContainerIOAPI(EngineBase):
    """exec, attach, cp, diff, commit and top; part of :class:`engine.Engine`."""

    if TYPE_CHECKING:
        # Provided by the container lifecycle part of the facade (api_containers)
        # and the resources part (api_resources).
        runtime: Runtime

        def container(self, ref: str) -> ContainerInfo: ...
        def container_files(self, cid: str) -> MonitorFiles: ...
        def start(self, ref: str, *,
                  on_created: Callable[[ContainerInfo], None] | None = None) -> ContainerInfo: ...
        def wait(self, ref: str, timeout: float | None = None) -> int: ...
        def pause(self, ref: str) -> ContainerInfo: ...
        def unpause(self, ref: str) -> ContainerInfo: ...

    # -- helpers shared by the verbs ------------------------------------------------
    def _io_container(self, ref: str) -> tuple[ContainerInfo, StoredConfig]:
        info: ContainerInfo = self.container(ref)
        row = self.db.one("SELECT config_json FROM containers WHERE id=?", (info.id,))
        if row is None:
            raise NoSuchContainer(ref)
        return info, StoredConfig.from_json(row["config_json"])

    def _require_running(self, info: ContainerInfo, verb: str) -> None:
        if info.status == "paused":
            raise InvalidState(f"cannot {verb} container {info.name}: it is paused",
                               hint=f"unpause it first: portside unpause {info.name}")
        if info.status != "running":
            raise InvalidState(f"cannot {verb} container {info.name}: it is {info.status}",
                               hint=f"start it first: portside start {info.name}")

    def _live_root(self, info: ContainerInfo) -> RootDir:
        """The root of a running container as its processes see it (volumes included)."""
        from .containers.copy import RootDir
        pid = info.state.pid
        state = self.runtime.state(info.id)
        if not pid or state is None or int(state.get("pid") or 0) != pid:
            raise InvalidState(f"container {info.name} is not running any more",
                               hint="see: portside ps -a")
        return RootDir.open(self.paths.proc / str(pid) / "root", label=f"container {info.name}")

    @contextmanager
    def _container_root(self, info: ContainerInfo) -> Iterator[RootDir]:
        """The container's root file system, running or not.

        A stopped container's overlay is mounted for the duration (under its
        lock, so a concurrent start waits) and unmounted afterwards; its
        volumes are not mounted, as with Docker.
        """
        from .containers.copy import RootDir
        if info.status in ("running", "paused"):
            with self._live_root(info) as root:
                yield root
            return
        cdir = self.paths.container(info.id)
        with self.lock(info.id):
            merged = rootfs_mod.layout(cdir)[2]
            mounted_here = False
            if not rootfs_mod.is_mounted(merged):
                rootfs_mod.mount(cdir, self.image_store.lower_dirs(info.image_id))
                mounted_here = True
            try:
                with RootDir.open(merged, label=f"container {info.name}") as root:
                    yield root
            finally:
                if mounted_here:
                    rootfs_mod.unmount(cdir)

    def _event(self, action: str, cid: str, attrs: dict[str, str]) -> None:
        with self.db.tx() as c:
            self.db.add_event(c, "container", action, cid, attrs)

    # -- exec --------------------------------------------------------------------------
    def _prepare_exec(self, ref: str, spec: ExecSpec) -> tuple[ContainerInfo, dict[str, Any]]:
        from .containers.attach import terminal_size
        from .containers.exec import build_process, check_command, merge_exec_env
        from .containers.users import resolve_user
        if not spec.argv or not spec.argv[0]:
            raise InvalidArgument("exec needs a command", hint="e.g. portside exec CONTAINER sh")
        info, cfg = self._io_container(ref)
        self._require_running(info, "exec in")
        bundle = self.container_files(info.id).config
        try:
            base = json.loads(bundle.read_text()).get("process") or {}
        except (OSError, ValueError) as err:
            raise EngineError(f"cannot read the runtime config of container {info.name}: {err}",
                              hint="restart the container") from err
        cwd = spec.workdir or base.get("cwd") or "/"
        env = merge_exec_env(base.get("env") or list(cfg.env), spec.env, tty=spec.tty)
        size = None
        if spec.tty:
            size = terminal_size(0) or terminal_size(1)
        with self._live_root(info) as root:
            user = None
            if spec.user:
                user = resolve_user(spec.user, root.read_file("/etc/passwd"),
                                    root.read_file("/etc/group"))
            check_command(root, spec.argv[0], env, cwd)
        process = build_process(base, argv=spec.argv, env=env, cwd=cwd, user=user, tty=spec.tty,
                                size=size)
        return info, process

    def exec(self, ref: str, argv: Iterable[str], *, env: Iterable[str] = (), workdir: str = "",
             user: str = "", tty: bool = False, interactive: bool = False, detach: bool = False,
             io: AttachIO | None = None) -> int:
        """Run a command in a running container (``docker exec``).

        In the foreground the command gets ``io`` (default: this process's
        stdin/stdout/stderr; stdin only with ``interactive``) and this call
        returns its exit code. With ``tty`` it gets a terminal, proxied to
        ours in raw mode with resizes passed on. With ``detach`` it returns
        0 as soon as the command has started.

        Args:
            ref: container name or id.
            argv: the command and its arguments.
            env: extra ``KEY=VALUE`` variables (``KEY`` alone: from our environment).
            workdir: working directory (default: the container's).
            user: ``user[:group]`` (names from the container's /etc/passwd).
            tty: allocate a terminal.
            interactive: keep stdin attached.
            detach: do not wait.
            io: file descriptors to use instead of ours.

        Returns:
            The command's exit code (0 when detached).

        Raises:
            NoSuchContainer: no such container.
            InvalidState: it is not running (or is paused).
            InvalidArgument: an empty command, a relative workdir, an unknown user.
            CommandNotFound: the command does not exist (exit 127).
            CommandNotExecutable: it cannot be executed (exit 126).
            RuntimeFailure: the runtime failed otherwise.
        """
        from .containers.attach import AttachIO
        from .containers.exec import (Exec, ExecSpec, detach_with_monitor, new_exec_id,
                                      prune_sessions, scratch_dir)
        spec = ExecSpec(tuple(argv), tuple(env), workdir, user, tty, interactive, detach)
        info, process = self._prepare_exec(ref, spec)
        rt = self.runtime
        rid = info.id
        attrs = {"name": info.name, "execCommand": shlex.join(spec.argv)}
        if detach and tty:
            from .containers.runtime import find_conmon
            sessions = self.paths.container(info.id) / "exec"
            prune_sessions(sessions)
            pid = detach_with_monitor(find_conmon(), rt, rid, process, sessions / new_exec_id()[:12])
            self._event("exec_start", info.id, {**attrs, "pid": str(pid)})
            return 0
        ex = Exec(rt, rid, process, scratch_dir(self.paths.run / "exec"))
        try:
            if detach:
                pid = ex.detach()
                self._event("exec_start", info.id, {**attrs, "pid": str(pid)})
                return 0
            io = io or AttachIO(0 if interactive else None, 1, 2)
            if not interactive and io.stdin is not None:
                io = AttachIO(None, io.stdout, io.stderr)
            self._event("exec_start", info.id, attrs)
            code = ex.run(io)
            self._event("exec_die", info.id, {**attrs, "exitCode": str(code)})
            return code
        finally:
            ex.cleanup()

    def exec_run(self, ref: str, argv: Iterable[str], *, env: Iterable[str] = (), workdir: str = "",
                 user: str = "", stdin: bytes | None = None,
                 timeout: float | None = None) -> ExecResult:
        """Run a command in a running container and collect its output (no terminal).

        For front ends that show the result rather than a live terminal.

        Returns:
            Exit code, stdout and stderr.

        Raises:
            The same as :meth:`exec`; RuntimeFailure also when ``timeout`` passes.
        """
        from .containers.exec import Exec, ExecSpec, scratch_dir
        spec = ExecSpec(tuple(argv), tuple(env), workdir, user)
        info, process = self._prepare_exec(ref, spec)
        ex = Exec(self.runtime, info.id, process,
                  scratch_dir(self.paths.run / "exec"))
        attrs = {"name": info.name, "execCommand": shlex.join(spec.argv)}
        try:
            self._event("exec_start", info.id, attrs)
            result = ex.capture(stdin, timeout)
            self._event("exec_die", info.id, {**attrs, "exitCode": str(result.exit_code)})
            return result
        finally:
            ex.cleanup()

    # -- attach -------------------------------------------------------------------------
    def attach(self, ref: str, *, stdin: bool = True, detach_keys: str | None = None,
               io: AttachIO | None = None, start: bool = False) -> int | None:
        """Connect this terminal (or ``io``) to a container's stdio (``docker attach``).

        Output keeps stdout and stderr apart (one stream with a terminal).
        Input goes to the container when it was created with ``-i`` and
        ``stdin`` is true; the end of our input closes the container's stdin
        (unless its monitor was told to leave it open). With a terminal our
        stdin is put in raw mode (restored on return), window size changes
        are passed on, and the detach keys leave the container running.

        Args:
            ref: container name or id.
            stdin: send our input (``--no-stdin`` turns it off).
            detach_keys: Docker's format; default ctrl-p,ctrl-q; "" disables.
            io: file descriptors to use instead of ours.
            start: start the container (``start -a``, ``run`` without ``-d``);
                the socket is connected after the runtime created it and
                before its process runs, so no output is missed.

        Returns:
            The container's exit code, or None when the user detached.

        Raises:
            NoSuchContainer: no such container.
            InvalidState: it is not running (and ``start`` was not asked), or paused.
            InvalidArgument: malformed detach keys.
            RuntimeFailure: the monitor is gone; and whatever ``start`` raises.
        """
        from .containers.attach import (DEFAULT_DETACH_KEYS, AttachIO, AttachSession, RawTerminal,
                                        WinchWatcher, connect, parse_detach_keys, send_resize,
                                        terminal_size)
        keys = parse_detach_keys(DEFAULT_DETACH_KEYS if detach_keys is None else detach_keys)
        info: ContainerInfo = self.container(ref)
        files = self.container_files(info.id)
        sock = None
        if start and info.status not in ("running", "paused"):
            connected: list[socket.socket] = []

            def on_created(_created: ContainerInfo) -> None:
                connected.append(connect(files.attach_socket))

            try:
                info = self.start(info.id, on_created=on_created)
            except BaseException:
                for s in connected:
                    s.close()
                raise
            sock = connected[0] if connected else None
        if info.status == "paused":
            raise InvalidState(f"cannot attach to container {info.name}: it is paused",
                               hint=f"unpause it first: portside unpause {info.name}")
        if sock is None:
            if info.status != "running":
                raise InvalidState(f"cannot attach to container {info.name}: it is {info.status}",
                                   hint=f"start it attached: portside start -a {info.name}")
            sock = connect(files.attach_socket)
        use_stdin = stdin and info.interactive
        io = io or AttachIO(0, 1, 2)
        if not use_stdin:
            io = AttachIO(None, io.stdout, io.stderr)
        tty_fd = io.stdin if io.stdin is not None and os.isatty(io.stdin) else None
        size_fd = tty_fd if tty_fd is not None else io.stdout

        def resize() -> None:
            size = terminal_size(size_fd)
            if size:
                send_resize(files.ctl, *size)

        with sock:
            if info.tty:
                resize()
                with RawTerminal(tty_fd) if tty_fd is not None else _Null(), \
                        WinchWatcher(resize) as winch:
                    detached = AttachSession(sock, io, tty=True, detach_keys=keys, winch=winch).run()
            else:
                detached = AttachSession(sock, io, tty=False).run()
        if detached:
            return None
        return int(self.wait(info.id))

    def attach_terminal(self, ref: str, *, stdin: bool, tty: bool, start: bool = False,
                        detach_keys: str | None = None) -> int:
        """Attach this process's terminal; the form ``run -it`` and ``start -a`` use.

        Args:
            ref: container name or id.
            stdin: send our input (when the container was made with ``-i``).
            tty: what the caller expects; the container's own setting decides
                whether its output is one terminal stream.
            start: start it first, connected before its process runs.
            detach_keys: Docker's format; default ctrl-p,ctrl-q.

        Returns:
            The container's exit code; 0 when the user detached (Docker's
            ``run -it`` prints nothing and exits 0 then).

        Raises:
            The same as :meth:`attach`.
        """
        code = self.attach(ref, stdin=stdin, detach_keys=detach_keys, start=start)
        return 0 if code is None else code

    # -- cp --------------------------------------------------------------------------
    def copy_from(self, ref: str, src: str, dest: str, *, follow: bool = False,
                  archive: bool = False, warn: Callable[[str], None] | None = None) -> None:
        """Copy ``src`` from the container to host path ``dest`` (``docker cp CTR:SRC DEST``).

        Paths inside the container are resolved inside its root, whatever
        symlinks it contains; running and stopped containers both work.

        Args:
            ref: container name or id.
            src: path in the container (``dir/.`` copies the contents).
            dest: host path.
            follow: ``-L``: follow a symlink ``src``.
            archive: ``-a``: keep owners, set-id bits and device nodes.
            warn: told about entries that were skipped.

        Raises:
            NoSuchContainer: no such container.
            CopyError: the path does not exist or cannot be copied.
        """
        from .containers.copy import copy_out
        info = self.container(ref)
        with self._container_root(info) as root:
            copy_out(root, src, dest, follow=follow, archive=archive, warn=warn)

    def copy_to(self, ref: str, src: str, dest: str, *, follow: bool = False,
                archive: bool = False, warn: Callable[[str], None] | None = None) -> None:
        """Copy host path ``src`` into the container at ``dest`` (``docker cp SRC CTR:DEST``).

        Raises:
            NoSuchContainer: no such container.
            CopyError: the source is missing, the destination refuses it, or
                the container's file system is read-only there.
        """
        from .containers.copy import copy_in
        info = self.container(ref)
        with self._container_root(info) as root:
            copy_in(root, src, dest, follow=follow, archive=archive, warn=warn)

    def get_archive(self, ref: str, src: str, out: BinaryIO, *, follow: bool = False) -> None:
        """Write ``src`` from the container as a tar stream (``docker cp CTR:SRC -``).

        Raises:
            NoSuchContainer: no such container.
            CopyError: the path does not exist or cannot be read.
        """
        from .containers.copy import archive_out
        info = self.container(ref)
        with self._container_root(info) as root:
            archive_out(root, src, out, follow=follow)

    def put_archive(self, ref: str, dest: str, stream: BinaryIO, *,
                    warn: Callable[[str], None] | None = None) -> int:
        """Unpack a tar stream into directory ``dest`` of the container (``docker cp - CTR:DEST``).

        Returns:
            The number of entries written.

        Raises:
            NoSuchContainer: no such container.
            CopyError: ``dest`` is not a directory, or the stream is not a
                tar or has hostile entries.
        """
        from .containers.copy import extract_in
        info = self.container(ref)
        with self._container_root(info) as root:
            return extract_in(root, stream, dest, warn=warn)

    # -- diff and commit ------------------------------------------------------------------
    def _mount_points(self, info: ContainerInfo) -> set[str]:
        points = set(RUNTIME_MOUNT_POINTS)
        points.update(m.destination for m in info.mounts)
        try:
            config = json.loads(self.container_files(info.id).config.read_text())
            points.update(m.get("destination", "") for m in config.get("mounts") or [])
        except (OSError, ValueError):
            pass
        return points

    def diff(self, ref: str) -> list[FileChange]:
        """What the container changed in its file system (``docker diff``), sorted by path.

        Raises:
            NoSuchContainer: no such container.
        """
        from .containers.changes import LowerView
        from .containers.changes import diff as overlay_diff
        info = self.container(ref)
        upper = rootfs_mod.layout(self.paths.container(info.id))[0]
        lower = LowerView(self.image_store.lower_dirs(info.image_id))
        try:
            return overlay_diff(upper, lower, ignore=self._mount_points(info))
        except FileNotFoundError as err:
            raise EngineError(f"the writable layer of container {info.name} is missing ({upper})",
                              hint="the container's files were removed outside portside") from err

    def commit(self, ref: str, repository: str | None = None, *, message: str = "",
               author: str = "", changes: Iterable[str] = (), pause: bool = True) -> ImageInfo:
        """Make an image of the container's current files and settings (``docker commit``).

        Args:
            ref: container name or id.
            repository: ``name[:tag]`` for the new image (None: untagged).
            message: the history comment (``-m``).
            author: ``-a``.
            changes: Dockerfile-style ``-c`` lines (CMD, ENV, WORKDIR, ...).
            pause: freeze a running container while its files are read.

        Returns:
            The new image.

        Raises:
            NoSuchContainer: no such container.
            InvalidArgument: a bad ``--change`` line or repository name.
        """
        from .containers.changes import LowerView
        from .containers.commit import (HashingWriter, committed_config, container_runtime_config,
                                        write_layer)
        from .images.archive import rollback_on_error
        from .images.importer import apply_changes, rfc3339
        from .images.reference import normalize_tag
        from .images.store import MT_OCI_LAYER, LayerSource

        info, cfg = self._io_container(ref)
        tags = [normalize_tag(repository)] if repository else []
        image_cfg = json.loads(self.image_store.config_bytes(info.image_id))
        runtime_cfg = container_runtime_config(
            image_cfg.get("config") or {}, entrypoint=cfg.spec.entrypoint,
            command=cfg.spec.command, env=cfg.env, working_dir=cfg.working_dir,
            user=cfg.user, labels=cfg.spec.labels)
        runtime_cfg = apply_changes(runtime_cfg, list(changes))
        upper = rootfs_mod.layout(self.paths.container(info.id))[0]
        lower = LowerView(self.image_store.lower_dirs(info.image_id))
        fd, tmp = tempfile.mkstemp(dir=self.paths.tmp, prefix="commit-", suffix=".tar")
        try:
            paused = self._freeze(info) if pause else False
            try:
                with os.fdopen(fd, "wb") as f:
                    hw = HashingWriter(f)
                    write_layer(upper, hw, lower=lower, skip=self._mount_points(info))
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                if paused:
                    self._thaw(info)
            diff_id, size = hw.digest, hw.size
            now = rfc3339(datetime.now(timezone.utc))
            config = committed_config(image_cfg, runtime_cfg, diff_id, created=now,
                                      created_by=shlex.join(cfg.argv), author=author,
                                      comment=message)
            store = self.image_store
            layers = [LayerSource(open=(lambda d=lay.blob_digest: store.blobs.open(d)),
                                  digest=lay.blob_digest, size=lay.blob_size, media_type=lay.media_type,
                                  trusted=True)
                      for lay in store.layers_of(info.image_id)]
            layers.append(LayerSource(open=lambda: open(tmp, "rb"), digest=diff_id, size=size,
                                      media_type=MT_OCI_LAYER))
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            with self.lock("images"), rollback_on_error(store):
                image = store.add_image(config_bytes, layers, tags, event="commit")
            self._event("commit", info.id, {"name": info.name, "imageID": image.id,
                                            **({"imageName": tags[0]} if tags else {})})
            return image
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _freeze(self, info: ContainerInfo) -> bool:
        if info.status != "running":
            return False
        self.pause(info.id)
        return True

    def _thaw(self, info: ContainerInfo) -> None:
        try:
            self.unpause(info.id)
        except InvalidState:
            pass          # it exited (or was stopped) while we read its files

    # -- top -----------------------------------------------------------------------------
    def top(self, ref: str) -> list[ProcessInfo]:
        """The container's processes, sorted by host pid (``docker top``).

        Membership is what the runtime reports for the container; details
        (user as the host names the uid, like ``docker top``, CPU over the
        process's lifetime, memory) come from :mod:`.cgroups.processes`.

        Raises:
            NoSuchContainer: no such container.
            InvalidState: it is not running.
            RuntimeFailure: the runtime cannot list its processes.
        """
        from .cgroups.processes import list_processes

        info = self.container(ref)
        if info.status not in ("running", "paused"):
            raise InvalidState(f"container {info.name} is not running",
                               hint=f"start it first: portside start {info.name}")
        pids = self.runtime.ps(info.id)
        return list_processes(pids, proc=self.paths.proc)


class _Null:
    def __enter__(self) -> "_Null":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


__all__ = ["ContainerIOAPI"]
