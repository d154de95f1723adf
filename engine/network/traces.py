"""What of the network a container may have left behind, cheap to ask.

:func:`engine.network.reconcile` starts here; a listing (``ps``) calls
:func:`needs_reconcile` first, so the network code proper (pyroute2,
nftables) is imported only when there is something to clean up.
"""
from __future__ import annotations

from typing import Any

from .bridge import netns_dir

DIRTY = "network.nft_dirty"            # set with every endpoint change, cleared once nft follows
ALIVE_STATUSES = ("running", "paused", "restarting")


def traced_containers(ctx: Any) -> set[str]:
    """Containers with something of the network left: endpoints, ports or a namespace file."""
    ids = {r["container_id"] for r in ctx.db.query(
        "SELECT container_id FROM network_endpoints UNION SELECT container_id FROM port_mappings")}
    try:
        ids.update(p.name for p in netns_dir(ctx.paths).iterdir())
    except OSError:
        pass
    return ids


def stale_containers(ctx: Any) -> list[str]:
    """Containers not running (or gone) that still have network traces."""
    alive = {r["id"] for r in ctx.db.query(
        f"SELECT id FROM containers WHERE status IN ({','.join('?' * len(ALIVE_STATUSES))})",
        ALIVE_STATUSES)}
    return sorted(traced_containers(ctx) - alive)


def needs_reconcile(ctx: Any) -> bool:
    """Whether :func:`engine.network.reconcile` has anything to do (two queries, one listing)."""
    return bool(stale_containers(ctx)) or ctx.db.get_setting(DIRTY) == "1"
