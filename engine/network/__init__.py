"""Container networking: bridge networks, published ports, names that resolve.

No daemon and no proxy process: the engine sets the kernel up (bridge,
veth pair, network namespace, nftables NAT) and the kernel does the rest.

The hooks the container lifecycle calls
=======================================

``ctx`` is anything with ``paths``, ``db`` and ``lock(name)`` — the
:class:`engine.Engine` itself. Take the container's own lock first; these
hooks take the ``network`` lock inside it (never the other way round).

``prepare(ctx, container_id, name, spec, *, exposed_ports=(), aliases=(), ip=None, attachments=None) -> NetworkSetup``
    Call on every start, after the container's directory
    (``paths.container(id)``) exists and before the runtime creates the
    container. ``spec`` is the :class:`~engine.records.ContainerSpec`
    (``network``, ``ports``, ``publish_all``, ``dns``, ``add_hosts``,
    ``hostname`` are read); ``exposed_ports`` are the image's
    ``ExposedPorts`` keys (for ``-P``); ``aliases``/``ip`` are
    ``--network-alias``/``--ip``. ``spec.network`` is ``none``, ``host``,
    or a network name (``bridge``/``default`` mean the default network
    ``portside``).

    It validates everything first (unknown network, bad or busy ``-p`` —
    host ports are bind-tested and checked against other containers —,
    bad ``--ip``...) and raises before creating anything. Then it
    allocates the address in the state database, creates the network
    namespace file ``<paths.run>/netns/<id>``, the veth pair into it, the
    bridge if needed, the NAT rules, and writes
    ``paths.container(id)/hosts`` and ``paths.container(id)/resolv.conf``.

    With the result ``setup``:

    - ``config.json`` ``linux.namespaces``: add ``setup.namespace`` unless
      it is ``None`` (``{"type": "network", "path": "<run>/netns/<id>"}``
      on a bridge, ``{"type": "network"}`` for none, ``None`` for host) —
      ``setup.config_namespaces()`` gives the list to append, and
      ``str(setup.netns_path)`` is the ``netns_path`` argument of
      ``containers.spec``;
    - bind-mount ``setup.hosts_path`` on /etc/hosts and
      ``setup.resolv_conf_path`` on /etc/resolv.conf, and do not rewrite
      them: the engine rewrites the hosts file *in place* as peers come
      and go, so a bind mount keeps seeing it;
    - ``setup.ports`` are the published ports (``portside port``,
      ``inspect``); ``setup.warnings`` are for the user.

    ``attachments`` are the container's stored networks
    (``StoredConfig.attachments()``: its ``--network``, then what
    ``network connect``/``disconnect`` changed): every start joins them all,
    ``eth0`` first (it carries the published ports), one more ``ethN`` each;
    an empty list leaves a namespace with only ``lo``.

    If starting fails after ``prepare``, call ``teardown``.

``teardown(ctx, container_id)``
    Call when the container stops (its exit is noticed, ``stop``, ``kill``,
    a restart's stop half) and on ``rm``. Idempotent. Deletes the veths,
    unmounts and removes the namespace file, frees the addresses and host
    ports, rewrites the NAT table and peers' hosts files. The bridge stays
    up while its network exists (``network rm`` and ``reset`` delete it).

``reconcile(ctx) -> list[str]``
    Call where container states are reconciled (after them): it tears
    down what belongs to containers that are gone or no longer running —
    after a crash mid-``run`` or a killed monitor. Cheap when there is
    nothing to do (two queries and a directory listing).

``renamed(ctx, container_id, new_name)``
    Call after a rename so peers resolve the new name.

``hosts_entries(ctx, network)`` / ``refresh_hosts(ctx, network)``
    ``(ip, names)`` of a network's running members / rewrite their hosts
    files now. Names resolve through /etc/hosts only (no DNS daemon):
    on user-defined networks by container name, ``--network-alias`` and
    short id; on the default network a container only knows itself.

``connect``/``disconnect`` (running containers) and ``check_attachment``
(a stopped one, joined at its next start) are used by
:class:`engine.api_networks.NetworksAPI`, which keeps the attachments in
the container's config.

``check(ctx, container_id, spec, *, exposed_ports=()) -> warnings``
    Call in ``create``: refuses what ``prepare`` would refuse up front
    (unknown network, bad or busy ``-p``, bad ``--ip``/``--dns``/
    ``--add-host``/alias) with nothing created, and returns the warnings.

``reset(ctx) -> list[str]``
    ``portside system reset``, after every container is removed: tears
    down leftovers, deletes every bridge, the nftables table, the shared
    mount of ``<run>/netns`` and the network rows.

Host-wide coordination (other roots): :mod:`.hostwide`.
"""
from __future__ import annotations

from typing import Any

from .model import DEFAULT_NETWORK, Endpoint, NetworkInfo, NetworkSetup, PortMapping

_HOOKS = ("check", "connect", "disconnect", "hosts_entries", "prepare", "reconcile",
          "refresh_hosts", "renamed", "reset", "teardown")


def __getattr__(name: str) -> Any:
    # The hooks live in .attach, imported on first use: a command that only
    # reads (``ps``, ``images``) never loads the kernel-facing code.
    if name in _HOOKS:
        from . import attach
        return getattr(attach, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "check", "prepare", "teardown", "reset", "reconcile", "renamed", "hosts_entries", "refresh_hosts",
    "connect", "disconnect", "DEFAULT_NETWORK", "Endpoint", "NetworkInfo", "NetworkSetup",
    "PortMapping",
]
