"""The container half of the Engine facade: create, start, stop, kill, rm, ps, logs...

Each verb reads like Podman's ``container_api.go``: take the container's
lock, reconcile its state with what its monitor left behind, check the
transition, call the step in :mod:`engine.containers`, and record the event
in the same transaction as the state change. The work itself lives in
``containers/`` (spec, rootfs, runtime, monitor).

Reconciling never needs the lock: "the process exited" is a fact read from
conmon's exit file, recorded with a compare-and-swap on the stored state,
so ``ps`` never waits for a ``stop`` in progress. Undoing the side effects
(runtime state, overlay mount, network) needs the lock, and is done by the
next lifecycle call or by conmon's exit command (``container cleanup``).
"""
from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import shutil
import sqlite3
import sys
import time
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .base import EngineBase
from .containers import lifecycle, monitor, rootfs
from .containers.lifecycle import Op, Status
from .containers.model import RunState, StoredConfig, to_info
from .containers.copyup import copy_up, mkdir_in_root
from .containers.filters import filter_containers, parse_filter
from .containers.monitor import MonitorFiles
from .containers.names import is_full_id, new_id, random_name, validate_name
from .containers.restart import restart_delay
from .containers.runtime import Runtime
from .containers.signals import signame, signum
from .containers.spec import (EtcFiles, HostFacts, build_config, merge_env, parse_restart,
                              parse_security_opts, resolve_command)
from .containers import caps as capmod
from .errors import (AmbiguousReference, EngineError, InvalidArgument, InvalidState, NameConflict,
                     NoSuchContainer, RuntimeFailure)
from .records import ContainerInfo, ContainerSpec, LogLine, Mount

STOP_TIMEOUT = 10
KILL_WAIT = 10.0
ACTIVE = (Status.RUNNING.value, Status.PAUSED.value)
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
X32_SETTING = "host.x32_abi"     # "<boot id> 0|1": the kernel serves x32 system calls


class ContainersAPI(EngineBase):
    """Container lifecycle operations; part of :class:`engine.Engine`."""

    # -- seams ---------------------------------------------------------------------
    @cached_property
    def runtime(self) -> Runtime:
        """The OCI runtime (probed once per state root, ``PORTSIDE_RUNTIME`` overrides)."""
        from .containers.runtime import select
        return select(self.db, self.paths)

    @cached_property
    def host_facts(self) -> HostFacts:
        return HostFacts.probe(self.paths.proc)

    @cached_property
    def _x32_abi(self) -> bool:
        """Whether the kernel serves x32 calls (for the seccomp filter): probed once a boot."""
        from .containers.seccomp import x32_abi
        boot = monitor.boot_id(self.paths.proc)
        saved = self.db.get_setting(X32_SETTING) or ""
        if boot and saved.rpartition(" ")[0] == boot:
            return saved.endswith(" 1")
        value = x32_abi(self.paths.proc)
        if boot:
            self.db.set_setting(X32_SETTING, f"{boot} {int(value)}")
        return value

    def _rt(self, st: RunState) -> Runtime:
        """The runtime that created the container's current run (the configured one if unknown)."""
        current = self.runtime
        if not st.runtime or st.runtime == current.path:
            return current
        name = os.path.basename(st.runtime)
        return Runtime(name, st.runtime, self.paths.run / f"runtime-{name}")

    def container_files(self, cid: str) -> MonitorFiles:
        """Where a container's monitor keeps its files (log, exit file, attach socket...)."""
        return MonitorFiles(cid, self.paths.container(cid), self.paths.exits)

    def _exit_command(self, cid: str) -> list[str]:
        return [sys.executable, "-m", "tui", "--root", str(self.paths.root),
                "--run-dir", str(self.paths.run), "container", "cleanup", cid]

    def _monitor_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The exit command is this portside: make sure it can import itself.
        pp = env.get("PYTHONPATH", "")
        if _REPO_ROOT not in pp.split(os.pathsep):
            env["PYTHONPATH"] = _REPO_ROOT + (os.pathsep + pp if pp else "")
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        return env

    # -- resolving and reading -----------------------------------------------------------
    def _resolve(self, ref: str) -> str:
        n = ref[1:] if ref.startswith("/") else ref
        row = self.db.one("SELECT id FROM containers WHERE id=? OR name=? ORDER BY id=? DESC",
                          (n, n, n))
        if row is not None:
            return str(row["id"])
        if n and len(n) < 64 and all(c in "0123456789abcdef" for c in n):
            rows = self.db.query("SELECT id FROM containers WHERE id LIKE ?", (n + "%",))
            if len(rows) == 1:
                return str(rows[0]["id"])
            if len(rows) > 1:
                raise AmbiguousReference(f"container id prefix {ref!r} matches {len(rows)} containers",
                                         hint="give more characters of the id, or the name")
        raise NoSuchContainer(ref)

    def _load(self, cid: str) -> tuple[sqlite3.Row, StoredConfig, RunState]:
        row = self.db.one("SELECT * FROM containers WHERE id=?", (cid,))
        if row is None:
            raise NoSuchContainer(cid)
        return row, StoredConfig.from_json(row["config_json"]), RunState.from_json(row["state_json"])

    def _info(self, row: sqlite3.Row, cfg: StoredConfig, st: RunState) -> ContainerInfo:
        rt = self.db.get_setting("runtime") or ""
        return to_info(row["id"], row["name"], cfg, st, os.path.basename(rt) if rt else "")

    def _sync(self, cid: str) -> tuple[sqlite3.Row, StoredConfig, RunState]:
        """Load a container and record an exit or OOM kill its monitor or cgroup reported.

        No lock needed: the new state (and its ``oom``/``die`` events) is
        written compare-and-swap, so of two readers seeing the same change
        one records it and the other reloads.
        """
        for _ in range(5):
            row, cfg, st = self._load(cid)
            new = self._observed(cid, st)
            if new is None:
                return row, cfg, st
            events = _sync_events(st, new) if st.status in ACTIVE else []
            if self._save(cid, row["name"], cfg, st, new, events=events):
                if new.status not in ACTIVE:
                    self._after_exit_observed(cid, st, new)
                return self._load(cid)
        return self._load(cid)

    def _observed(self, cid: str, st: RunState) -> RunState | None:
        """The state the monitor's files imply, if it differs from ``st``."""
        if st.status == Status.RESTARTING.value:
            if monitor.alive(st.waiter_pid, st.waiter_start, self.paths.proc):
                return None
            return st.but(status=Status.EXITED.value,
                          error="the restart was interrupted (its waiting process ended)")
        if st.status not in ACTIVE:
            return None
        files = self.container_files(cid)
        ex = monitor.read_exit(files)
        if ex is None:
            rebooted = bool(st.boot_id) and st.boot_id != monitor.boot_id(self.paths.proc)
            if not rebooted and monitor.alive(st.conmon_pid, st.conmon_start, self.paths.proc):
                # Still running: a process of it may have been OOM-killed all the same.
                kills = self._oom_kills(cid)
                if kills is None or kills <= st.oom_kills:
                    return None
                return st.but(oom_kills=kills, oom_killed=True)
            ex = monitor.read_exit(files)     # it may have written the file just before exiting
            if ex is None:
                why = ("the host rebooted while it ran" if rebooted else
                       "its monitor (conmon) died; the container was stopped")
                kills = max(st.oom_kills, self._oom_kills(cid) or 0)
                return st.but(status=Status.EXITED.value, pid=0, exit_code=137,
                              finished_ns=time.time_ns(), error=why,
                              mounted=st.mounted and not rebooted,
                              # The runtime's state lives in the run dir, which
                              # a reboot keeps where /run is on disk: it is
                              # deleted (gone already is fine) on release.
                              runtime_created=st.runtime_created,
                              oom_kills=kills, oom_killed=st.oom_killed or kills > 0)
        # The cgroup's count, read before ``runc delete`` removes it; conmon's
        # oom file alone (cgroup already gone) counts as one kill.
        kills = max(st.oom_kills, self._oom_kills(cid) or 0, 1 if ex.oom_killed else 0)
        return st.but(status=Status.EXITED.value, pid=0, exit_code=ex.code,
                      finished_ns=ex.finished_ns, oom_killed=kills > 0, oom_kills=kills)

    def _oom_kills(self, cid: str) -> int | None:
        """The OOM-kill count of the container's cgroup (one file read); None if it is gone."""
        from .cgroups import oom_kill_count
        try:
            return oom_kill_count(self.paths, cid)
        except (EngineError, OSError):
            return None

    def _after_exit_observed(self, cid: str, old: RunState, new: RunState) -> None:
        if new.error and "monitor" in new.error:
            # Without its monitor nobody reaps the container: stop what is left of it.
            try:
                self._rt(new).kill(cid, "KILL", all=True)
            except EngineError:
                pass

    def _save(self, cid: str, name: str, cfg: StoredConfig, old: RunState, new: RunState, *,
              event: tuple[str, dict[str, str]] | None = None,
              events: list[tuple[str, dict[str, str]]] = ()) -> bool:  # type: ignore[assignment]
        """Write ``new`` if the stored state is still ``old`` (compare-and-swap), with its events."""
        with self.db.tx() as c:
            # BEGIN IMMEDIATE holds the write lock: read, compare and write are atomic.
            row = c.execute("SELECT state_json FROM containers WHERE id=?", (cid,)).fetchone()
            if row is None or RunState.from_json(row["state_json"]) != old:
                return False
            c.execute("UPDATE containers SET status=?, state_json=? WHERE id=?",
                      (new.status, new.to_json(), cid))
            for action, attrs in ([event] if event else []) + list(events):
                self.db.add_event(c, "container", action, cid,
                                  {"name": name, "image": cfg.image_ref, **attrs})
        return True

    def _put(self, cid: str, name: str, cfg: StoredConfig, old: RunState, new: RunState, *,
             event: tuple[str, dict[str, str]] | None = None,
             events: list[tuple[str, dict[str, str]]] = ()) -> RunState:  # type: ignore[assignment]
        """Like :meth:`_save` under the container lock; a lost race re-applies on the fresh state."""
        if self._save(cid, name, cfg, old, new, event=event, events=events):
            return new
        # Only a reader recording an exit can have changed it: keep its facts, apply ours.
        _row, _cfg, fresh = self._load(cid)
        merged = fresh.but(**{k: v for k, v in new.__dict__.items()
                              if getattr(new, k) != getattr(old, k)})
        if not self._save(cid, name, cfg, fresh, merged, event=event, events=events):
            raise RuntimeFailure(f"container {name} changed while it was being updated",
                                 hint="try again")
        return merged

    def container(self, ref: str) -> ContainerInfo:
        """One container by id, name or unique id prefix, with its current state.

        Raises:
            NoSuchContainer: nothing matches.
            AmbiguousReference: an id prefix matches several containers.
        """
        cid = self._resolve(ref)
        return self._info(*self._sync(cid))

    def refresh_after_reboot(self) -> bool:
        """Reconcile every container once per boot of the host (podman's "refresh").

        A reboot takes the containers, their mounts, network namespaces,
        veths and NAT rules with it, but the state database and, where /run
        is on disk, the run dir survive: the first engine opened in a new boot
        marks running containers exited, releases what they held and frees
        their addresses. Cheap on every later open (one small file read).

        Returns:
            Whether a refresh ran.
        """
        marker = self.paths.run / "boot_id"
        now = monitor.boot_id(self.paths.proc)
        try:
            if marker.read_text() == now:
                return False
        except OSError:
            pass
        self.containers(all=True)          # reconciles each one, as a listing does
        self._network_reconcile()
        tmp = marker.with_name(f".boot_id.{os.getpid()}")
        try:
            tmp.write_text(now)
            os.replace(tmp, marker)
        except OSError:
            tmp.unlink(missing_ok=True)   # only a marker: the next open refreshes again
        return True

    def containers(self, *, all: bool = False, filters: Iterable[str] = ()) -> list[ContainerInfo]:
        """Containers, newest first (``docker ps``).

        Args:
            all: include stopped and created containers (a ``status`` filter implies it).
            filters: ``status=``, ``name=`` (substring), ``id=`` (prefix),
                ``label=key[=value]``, ``ancestor=<image>``, ``exited=<code>``.

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        parsed = [parse_filter(f) for f in filters]
        rows = self.db.query("SELECT * FROM containers ORDER BY created_ns DESC, id")
        out: list[ContainerInfo] = []
        changed = False
        for row in rows:
            cfg = StoredConfig.from_json(row["config_json"])
            st = RunState.from_json(row["state_json"])
            if (st.status in ACTIVE or st.status == Status.RESTARTING.value) \
                    and self._observed(row["id"], st) is not None:
                try:
                    row, cfg, st = self._sync(row["id"])
                    changed = changed or st.status not in ACTIVE    # an exit, not an OOM kill
                except NoSuchContainer:
                    continue
            elif st.status in (Status.EXITED.value, Status.CREATED.value) \
                    and (st.mounted or st.runtime_created) \
                    and not monitor.alive(st.conmon_pid, st.conmon_start, self.paths.proc):
                # Left behind by a crash (of portside mid-start, or of the
                # exit hook): clean up now unless someone is working on it.
                st = self._try_release(row["id"]) or st
            out.append(self._info(row, cfg, st))
        if changed:
            self._network_reconcile()
        has_status = any(k == "status" for k, _ in parsed)
        if not all and not has_status:
            out = [c for c in out if c.status in ("running", "paused", "restarting")]
        return filter_containers(out, parsed, self._image_ids)

    def _image_ids(self, ref: str) -> set[str]:
        """The image an ``ancestor=`` filter names, as a set of ids (empty when unknown)."""
        try:
            return {self.image_store.resolve(ref)}
        except EngineError:
            return set()

    def container_size(self, ref: str) -> int:
        """Bytes the container wrote to its own layer (``ps -s`` SIZE).

        Raises:
            NoSuchContainer: nothing matches.
        """
        cid = self._resolve(ref)
        return rootfs.disk_usage(rootfs.layout(self.paths.container(cid))[0])

    # -- create ----------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> ContainerInfo:
        """Create a container from an image (``docker create``); it does not run yet.

        Args:
            spec: what to run and how (Docker's flags, parsed).

        Returns:
            The new container, status ``created``, with ``warnings`` for limits
            the kernel will adjust (Docker prints these as WARNING lines).

        Raises:
            NoSuchImage: the image is not in the local store.
            NameConflict: the name is taken (the message names the holder).
            NoSuchNetwork: ``spec.network`` names no network.
            InvalidArgument: a bad name, restart policy, capability, mount,
                security option or command; a bad or busy ``-p``, a bad
                ``--ip``, ``--network-alias``, ``--dns`` or ``--add-host``.
        """
        image = self.image_store.get(spec.image)
        name = validate_name(spec.name) if spec.name else None
        self._validate(spec)
        from .cgroups import Host, ResourceLimits, validate
        warnings = tuple(validate(ResourceLimits.from_spec(spec), Host.probe()))
        cid = new_id()
        # Bad network input is refused before anything exists (start checks again).
        from . import network
        warnings += network.check(self, cid, replace(spec, hostname=spec.hostname or cid[:12]),
                                  exposed_ports=image.config.exposed_ports)
        argv = resolve_command(spec, image.config)
        env = merge_env(image.config.env, spec.env)
        if spec.network == "host" and not spec.hostname:
            hostname = os.uname().nodename
        else:
            hostname = spec.hostname or cid[:12]
        with self.lock("volumes"):
            info = self._create_locked(cid, name, spec, image, argv, env, hostname)
        return replace(info, warnings=warnings) if warnings else info

    def _create_locked(self, cid: str, name: str | None, spec: ContainerSpec, image: Any,
                       argv: tuple[str, ...], env: tuple[str, ...], hostname: str) -> ContainerInfo:
        mounts, anonymous = self._resolve_volumes(spec, image.config.volumes)
        cfg = StoredConfig(
            spec=replace(spec, name=None, mounts=mounts), image_ref=spec.image, image_id=image.id, argv=argv,
            env=env, working_dir=spec.working_dir or image.config.working_dir or "",
            user=spec.user if spec.user is not None else image.config.user,
            hostname=hostname, stop_signal=image.config.stop_signal,
            image_volumes=tuple(image.config.volumes), exposed_ports=tuple(image.config.exposed_ports),
            created_ns=time.time_ns())
        cdir = self.paths.container(cid)
        rootfs.prepare(cdir)
        try:
            name = self._insert(cid, name, cfg)
        except BaseException:
            shutil.rmtree(cdir, ignore_errors=True)
            for vol in anonymous:
                try:
                    self._volume_store().remove(vol, force=True)
                except EngineError:
                    pass
            raise
        return self._info(*self._load(cid))

    def _resolve_volumes(self, spec: ContainerSpec, image_volumes: Iterable[str]
                         ) -> tuple[tuple[Mount, ...], list[str]]:
        """Mounts with every volume named: ``-v /path`` and the image's VOLUMEs get anonymous ones.

        Returns the mounts and the anonymous volumes created (to undo on failure).
        """
        mounts = list(spec.mounts)
        taken = {m.destination for m in mounts}
        for v in image_volumes:
            dest = os.path.normpath("/" + v.strip())
            if dest != "/" and dest not in taken:
                mounts.append(Mount("volume", "", dest))
                taken.add(dest)
        if not any(m.type == "volume" for m in mounts):
            return tuple(mounts), []
        store = self._volume_store()
        out: list[Mount] = []
        created: list[str] = []
        for m in mounts:
            if m.type == "volume":
                if m.source:
                    store.ensure(m.source)
                else:
                    vol = store.create(None).name
                    created.append(vol)
                    m = replace(m, source=vol)
            out.append(m)
        return tuple(out), created

    def _validate(self, spec: ContainerSpec) -> None:
        policy, _ = parse_restart(spec.restart)
        if spec.auto_remove and policy != "no":
            raise InvalidArgument("conflicting options: --restart and --rm",
                                  hint="a container removed at exit cannot be restarted")
        parse_security_opts(spec.security_opt)
        capmod.effective_set(spec.cap_add, spec.cap_drop, privileged=spec.privileged)
        seen: set[str] = set()
        for m in spec.mounts:
            if m.type not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(f"unsupported mount type {m.type!r}", hint="use bind, volume or tmpfs")
            if m.destination in seen:
                raise InvalidArgument(f"duplicate mount point: {m.destination}")
            seen.add(m.destination)
            if m.type == "bind" and not m.source.startswith("/"):
                raise InvalidArgument(f"bind mount source {m.source!r} is not an absolute path")
        for key in spec.log_opts:
            if key not in ("max-size", "max-file"):
                raise InvalidArgument(f"unknown log option {key!r}", hint="use max-size= (and max-file=)")
        if "max-size" in spec.log_opts:
            from .containers.mounts import parse_size
            parse_size(spec.log_opts["max-size"])
        if spec.log_opts.get("max-file", "1") != "1":
            # conmon 2.1 replaces the log when it reaches max-size; it keeps no older files.
            raise InvalidArgument("log option max-file is not supported: the monitor keeps one log file",
                                  hint="use --log-opt max-size=... alone (or max-file=1)")

    def _insert(self, cid: str, name: str | None, cfg: StoredConfig) -> str:
        st = RunState()
        for attempt in range(50):
            candidate = name or random_name() if attempt < 25 or name else f"{random_name()}_{attempt}"
            try:
                with self.db.tx() as c:
                    c.execute("INSERT INTO containers(id, name, image_id, status, config_json, "
                              "state_json, created_ns) VALUES (?,?,?,?,?,?,?)",
                              (cid, candidate, cfg.image_id, st.status, cfg.to_json(), st.to_json(),
                               cfg.created_ns))
                    c.executemany("INSERT OR IGNORE INTO container_volumes(container_id, volume) "
                                  "VALUES (?,?)", [(cid, m.source) for m in cfg.spec.mounts
                                                   if m.type == "volume"])
                    self.db.add_event(c, "container", "create", cid,
                                      {"name": candidate, "image": cfg.image_ref})
                return candidate
            except sqlite3.IntegrityError:
                if name:
                    holder = self.db.one("SELECT id FROM containers WHERE name=?", (name,))
                    raise NameConflict(
                        f"the container name \"/{name}\" is already in use by container "
                        f"{holder['id'] if holder else '(just removed)'}",
                        hint="remove or rename that container, or choose another name") from None
        raise NameConflict("could not find a free random name", hint="give a name with --name")

    def _volume_store(self) -> Any:
        try:
            from .volumes import VolumeStore
        except ImportError as err:
            raise InvalidArgument("named volumes are not available in this build",
                                  hint="use a bind mount (-v /host/dir:/path) or --tmpfs") from err
        return VolumeStore(self.db, self.paths)

    # -- start -----------------------------------------------------------------------
    def start(self, ref: str, *, on_created: Callable[[ContainerInfo], None] | None = None) -> ContainerInfo:
        """Start a created or exited container (``docker start``).

        Args:
            ref: container id, name or id prefix.
            on_created: called after the runtime created the container and
                before its process runs (to attach without missing output).

        Returns:
            The container, running (or already exited, for a quick command).

        Raises:
            NoSuchContainer: nothing matches.
            InvalidState: it is running or being removed.
            CommandNotFound: its command does not exist (exit code 127).
            CommandNotExecutable: its command cannot be executed (126).
            RuntimeFailure: the runtime or the monitor failed.
        """
        cid = self._resolve(ref)
        with self.lock(cid):
            row, cfg, st = self._sync(cid)
            if st.status == Status.RUNNING.value:
                return self._info(row, cfg, st)        # Docker: starting a running container is a no-op
            lifecycle.check(st.status, Op.START, row["name"])
            self._start_locked(cid, row["name"], cfg, st, on_created=on_created)
        return self.container(cid)

    def _start_locked(self, cid: str, name: str, cfg: StoredConfig, st: RunState, *,
                      on_created: Callable[[ContainerInfo], None] | None = None,
                      policy_restart: bool = False) -> RunState:
        if st.mounted or st.runtime_created:
            st = self._release_locked(cid, name, cfg, st)
        cdir = self.paths.container(cid)
        files = self.container_files(cid)
        runtime = self.runtime
        # Record that there may be something to undo before doing it, so a
        # crash half-way is cleaned up by the next reconcile.
        st = self._put(cid, name, cfg, st, st.but(mounted=True, runtime_created=True, error="",
                                                  runtime=runtime.path))
        try:
            merged = rootfs.mount(cdir, self.image_store.lower_dirs(cfg.image_id))
            setup = self._network_prepare(cid, name, cfg)
            config = self._oci_config(cid, cfg, merged, setup)
            _write_json(files.config, config)
            argv = monitor.conmon_argv(
                _conmon(), runtime, files, name=name, tty=cfg.spec.tty,
                stdin=cfg.spec.interactive,
                leave_stdin_open=cfg.spec.interactive and not cfg.spec.stdin_once,
                log_size_max=_log_size(cfg), exit_command=self._exit_command(cid),
                socket_dir=self.paths.run / "socket")
            launched = monitor.launch(argv, files, env=self._monitor_env(), proc_root=self.paths.proc)
            if on_created is not None:
                on_created(self._info(self._load(cid)[0], cfg, st.but(pid=launched.container_pid)))
            started_ns = time.time_ns()
            runtime.start(cid)
        except BaseException as err:
            code = getattr(err, "exit_code", 125) if isinstance(err, EngineError) else 125
            failed = self._put(cid, name, cfg, st, st.but(exit_code=code, error=str(err)))
            try:
                self._release_locked(cid, name, cfg, failed)
            except EngineError:
                pass                  # the start error is what the user needs; a listing retries
            raise
        new = st.but(status=Status.RUNNING.value, pid=launched.container_pid, exit_code=0,
                     started_ns=started_ns, finished_ns=0, oom_killed=False, oom_kills=0,
                     conmon_pid=launched.conmon_pid, conmon_start=launched.conmon_start,
                     boot_id=monitor.boot_id(self.paths.proc), manually_stopped=False,
                     restart_count=st.restart_count + 1 if policy_restart else
                     (st.restart_count if st.status == Status.RESTARTING.value else 0),
                     backoff_ms=st.backoff_ms if policy_restart else 0,
                     generation=st.generation + 1)
        return self._put(cid, name, cfg, st, new, event=("start", {}))

    def _oci_config(self, cid: str, cfg: StoredConfig, merged: Path, setup: Any) -> dict[str, Any]:
        from .containers.copy import RootDir
        from .containers.users import resolve_user
        cdir = self.paths.container(cid)
        with RootDir.open(merged) as root:
            user = resolve_user(cfg.user, root.read_file("/etc/passwd"), root.read_file("/etc/group"))
            if cfg.working_dir and cfg.working_dir != "/":
                mkdir_in_root(root, cfg.working_dir)
            sources = self._mount_sources(cfg, root)
        hostname = cfg.hostname
        _write_text(cdir / "hostname", hostname + "\n")
        etc = EtcFiles(hosts=setup.hosts_path or cdir / "hosts", hostname=cdir / "hostname",
                       resolv_conf=setup.resolv_conf_path or cdir / "resolv.conf")
        from .containers.seccomp import default_profile
        seccomp = functools.partial(default_profile, x32=self._x32_abi)
        config = build_config(
            cid=cid, spec=cfg.spec, argv=cfg.argv, env=cfg.env, working_dir=cfg.working_dir,
            hostname=hostname, rootfs=merged, user=user, etc_files=etc, mount_sources=sources,
            seccomp_profile=seccomp, host=self.host_facts,
            netns_path=str(setup.netns_path) if setup.netns_path else None)
        return config

    def _mount_sources(self, cfg: StoredConfig, root: Any) -> dict[str, str]:
        """Host paths for the bind and volume mounts; a new, empty volume gets the image's files."""
        sources: dict[str, str] = {}
        for m in cfg.spec.mounts:
            if m.type == "bind":
                if not os.path.exists(m.source):
                    # -v creates a missing host directory, as Docker does.
                    os.makedirs(m.source, exist_ok=True)
                sources[m.destination] = m.source
            elif m.type == "volume":
                data = self._volume_store().ensure(m.source)
                if "nocopy" not in m.options:
                    copy_up(root, m.destination, data)
                sources[m.destination] = str(data)
        return sources

    def _network_prepare(self, cid: str, name: str, cfg: StoredConfig) -> Any:
        from . import network
        spec = replace(cfg.spec, hostname=cfg.hostname)
        return network.prepare(self, cid, name, spec, exposed_ports=cfg.exposed_ports,
                               attachments=cfg.attachments())

    def _network_teardown(self, cid: str) -> None:
        from . import network
        network.teardown(self, cid)

    def _network_reconcile(self) -> None:
        from .network.traces import needs_reconcile
        try:
            if not needs_reconcile(self):
                return
            from . import network
            network.reconcile(self)
        except EngineError:
            pass

    # -- run -------------------------------------------------------------------------
    def run(self, spec: ContainerSpec, *,
            on_created: Callable[[ContainerInfo], None] | None = None) -> ContainerInfo:
        """Create and start a container (``docker run -d``).

        With ``spec.auto_remove``, a container that fails to start is removed.

        Raises:
            Everything :meth:`create` and :meth:`start` raise.
        """
        info = self.create(spec)
        try:
            return self.start(info.id, on_created=on_created)
        except EngineError:
            if spec.auto_remove:
                try:
                    self.rm(info.id, force=True)
                except EngineError:
                    pass
            raise

    # -- stop, kill, restart ---------------------------------------------------------
    def stop(self, ref: str, timeout: int | None = None) -> ContainerInfo:
        """Stop a container: its stop signal, then SIGKILL after ``timeout`` seconds.

        Stopping a container that is not running does nothing, as in Docker.

        Args:
            ref: container id, name or id prefix.
            timeout: seconds to wait before SIGKILL (default 10).

        Raises:
            NoSuchContainer: nothing matches.
            InvalidState: it is being removed.
            RuntimeFailure: the runtime refused.
        """
        cid = self._resolve(ref)
        with self.lock(cid):
            row, cfg, st = self._sync(cid)
            if st.status in (Status.CREATED.value, Status.EXITED.value):
                if st.mounted or st.runtime_created:
                    self._release_locked(cid, row["name"], cfg, st)
                return self.container(cid)
            lifecycle.check(st.status, Op.STOP, row["name"])
            self._stop_locked(cid, row["name"], cfg, st, STOP_TIMEOUT if timeout is None else timeout)
        return self.container(cid)

    def _stop_locked(self, cid: str, name: str, cfg: StoredConfig, st: RunState, timeout: float,
                     *, event: str = "stop") -> RunState:
        st = self._put(cid, name, cfg, st, st.but(manually_stopped=True))
        if st.status == Status.RESTARTING.value:
            return self._put(cid, name, cfg, st, st.but(status=Status.EXITED.value), event=(event, {}))
        sig = cfg.stop_signal or "SIGTERM"
        rt = self._rt(st)
        if rt.kill(cid, signame(sig)):
            if st.status == Status.PAUSED.value:
                rt.resume(cid)
            if not self._wait_exit(cid, timeout):
                rt.kill(cid, "KILL", all=True)
                self._wait_exit(cid, KILL_WAIT)
        _row, _cfg, st = self._sync(cid)
        if st.status in ACTIVE:
            # The process is gone from the runtime's view but conmon has not
            # reported yet (or is gone): record what we know.
            gone = st.but(status=Status.EXITED.value, pid=0, exit_code=137, finished_ns=time.time_ns())
            st = self._put(cid, name, cfg, st, gone, events=_sync_events(st, gone))
        st = self._release_locked(cid, name, cfg, st)
        with self.db.tx() as c:
            self.db.add_event(c, "container", event, cid, {"name": name, "image": cfg.image_ref})
        return st

    def _wait_exit(self, cid: str, timeout: float) -> bool:
        from .containers.watch import wait_until
        files = self.container_files(cid)

        def done() -> bool:
            if monitor.read_exit(files) is not None:
                return True
            _r, _c, st = self._load(cid)
            return not monitor.alive(st.conmon_pid, st.conmon_start, self.paths.proc)

        return wait_until(self.paths.exits, done, timeout, recheck=0.2)

    def kill(self, ref: str, signal: str | int = "KILL") -> ContainerInfo:
        """Send a signal to a running container (``docker kill``).

        Args:
            ref: container id, name or id prefix.
            signal: name (``KILL``, ``SIGHUP``) or number.

        Raises:
            NoSuchContainer: nothing matches.
            InvalidState: it is not running.
            InvalidArgument: an unknown signal.
        """
        sig = signame(signal)
        cid = self._resolve(ref)
        with self.lock(cid):
            row, cfg, st = self._sync(cid)
            lifecycle.check(st.status, Op.KILL, row["name"])
            if sig in ("KILL", "TERM", signame(cfg.stop_signal or "TERM")):
                st = self._put(cid, row["name"], cfg, st, st.but(manually_stopped=True))
            rt = self._rt(st)
            rt.kill(cid, sig)
            if sig == "KILL" and st.status == Status.PAUSED.value:
                _quietly(rt.resume, cid)     # a frozen process dies only once thawed
            with self.db.tx() as c:
                self.db.add_event(c, "container", "kill", cid,
                                  {"name": row["name"], "image": cfg.image_ref,
                                   "signal": str(signum(sig))})
            if sig == "KILL":
                if self._wait_exit(cid, KILL_WAIT):
                    _row, _cfg, st = self._sync(cid)
                    if st.status not in ACTIVE:
                        self._release_locked(cid, row["name"], cfg, st)
        return self.container(cid)

    def restart(self, ref: str, timeout: int | None = None) -> ContainerInfo:
        """Stop (if running) and start again (``docker restart``).

        Raises:
            Everything :meth:`stop` and :meth:`start` raise.
        """
        cid = self._resolve(ref)
        with self.lock(cid):
            row, cfg, st = self._sync(cid)
            name = row["name"]
            if st.status in ACTIVE or st.status == Status.RESTARTING.value:
                st = self._stop_locked(cid, name, cfg, st,
                                       STOP_TIMEOUT if timeout is None else timeout)
            lifecycle.check(st.status, Op.START, name)
            st = self._start_locked(cid, name, cfg, st)
            with self.db.tx() as c:
                self.db.add_event(c, "container", "restart", cid, {"name": name, "image": cfg.image_ref})
        return self.container(cid)

    # -- after the exit ----------------------------------------------------------------
    def _release_locked(self, cid: str, name: str, cfg: StoredConfig, st: RunState, *,
                        removing: bool = False) -> RunState:
        """Undo a run's side effects: runtime state, network, overlay mount. Idempotent.

        With ``removing``, the state written says ``removing`` too (one
        commit instead of two, for :meth:`_remove_locked` right after).
        """
        errors = []
        deleted: Callable[[], None] | None = None
        if st.runtime_created:
            try:
                deleted = self._rt(st).delete_begin(cid, force=True)
            except EngineError as err:
                errors.append(str(err))
        try:
            self._network_teardown(cid)
        except EngineError as err:
            errors.append(str(err))
        try:
            rootfs.unmount(self.paths.container(cid))
        except EngineError as err:
            errors.append(str(err))
        if deleted is not None:
            try:
                deleted()
            except EngineError as err:
                errors.append(str(err))
        if errors:
            raise RuntimeFailure(f"cleaning up container {name} failed: {'; '.join(errors)}",
                                 hint="try again: portside rm -f " + name)
        if removing:
            return self._put(cid, name, cfg, st, st.but(mounted=False, runtime_created=False,
                                                         status=Status.REMOVING.value))
        if not (st.mounted or st.runtime_created):
            return st
        return self._put(cid, name, cfg, st, st.but(mounted=False, runtime_created=False))

    def _try_release(self, cid: str) -> RunState | None:
        """Clean up after an exited container whose exit command never ran, if nobody holds its lock."""
        path = self.paths.locks / f"{cid}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                raise
            try:
                row, cfg, st = self._sync(cid)
                if st.status not in (Status.EXITED.value, Status.CREATED.value):
                    return st
                remove = cfg.spec.auto_remove and st.status == Status.EXITED.value
                st = self._release_locked(cid, row["name"], cfg, st, removing=remove)
                if remove:
                    self._remove_locked(cid, row["name"], cfg, st, volumes=True)
                return st
            except EngineError:
                return None
        finally:
            os.close(fd)

    def cleanup(self, ref: str) -> None:
        """What conmon's exit command runs: record the exit, clean up, apply the restart policy.

        Quietly does nothing for a container that is gone or running again.
        A restart waits Docker's back-off (100 ms, doubling up to a minute,
        reset after 10 s of running) without holding the lock, so ``stop``
        or ``rm`` during the wait win.

        Raises:
            RuntimeFailure: cleaning up failed.
        """
        try:
            cid = self._resolve(ref)
        except NoSuchContainer:
            return
        with self.lock(cid):
            try:
                row, cfg, st = self._sync(cid)
            except NoSuchContainer:
                return
            name = row["name"]
            if st.status != Status.EXITED.value:
                return
            st = self._release_locked(cid, name, cfg, st, removing=cfg.spec.auto_remove)
            if cfg.spec.auto_remove:
                self._remove_locked(cid, name, cfg, st, volumes=True)
                return
            delay_ms = restart_delay(cfg.spec.restart, st)
            if delay_ms is None:
                return
            gen = st.generation
            me = os.getpid()
            st = self._put(cid, name, cfg, st, st.but(
                status=Status.RESTARTING.value, backoff_ms=delay_ms, waiter_pid=me,
                waiter_start=monitor.proc_start_ticks(me, self.paths.proc) or 0))
        self._network_reconcile()
        time.sleep(delay_ms / 1000)
        with self.lock(cid):
            try:
                row, cfg, st = self._sync(cid)
            except NoSuchContainer:
                return
            if st.status != Status.RESTARTING.value or st.generation != gen:
                return                 # stopped, removed or started by someone meanwhile
            try:
                self._start_locked(cid, row["name"], cfg, st, policy_restart=True)
            except EngineError:
                _r, _c, st = self._load(cid)
                if st.status == Status.RESTARTING.value:
                    self._put(cid, row["name"], cfg, st, st.but(status=Status.EXITED.value))

    # -- rm, rename, prune ----------------------------------------------------------------
    def rm(self, ref: str, *, force: bool = False, volumes: bool = False) -> str:
        """Remove a container and its files (``docker rm``).

        Args:
            ref: container id, name or id prefix.
            force: kill it first if it is running.
            volumes: also remove the named volumes only it uses.

        Returns:
            The removed container's id.

        Raises:
            NoSuchContainer: nothing matches.
            InvalidState: it is running and ``force`` is not set.
            RuntimeFailure: its files could not be cleaned up.
        """
        cid = self._resolve(ref)
        lock = self.lock(cid)
        with lock:
            row, cfg, st = self._sync(cid)
            name = row["name"]
            # "removing" while we hold the lock means a remover died half-way: finish its job.
            if st.status != Status.REMOVING.value:
                lifecycle.check(st.status, Op.FORCE_REMOVE if force else Op.REMOVE, name)
            if st.status in ACTIVE:
                rt = self._rt(st)
                rt.kill(cid, "KILL", all=True)
                if st.status == Status.PAUSED.value:
                    _quietly(rt.resume, cid)
                self._wait_exit(cid, KILL_WAIT)
                _row, _cfg, st = self._sync(cid)
            st = self._release_locked(cid, name, cfg, st, removing=True)
            self._remove_locked(cid, name, cfg, st, volumes=volumes)
        return cid

    def _remove_locked(self, cid: str, name: str, cfg: StoredConfig, st: RunState, *,
                       volumes: bool) -> None:
        if st.status != Status.REMOVING.value:
            st = self._put(cid, name, cfg, st, st.but(status=Status.REMOVING.value))
        cdir = self.paths.container(cid)
        if rootfs.is_mounted(rootfs.layout(cdir)[2]):
            raise RuntimeFailure(f"the root filesystem of container {name} is still mounted",
                                 hint=f"try again: portside rm -f {name}")
        vols = [r["volume"] for r in self.db.query(
            "SELECT volume FROM container_volumes WHERE container_id=?", (cid,))]
        shutil.rmtree(cdir, ignore_errors=True)
        monitor.remove_files(self.container_files(cid))
        with self.db.tx() as c:
            c.execute("DELETE FROM containers WHERE id=?", (cid,))
            self.db.add_event(c, "container", "destroy", cid, {"name": name, "image": cfg.image_ref})
        if volumes and vols:
            self._remove_unused_volumes(vols)
        try:
            os.unlink(self.paths.locks / f"{cid}.lock")
        except OSError:
            pass

    def _remove_unused_volumes(self, names: list[str]) -> None:
        """``rm -v``/``--rm``: the container's anonymous volumes that nothing else uses (Docker)."""
        from .volumes import ANONYMOUS_LABEL
        store = self._volume_store()
        with self.lock("volumes"):
            for v in names:
                try:
                    info = store.get(v)
                except EngineError:
                    continue
                if ANONYMOUS_LABEL in info.labels and not store.users(v):
                    try:
                        store.remove(v)
                    except EngineError:
                        pass

    def rename(self, ref: str, new_name: str) -> ContainerInfo:
        """Give a container another name (``docker rename``).

        Raises:
            NoSuchContainer: nothing matches.
            NameConflict: the new name is taken.
            InvalidArgument: the new name breaks the naming rule.
        """
        new = validate_name(new_name)
        cid = self._resolve(ref)
        with self.lock(cid):
            row, cfg, st = self._sync(cid)
            old = row["name"]
            lifecycle.check(st.status, Op.RENAME, old)
            if new == old:
                return self._info(row, cfg, st)
            try:
                with self.db.tx() as c:
                    c.execute("UPDATE containers SET name=? WHERE id=?", (new, cid))
                    self.db.add_event(c, "container", "rename", cid,
                                      {"name": new, "oldName": "/" + old, "image": cfg.image_ref})
            except sqlite3.IntegrityError:
                holder = self.db.one("SELECT id FROM containers WHERE name=?", (new,))
                raise NameConflict(f"the container name \"/{new}\" is already in use by container "
                                   f"{holder['id'] if holder else '(just removed)'}",
                                   hint="choose another name") from None
            if st.status in ACTIVE:
                from . import network
                network.renamed(self, cid, new)
        return self.container(cid)

    def container_prune(self) -> list[str]:
        """Remove every stopped (exited or created) container.

        Returns:
            The removed containers' ids.
        """
        removed = []
        for info in self.containers(all=True):
            if info.status not in (Status.EXITED.value, Status.CREATED.value):
                continue
            try:
                removed.append(self.rm(info.id))
            except (InvalidState, NoSuchContainer):
                continue                 # started or removed meanwhile
        return removed

    # -- wait and logs ------------------------------------------------------------------
    def wait(self, ref: str, timeout: float | None = None) -> int:
        """Block until the container has exited; returns its exit code (``docker wait``).

        A container removed right after it exited (``--rm``) still reports
        its code, from its ``die`` event.

        Args:
            ref: container id, name or id prefix.
            timeout: give up after this many seconds.

        Raises:
            NoSuchContainer: nothing matches.
            RuntimeFailure: the timeout passed.
        """
        from .containers.watch import wait_until
        try:
            cid = self._resolve(ref)
        except NoSuchContainer:
            # A container removed right after its exit (--rm) still has its "die" event.
            code = self._last_exit_code(ref) if is_full_id(ref) else None
            if code is None:
                raise
            return code
        result: list[int] = []

        def done() -> bool:
            try:
                _row, _cfg, st = self._sync(cid)
            except NoSuchContainer:
                code = self._last_exit_code(cid)
                if code is None:
                    raise
                result.append(code)
                return True
            if st.status == Status.EXITED.value:
                result.append(st.exit_code)
                return True
            return False

        if not wait_until(self.paths.exits, done, timeout, recheck=0.25):
            raise RuntimeFailure(f"container {ref} did not exit within {timeout}s")
        return result[-1]

    def _last_exit_code(self, cid: str) -> int | None:
        row = self.db.one("SELECT attrs_json FROM events WHERE actor_id=? AND type='container' "
                          "AND action='die' ORDER BY seq DESC LIMIT 1", (cid,))
        if row is None:
            return None
        try:
            return int(json.loads(row["attrs_json"]).get("exitCode"))
        except (TypeError, ValueError):
            return None

    def logs(self, ref: str, *, tail: int | None = None, since: datetime | str | None = None,
             until: datetime | str | None = None, follow: bool = False,
             streams: Iterable[str] = ("stdout", "stderr")) -> Iterator[LogLine]:
        """A container's log lines (``docker logs``).

        Args:
            ref: container id, name or id prefix.
            tail: only the last N lines.
            since: lines at or after this time (datetime, RFC 3339, unix time, or ``10m``).
            until: lines at or before this time.
            follow: keep following until the container stops.
            streams: ``stdout`` and/or ``stderr``.

        Raises:
            NoSuchContainer: nothing matches.
            InvalidArgument: a bad time or tail.
        """
        from .containers.log_format import parse_since
        from .containers.logs import LogReader
        cid = self._resolve(ref)
        reader = LogReader(self.container_files(cid).log)
        t_since = parse_since(since) if isinstance(since, str) else since
        t_until = parse_since(until) if isinstance(until, str) else until
        if not follow:
            yield from reader.lines(since=t_since, until=t_until, tail=tail, streams=streams)
            return
        files = self.container_files(cid)

        def stopped() -> bool:
            if monitor.read_exit(files) is not None:
                return True
            try:
                return self.container(cid).status not in ("running", "paused", "restarting")
            except NoSuchContainer:
                return True

        for line in reader.follow(since=t_since, tail=tail, stop=stopped, streams=streams):
            if t_until is not None and line.time > t_until:
                return
            yield line

    # -- inspect -----------------------------------------------------------------------
    def container_inspect(self, ref: str) -> dict[str, Any]:
        """Docker-shaped ``inspect`` JSON for one container.

        Raises:
            NoSuchContainer: nothing matches.
        """
        from .containers.inspect import inspect
        cid = self._resolve(ref)
        row, cfg, st = self._sync(cid)
        known = self.db.one("SELECT 1 FROM images WHERE id=?", (cfg.image_id,)) is not None
        lower = ":".join(str(p) for p in self.image_store.lower_dirs(cfg.image_id)) if known else ""
        from .network import store as netstore
        from .network.bridge import netns_path
        eps = netstore.endpoints(self.db, container_id=cid)
        ports = [m for _c, _n, m in netstore.port_mappings(self.db, cid)]
        ns = netns_path(self.paths, cid)
        return inspect(cid, row["name"], cfg, st, files=self.container_files(cid), lower_dirs=lower,
                       runtime=self._rt(st).name, endpoints=eps, ports=ports,
                       netns_path=str(ns) if eps else "",
                       network_ids={n.name: n.id for n in netstore.list_networks(self.db)},
                       volumes_dir=self.paths.volumes)


# -- helpers ---------------------------------------------------------------------------

def _quietly(fn: Callable[[str], Any], cid: str) -> None:
    try:
        fn(cid)
    except EngineError:
        pass


def _sync_events(old: RunState, new: RunState) -> list[tuple[str, dict[str, str]]]:
    """Docker's events for a sync of a running container that changed ``old`` into ``new``.

    ``oom`` when the cgroup's OOM-kill count rose since the one last
    recorded (so a kill reported while the container ran is not reported
    again at its exit), then ``die`` if it exited.
    """
    events: list[tuple[str, dict[str, str]]] = []
    if new.oom_kills > old.oom_kills:
        events.append(("oom", {}))
    if new.status not in ACTIVE:
        events.append(("die", {"exitCode": str(new.exit_code),
                               "oomKilled": str(new.oom_killed).lower()}))
    return events


def _conmon() -> str:
    from .containers.runtime import find_conmon
    return find_conmon()


def _log_size(cfg: StoredConfig) -> int | None:
    v = cfg.spec.log_opts.get("max-size")
    if not v:
        return None
    from .containers.mounts import parse_size
    return parse_size(v)


def _write_json(path: Path, value: Any) -> None:
    _write_text(path, json.dumps(value))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


__all__ = ["ContainersAPI"]
