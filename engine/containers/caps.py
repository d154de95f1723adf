"""Linux capabilities: names, Docker's default set, and ``--cap-add/--cap-drop``."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import InvalidArgument

# Index = capability number (linux/capability.h).
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

# Docker's default set (moby daemon/pkg/oci/caps/defaults.go): 14 capabilities.
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)


def host_capabilities(proc: Path = Path("/proc")) -> tuple[str, ...]:
    """Every capability a container can be given here.

    Those the kernel knows (``cap_last_cap``) and this process still has in
    its bounding set: a runtime cannot grant a capability its caller lacks
    (e.g. root without CAP_SYS_RESOURCE in some sandboxes), so
    ``--privileged`` and ``--cap-add ALL`` mean "all of those".
    """
    try:
        last = int((proc / "sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = len(CAPABILITY_NAMES) - 1
    known = CAPABILITY_NAMES[:last + 1]
    try:
        status = (proc / "self/status").read_text()
        bnd = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return known
    return tuple(c for i, c in enumerate(known) if bnd >> i & 1)


def normalize(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` and ``CAP_NET_ADMIN`` all become ``CAP_NET_ADMIN``.

    ``ALL`` stays ``ALL``.

    Raises:
        InvalidArgument: not a capability name.
    """
    n = name.strip().upper()
    if n == "ALL":
        return n
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in CAPABILITY_NAMES:
        raise InvalidArgument(f"unknown capability {name!r}",
                              hint="see capabilities(7); e.g. --cap-add NET_ADMIN")
    return n


def effective_set(add: Iterable[str] = (), drop: Iterable[str] = (), *, privileged: bool = False,
                  all_caps: Iterable[str] = CAPABILITY_NAMES,
                  defaults: Iterable[str] = DEFAULT_CAPS) -> list[str]:
    """The capability set a container gets, by Docker's rules.

    ``--privileged`` gives every capability. ``--cap-add ALL`` gives every
    capability except the dropped ones; ``--cap-drop ALL`` starts from none
    and keeps only the added ones; otherwise the defaults minus the dropped
    plus the added.

    Args:
        add: ``--cap-add`` values (any case, with or without ``CAP_``, or ``ALL``).
        drop: ``--cap-drop`` values.
        privileged: ``--privileged``.
        all_caps: the capabilities the host kernel supports.
        defaults: the base set.

    Returns:
        Capability names (``CAP_...``), in a stable order.

    Raises:
        InvalidArgument: an unknown capability name.
    """
    everything = list(all_caps)
    if privileged:
        return everything
    adds = {normalize(c) for c in add}
    drops = {normalize(c) for c in drop}
    if "ALL" in adds:
        result = [c for c in everything if c not in drops]
    elif "ALL" in drops:
        result = [c for c in everything if c in adds]
    else:
        base = [c for c in defaults if c not in drops]
        result = base + [c for c in everything if c in adds and c not in base]
    return _ordered(result)


def _ordered(caps: Iterable[str]) -> list[str]:
    index = {n: i for i, n in enumerate(CAPABILITY_NAMES)}
    return sorted(set(caps), key=lambda c: index.get(c, 1 << 10))
