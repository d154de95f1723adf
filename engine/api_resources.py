"""The resources half of the Engine facade: stats, update, pause, events, disk usage, prune.

Container lookup, state and runtime (``container``, ``_sync``/``_put``,
``runtime``) come from the containers part of the facade; containers,
networks, volumes and images have their own prune verbs, which
``system_prune`` calls in Docker's order.
"""
from __future__ import annotations

import threading
import time
from dataclasses import fields, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from .base import EngineBase
from .containers import lifecycle
from .containers.model import RunState, StoredConfig
from .errors import EngineError, InvalidArgument, NoSuchContainer
from .records import ContainerInfo, ContainerStats, DiskUsage, Event, PruneReport

# cgroups, stats, events and disk usage are imported by the verbs that use them.
OOM_CHECK_PERIOD = 1.0     # seconds between OOM-kill checks of an events follower
if TYPE_CHECKING:
    from .cgroups.stats import StatsSampler, StatsTarget
    from .events import EventFilter

    FilterArg = Iterable[str] | Mapping[str, Iterable[str]] | EventFilter | None


class ResourcesAPI(EngineBase):
    """Stats, limits, pause/unpause, events, ``system df``/``prune``; part of :class:`engine.Engine`."""

    # -- stats -------------------------------------------------------------------------
    def stats_sampler(self) -> StatsSampler:
        """A sampler a front end keeps and calls on a timer (``sampler.sample(refs)``).

        Each sampler remembers the previous reading of every container, so
        from its second sample on CPU % is Docker's (delta container CPU /
        delta host CPU x online CPUs x 100).
        """
        from .cgroups.stats import StatsSampler
        return StatsSampler(self, proc=self.paths.proc)

    def stats(self, refs: Iterable[str] | None = None) -> list[ContainerStats]:
        """One stats sample (``docker stats --no-stream`` rows) of running containers.

        Calls share one sampler per engine, so the first call shows 0 % CPU
        and later calls the CPU use since the previous call. Front ends that
        refresh should keep their own :meth:`stats_sampler`.

        Args:
            refs: container ids, names or id prefixes; None for every running one.

        Raises:
            NoSuchContainer: a reference matches nothing.
        """
        return self._shared_sampler.sample(refs)

    @cached_property
    def _shared_sampler(self) -> StatsSampler:
        return self.stats_sampler()

    def stats_targets(self, refs: Iterable[str] | None = None) -> list[StatsTarget]:
        """What the sampler reads for ``refs`` (None: every running or paused container).

        Containers that are not running are left out. Targets are cached per
        container and rebuilt only when its run state changes, so the
        per-second lookup is one query that parses nothing new.

        Raises:
            NoSuchContainer: a reference matches nothing.
        """
        if refs is None:
            rows = self.db.query("SELECT id, name, state_json FROM containers "
                                 "WHERE status IN ('running', 'paused') ORDER BY created_ns")
        else:
            ids = list(dict.fromkeys(self._resource_container(r).id for r in refs))
            by_id = {r["id"]: r for r in self.db.query(
                "SELECT id, name, state_json FROM containers WHERE id IN (%s)"
                % ",".join("?" * len(ids)), tuple(ids))} if ids else {}
            rows = [by_id[i] for i in ids if i in by_id]
        cache = self._target_cache
        out = []
        for row in rows:
            cid, name, state = row["id"], row["name"], row["state_json"]
            hit = cache.get(cid)
            if hit is None or hit[0] != state or hit[1].name != name:
                hit = cache[cid] = (state, self._stats_target(cid, name, state))
            target = hit[1]
            if target.pid or refs is None:
                out.append(target)
        if refs is None and len(cache) > len(rows):
            for gone in set(cache) - {r["id"] for r in rows}:
                cache.pop(gone, None)
        return out

    @cached_property
    def _target_cache(self) -> dict[str, tuple[str, StatsTarget]]:
        return {}

    def _stats_target(self, cid: str, name: str, state_json: str) -> StatsTarget:
        from . import cgroups
        from .cgroups.stats import StatsTarget
        st = RunState.from_json(state_json)
        row = self.db.one("SELECT config_json FROM containers WHERE id=?", (cid,))
        network = StoredConfig.from_json(row["config_json"]).spec.network if row else "none"
        active = st.status in ("running", "paused")
        return StatsTarget(id=cid, name=name,
                           cgroup=cgroups.open_cgroup(cgroups.layout(self.paths),
                                                      cgroups.cgroup_path(cid)),
                           pid=st.pid if active else 0, own_netns=network != "host")

    # -- limits ------------------------------------------------------------------------
    def update(self, ref: str, **limits: Any) -> list[str]:
        """Change a container's resource limits (``docker update``).

        A running (or paused) container's cgroup is written at once; the new
        limits are also stored in its config, so the next start keeps them.

        Args:
            ref: container id, name or prefix.
            **limits: any of ``memory``, ``memory_reservation``, ``memory_swap``
                (bytes or sizes such as ``"512m"``), ``cpus``, ``cpu_period``,
                ``cpu_quota``, ``cpu_shares``, ``cpuset_cpus``, ``cpuset_mems``,
                ``pids_limit``, ``oom_kill_disable``.

        Returns:
            Warnings about what this call changes, in Docker's words (e.g. an
            adjusted CPU share; the adjusted value is the one stored).

        Raises:
            NoSuchContainer: nothing matches ``ref``.
            InvalidArgument: a limit Docker would refuse, or nothing to change.
            ResourceError: the kernel refused (e.g. a memory limit below current use).
        """
        from . import cgroups
        from .cgroups.resources import Host, ResourceLimits, oci_resources, validate
        change = ResourceLimits.from_options(**limits)
        if change.is_empty():
            raise InvalidArgument("nothing to update", hint="give at least one limit, e.g. --memory 256m")
        info = self._resource_container(ref)
        with self.lock(info.id):
            row = self._container_row(info.id)
            cfg = StoredConfig.from_json(row["config_json"])
            host = Host.probe()
            current = ResourceLimits.from_spec(cfg.spec).clamped()
            merged = current.merged(change)
            # Warn about what this call changes, not again about what was
            # already in force (the stored limits are the clamped ones).
            try:
                known = set(validate(current, host))
            except InvalidArgument:
                known = set()
            warnings = [w for w in validate(merged, host) if w not in known]
            merged = merged.clamped()
            if row["status"] in ("running", "paused"):
                cg = cgroups.container_cgroup(self.paths, info.id)
                if cg.exists():
                    warnings += cg.apply(oci_resources(change, creating=False))
            spec_fields = {f.name for f in fields(cfg.spec)}
            new_spec = replace(cfg.spec, **{k: getattr(merged, k) for k in
                                            (f.name for f in fields(ResourceLimits))
                                            if k in spec_fields})
            with self.db.tx() as c:
                c.execute("UPDATE containers SET config_json=? WHERE id=?",
                          (replace(cfg, spec=new_spec).to_json(), info.id))
                self.db.add_event(c, "container", "update", info.id,
                                  {"name": info.name, "image": info.image})
        return warnings

    def resource_limits(self, ref: str) -> dict[str, Any]:
        """The limits in force for a running container, as an OCI ``linux.resources`` dict.

        Raises:
            NoSuchContainer: nothing matches ``ref``.
        """
        from . import cgroups
        info = self._resource_container(ref)
        cg = cgroups.container_cgroup(self.paths, info.id)
        return cg.limits() if cg.exists() else {}

    # -- top with ps options -----------------------------------------------------------
    def top_ps(self, ref: str, ps_args: list[str]) -> tuple[list[str], list[list[str]]]:
        """``docker top CONTAINER [ps OPTIONS]``: the host's ``ps`` output, only the container's rows.

        Args:
            ref: container id, name or prefix.
            ps_args: options for ``ps`` (e.g. ``["-o", "pid,comm"]``, ``["aux"]``).

        Returns:
            (column titles, rows); pids are the host's, as in ``docker top``.

        Raises:
            NoSuchContainer: no such container.
            InvalidState: it is not running.
            InvalidArgument: ps refused the options or printed no PID column.
        """
        from .cgroups.processes import ps_table

        api: Any = self
        pids = [p.pid for p in api.top(ref)]
        return ps_table(pids, ps_args)

    # -- pause -------------------------------------------------------------------------
    def pause(self, ref: str) -> ContainerInfo:
        """Freeze every process of a running container (``runc pause``).

        Raises:
            NoSuchContainer: nothing matches ``ref``.
            InvalidState: it is not running.
            RuntimeFailure: the runtime refused.
        """
        return self._freeze_step(ref, lifecycle.Op.PAUSE)

    def unpause(self, ref: str) -> ContainerInfo:
        """Thaw a paused container (``runc resume``).

        Raises:
            NoSuchContainer: nothing matches ``ref``.
            InvalidState: it is not paused.
            RuntimeFailure: the runtime refused.
        """
        return self._freeze_step(ref, lifecycle.Op.UNPAUSE)

    def _freeze_step(self, ref: str, op: lifecycle.Op) -> ContainerInfo:
        # The containers part owns the state: _sync records an exit the
        # monitor reported, _put writes the new state compare-and-swap (so an
        # exit recorded meanwhile is kept) with the event in the same transaction.
        api: Any = self
        cid = self._resource_container(ref).id
        with self.lock(cid):
            row, cfg, st = api._sync(cid)
            new_status = lifecycle.next_status(st.status, op, row["name"])
            if op is lifecycle.Op.PAUSE:
                api.runtime.pause(cid)
            else:
                api.runtime.resume(cid)
            paused_ns = time.time_ns() if op is lifecycle.Op.PAUSE else 0
            api._put(cid, row["name"], cfg, st, st.but(status=new_status.value, paused_ns=paused_ns),
                     event=(op.value, {}))
        return self._resource_container(cid)

    # -- events ------------------------------------------------------------------------
    def events(self, *, since: str | datetime | float | None = None,
               until: str | datetime | float | None = None,
               filters: FilterArg = None) -> list[Event]:
        """Recorded events, oldest first (``docker events --since ... --until ...``).

        Args:
            since: RFC 3339 time, unix seconds, or a duration ago (``10m``).
            until: same forms.
            filters: ``type=``, ``event=``, ``container=``, ``image=``,
                ``volume=``, ``network=``, ``label=`` (Docker's meaning).

        Raises:
            InvalidArgument: a bad time or filter.
        """
        from .events import list_events
        return list_events(self.db, since=since, until=until, filters=filters)

    def follow_events(self, since_seq: int | None = None, *,
                      since: str | datetime | float | None = None,
                      stop: threading.Event | Callable[[], bool] | None = None,
                      poll: float = 0.2, filters: FilterArg = None) -> Iterator[Event]:
        """Events as any process records them, in order, each once, until ``stop``.

        One indexed query per ``poll`` seconds, so a UI can follow cheaply
        from a worker thread.

        Args:
            since_seq: start after this event (``Event.seq``); None with no
                ``since`` starts at now.
            since: start at the first event at or after this time instead.
            stop: a ``threading.Event`` or a callable; following ends when set/true.
            poll: seconds between checks when nothing is new.
            filters: as for :meth:`events`.

        Raises:
            InvalidArgument: a bad time or filter.
        """
        from .events import EventFilter, first_seq_since, follow_events, parse_time
        flt = EventFilter.parse(filters)
        if since is not None and since_seq is None:
            since_seq = first_seq_since(self.db, parse_time(since))
        return follow_events(self.db, since_seq=since_seq, stop=stop, poll=poll, filters=flt,
                             tick=self._oom_ticker())

    def _oom_ticker(self, period: float = OOM_CHECK_PERIOD) -> Callable[[], None]:
        """A :meth:`check_oom_kills` that runs at most once per ``period`` seconds."""
        due = [0.0]

        def tick() -> None:
            now = time.monotonic()
            if now >= due[0]:
                due[0] = now + period
                self.check_oom_kills()
        return tick

    def check_oom_kills(self) -> int:
        """Record OOM kills in running containers that have a memory limit (an ``oom`` event each).

        Docker reports an ``oom`` as soon as the kernel kills a process of a
        container, even if the container keeps running (its main process
        survived). Without a daemon nobody watches, so followers of events
        call this about once a second: one query, then one small cgroup file
        read per running container with ``--memory``; only a container whose
        count rose is synced (its state and event written compare-and-swap,
        so several followers record a kill once).

        Returns:
            How many containers had new OOM kills.
        """
        rows = self.db.query(
            "SELECT id, json_extract(state_json, '$.oom_kills') AS seen FROM containers "
            "WHERE status IN ('running', 'paused') AND json_extract(config_json, '$.spec.memory') > 0")
        if not rows:
            return 0
        from .cgroups import oom_kill_count
        api: Any = self
        found = 0
        for row in rows:
            try:
                kills = oom_kill_count(self.paths, row["id"])
                if kills is not None and kills > (row["seen"] or 0):
                    api._sync(row["id"])
                    found += 1
            except EngineError:
                continue          # removed meanwhile, or its cgroup is unreadable
        return found

    # -- disk ----------------------------------------------------------------------------
    def system_df(self) -> DiskUsage:
        """Disk used by images, containers and volumes, and how much a prune frees."""
        from .diskusage import disk_usage
        return disk_usage(self.db, self.paths, self.image_store)

    def system_prune(self, *, all: bool = False, volumes: bool = False) -> PruneReport:
        """Remove what nothing uses, in Docker's ``system prune`` order.

        Stopped containers, then networks no container uses, then (with
        ``volumes``) unused anonymous volumes — every unused volume with
        ``all`` — then dangling images (with ``all``: every image no container uses).

        Returns:
            What was removed and the bytes freed.
        """
        from .volumes import dir_size
        api: Any = self
        sizes = {r["id"]: dir_size(self.paths.container(r["id"]) / "upper") for r in self.db.query(
            "SELECT id FROM containers WHERE status IN ('created', 'exited')")}
        containers = [str(cid) for cid in api.container_prune()]
        networks = api.network_prune()
        vol_names, vol_freed = api.volume_prune(all=all) if volumes else ([], 0)
        image_ids, image_freed = api.image_prune(all=all)
        freed = sum(sizes.get(cid, 0) for cid in containers) + vol_freed + image_freed
        return PruneReport(containers=tuple(containers), images=tuple(image_ids),
                           volumes=tuple(vol_names), networks=tuple(networks),
                           space_reclaimed=freed)

    # -- helpers -------------------------------------------------------------------------
    def _resource_container(self, ref: str) -> ContainerInfo:
        return self.container(ref)  # type: ignore[attr-defined,no-any-return]

    def _container_row(self, cid: str) -> Any:
        row = self.db.one("SELECT status, config_json, state_json FROM containers WHERE id=?", (cid,))
        if row is None:
            raise NoSuchContainer(cid)
        return row


__all__ = ["ResourcesAPI"]
