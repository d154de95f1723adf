"""Kernel networking through pyroute2: the only module that imports it.

Namespaces are handled the way ``ip netns add`` does it, but with threads
instead of a forked child: a short-lived thread unshares its own network
namespace and bind-mounts ``/proc/thread-self/ns/net`` onto a file, which
then keeps the namespace alive with no process in it. Work inside a
namespace uses a netlink socket opened by a thread that entered it (a
netlink socket stays bound to the namespace it was created in), so the
engine never forks and never moves its own threads.

Everything here is idempotent where that makes sense: deleting what is
already gone succeeds.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import functools
import os
import socket
import threading
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import importlib.util
import sys


def _lean_pyroute2() -> None:
    """Let pyroute2's rtnetlink part be imported without ``pyroute2/__init__.py``.

    That file only re-exports every class of the library (NDB, IPDB,
    WireGuard, nl80211...), importing them all: ~40 ms more per process
    than the part portside uses, paid by every command that touches the
    network. The package gets its real module object with ``__path__`` set,
    so submodules import as usual (``from pyroute2 import config`` too); the
    first look-up of any other name on it runs the real ``__init__`` there,
    so other users in the process see the whole package.
    """
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    pkg = importlib.util.module_from_spec(spec)

    def __getattr__(name: str) -> Any:
        if not name.startswith("_") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")     # "from pyroute2 import config"
        if pkg.__dict__.pop("__getattr__", None) is None:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")
        spec.loader.exec_module(pkg)         # type: ignore[union-attr]
        return getattr(pkg, name)

    pkg.__getattr__ = __getattr__            # type: ignore[attr-defined]
    sys.modules["pyroute2"] = pkg


_lean_pyroute2()
from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError as _NetlinkError  # noqa: E402

from ..errors import NetworkError, NeedsRoot

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = 0

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

T = TypeVar("T")

NetlinkError = _NetlinkError
"""Re-exported so callers can catch kernel refusals without importing pyroute2."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread (namespace changes die with it) and return its result."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    t = threading.Thread(target=run, name="portside-netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _off_event_loop(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` in a short-lived thread when this thread runs an asyncio loop.

    pyroute2's synchronous API drives an event loop of its own in the calling
    thread, which fails ("This event loop is already running") when an async
    front end (a Textual app, a test on its loop) calls the engine directly.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        return _in_thread(lambda: fn(*args, **kwargs))
    return wrapper


# -- namespaces -------------------------------------------------------------------

def ensure_netns_dir(directory: Path) -> None:
    """Make ``directory`` a shared mount point, as ``ip netns`` does for /run/netns.

    Mount namespaces made later (by systemd units, other engines) then get
    a peer of it, so unmounting a namespace file here also unmounts their
    copy and the namespace can really die.
    """
    directory.mkdir(parents=True, exist_ok=True)
    d = os.fsencode(directory)
    if _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) == 0:
        return
    # EINVAL: not a mount point yet; bind it onto itself, then share it.
    _check(_libc.mount(d, d, b"none", MS_BIND | MS_REC, None), f"bind-mount {directory}")
    _check(_libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None), f"share {directory}")


def release_netns_dir(directory: Path) -> None:
    """Undo :func:`ensure_netns_dir` (``system reset``, tests); the directory must be empty."""
    if is_mountpoint(directory):
        _libc.umount2(os.fsencode(directory), MNT_DETACH)


def is_mountpoint(path: Path) -> bool:
    """Whether ``path`` is a mount point (per /proc/self/mountinfo)."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                mp = line.split(b" ", 5)[4].decode(errors="replace")
                mp = mp.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
                       .replace("\\134", "\\")
                if mp == target:
                    return True
    except OSError:
        return False
    return False


@_off_event_loop
def create_netns(path: Path) -> None:
    """Create a network namespace held by a bind mount on ``path`` (with ``lo`` up).

    Raises:
        NeedsRoot: not allowed to unshare or mount.
        NetworkError: the file exists already or the kernel refused.
    """
    try:
        ensure_netns_dir(path.parent)
    except PermissionError as err:
        raise NeedsRoot("creating a network namespace") from err
    except OSError as err:
        if err.errno == errno.EPERM:
            raise NeedsRoot("creating a network namespace") from err
        raise NetworkError(f"cannot prepare {path.parent} for namespaces: {err}") from err
    p = os.fsencode(path)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    except FileExistsError as err:
        raise NetworkError(f"network namespace {path} exists already",
                           hint="a leftover: run any portside command to clean up, then retry") from err

    def make() -> int:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _check(_libc.mount(b"/proc/thread-self/ns/net", p, b"none", MS_BIND, None),
               f"bind-mount the namespace on {path}")
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
        return s.detach()

    try:
        fd = _in_thread(make)
    except OSError as err:
        remove_netns(path)
        if err.errno in (errno.EPERM, errno.EACCES):
            raise NeedsRoot("creating a network namespace") from err
        raise NetworkError(f"cannot create network namespace {path}: {err}") from err
    with IPRoute(fileno=fd) as ipr:
        ipr.link("set", index=1, state="up")       # lo is always index 1 in a new namespace


def remove_netns(path: Path) -> None:
    """Unmount and remove a namespace file; absent is fine."""
    _libc.umount2(os.fsencode(path), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def netns_mounted(path: Path) -> bool:
    """Whether ``path`` holds a namespace (an nsfs bind mount)."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


@contextmanager
def netns_route(path: Path) -> Iterator[IPRoute]:
    """An ``IPRoute`` whose socket lives in the namespace at ``path``.

    Raises:
        NetworkError: the namespace file is missing or not a namespace.
    """
    def open_socket() -> int:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"enter {path}")
        finally:
            os.close(fd)
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE).detach()

    try:
        fd = _in_thread(open_socket)
    except OSError as err:
        raise NetworkError(f"cannot enter network namespace {path}: {err}",
                           hint="the container's network is gone; restart the container") from err
    ipr = IPRoute(fileno=fd)
    try:
        yield ipr
    finally:
        ipr.close()


@contextmanager
def host_route() -> Iterator[IPRoute]:
    """An ``IPRoute`` in the engine's own (host) namespace."""
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


# -- links --------------------------------------------------------------------------

def link_index(ipr: IPRoute, name: str) -> int | None:
    """Index of interface ``name``, or None.

    One ``RTM_GETLINK`` by name, not pyroute2's ``link_lookup`` (a dump of
    every link: slow on a host with hundreds of veths).
    """
    try:
        msgs = ipr.link("get", ifname=name)
    except NetlinkError as err:
        if err.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    for m in msgs:
        return int(m["index"])
    return None


OWNER_PREFIX = "portside:"
"""A bridge's alias (``ip link`` shows it) is this and the state root it belongs to."""


@_off_event_loop
def ensure_bridge(name: str, address: IPv4Interface, mtu: int = 1500, *, owner: str = "") -> bool:
    """Create bridge ``name`` with ``address`` and bring it up; no-op if it is there.

    A new bridge gets ``owner`` (its state root, an absolute path) as its
    alias, so a bridge whose root is gone can be recognised; a path too long
    for an alias (255 bytes) gets none.
    Returns True when the bridge was created now.

    Raises:
        NetworkError: the kernel refused (e.g. no bridge module).
    """
    with host_route() as ipr:
        idx = link_index(ipr, name)
        created = idx is None
        try:
            if created:
                ipr.link("add", ifname=name, kind="bridge", br_stp_state=0, mtu=mtu)
                idx = link_index(ipr, name)
                assert idx is not None
                alias = _owner_alias(owner)
                if alias:
                    try:
                        ipr.link("set", index=idx, ifalias=alias)
                    except NetlinkError:
                        pass          # a label only: the bridge works without it
            assert idx is not None
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                    for a in ipr.get_addr(index=idx, family=socket.AF_INET)}
            if (str(address.ip), address.network.prefixlen) not in have:
                ipr.addr("add", index=idx, address=str(address.ip),
                         prefixlen=address.network.prefixlen)
            ipr.link("set", index=idx, state="up")
        except NetlinkError as err:
            if err.code == errno.EPERM:
                raise NeedsRoot(f"creating bridge {name}") from err
            raise NetworkError(f"cannot set up bridge {name}: {err}",
                               hint="check that the bridge kernel module is available") from err
    return created


def _change_link(ipr: IPRoute, name: str, what: str, command: str, **attrs: Any) -> bool:
    """``ip link <command>`` on interface ``name`` of ``ipr``'s namespace; False if it is not there.

    Raises:
        NetworkError: the kernel refused (``what`` says what was being done).
    """
    idx = link_index(ipr, name)
    if idx is None:
        return False
    try:
        ipr.link(command, index=idx, **attrs)
    except NetlinkError as err:
        if err.code == errno.ENODEV:
            return False                  # gone meanwhile
        raise NetworkError(f"cannot {what} {name}: {err}") from err
    return True


@_off_event_loop
def delete_link(name: str) -> bool:
    """Delete interface ``name`` in the host namespace; returns False if it was not there."""
    with host_route() as ipr:
        return _change_link(ipr, name, "delete interface", "del")


@_off_event_loop
def bridge_addresses(name: str) -> list[IPv4Interface] | None:
    """The IPv4 addresses of host interface ``name``; None if there is no such interface."""
    with host_route() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            return None
        return [IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                for a in ipr.get_addr(index=idx, family=socket.AF_INET)]


def _owner_alias(owner: str) -> bytes:
    """The alias naming ``owner``; empty if it is not absolute or too long to keep whole."""
    alias = os.fsencode(OWNER_PREFIX + owner)
    return alias if owner.startswith("/") and len(alias) < 255 else b""


def owned_bridges(sys_root: Path = Path("/sys")) -> list[tuple[str, str, int]]:
    """``(bridge, state root, ports)`` of every portside bridge on the host.

    The root is read from the bridge's alias (bridges without one are not
    listed), the ports from its ``brif`` directory.
    """
    out = []
    base = sys_root / "class" / "net"
    try:
        names = os.listdir(base)
    except OSError:
        return []
    prefix = os.fsencode(OWNER_PREFIX)
    for name in names:
        if not (name.startswith("ps-") or name.startswith("portside")):
            continue
        try:
            alias = (base / name / "ifalias").read_bytes().rstrip(b"\n")
            ports = len(os.listdir(base / name / "brif"))
        except OSError:
            continue
        if alias.startswith(prefix) and alias[len(prefix):].startswith(b"/"):
            out.append((name, os.fsdecode(alias[len(prefix):]), ports))
    return out


@_off_event_loop
def link_down(name: str) -> bool:
    """Set host interface ``name`` down; returns False if it is not there."""
    with host_route() as ipr:
        return _change_link(ipr, name, "take down", "set", state="down")


@_off_event_loop
def link_exists(name: str) -> bool:
    with host_route() as ipr:
        return link_index(ipr, name) is not None


@_off_event_loop
def bridge_ports(bridge: str) -> list[str]:
    """Names of the interfaces enslaved to ``bridge`` (empty if it does not exist)."""
    with host_route() as ipr:
        idx = link_index(ipr, bridge)
        if idx is None:
            return []
        return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()
                if link.get_attr("IFLA_MASTER") == idx]


@_off_event_loop
def add_veth(host_if: str, netns: Path, ifname: str, mac: str, address: IPv4Interface,
             gateway: IPv4Address | None, bridge: str, mtu: int = 1500) -> None:
    """Create a veth pair: ``host_if`` on ``bridge``, ``ifname`` inside ``netns``.

    The inner end gets ``mac`` and ``address`` and, when ``gateway`` is
    given, the default route through it.

    Raises:
        NetworkError: the kernel refused; nothing of the pair is left behind.
    """
    try:
        with host_route() as ipr:
            br = link_index(ipr, bridge)
            if br is None:
                raise NetworkError(f"bridge {bridge} is missing",
                                   hint="retry; portside recreates it on the next start")
            # This container's pair from an earlier run, its namespace still being destroyed.
            _change_link(ipr, host_if, "replace the dying", "del")
            nsfd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link("add", ifname=host_if, kind="veth", mtu=mtu,
                         peer={"ifname": ifname, "net_ns_fd": nsfd, "address": mac, "mtu": mtu})
            finally:
                os.close(nsfd)
            idx = link_index(ipr, host_if)
            assert idx is not None
            ipr.link("set", index=idx, master=br)
            _set_hairpin(host_if)
            ipr.link("set", index=idx, state="up")
        with netns_route(netns) as nipr:
            inner = link_index(nipr, ifname)
            assert inner is not None
            nipr.addr("add", index=inner, address=str(address.ip),
                      prefixlen=address.network.prefixlen)
            nipr.link("set", index=inner, state="up")
            if gateway is not None:
                nipr.route("add", dst="0.0.0.0/0", gateway=str(gateway))
    except NetlinkError as err:
        delete_link(host_if)
        raise NetworkError(f"cannot connect {ifname} to bridge {bridge}: {err}") from err
    except BaseException:
        delete_link(host_if)
        raise


def _set_hairpin(host_if: str, sys_root: Path = Path("/sys")) -> None:
    """Let the bridge send a frame back out of the port it came in on.

    With br_netfilter, a container connecting to its own published port
    (on the gateway or another host address) is DNATed back to itself at
    the bridge layer, and the bridge drops frames for the ingress port
    unless the port is in hairpin mode (what Docker does without its proxy).
    """
    path = sys_root / "class" / "net" / host_if / "brport" / "hairpin_mode"
    try:
        path.write_text("1\n")
    except OSError as err:
        raise NetworkError(f"cannot set hairpin mode on {host_if}: {err}") from err


@_off_event_loop
def remove_veth(host_if: str, netns: Path | None, ifname: str) -> None:
    """Delete a veth pair from either end; already gone is fine."""
    if delete_link(host_if):
        return
    if netns is not None and netns_mounted(netns):
        with netns_route(netns) as nipr:
            _change_link(nipr, ifname, f"delete (in {netns})", "del")


@_off_event_loop
def has_default_route(netns: Path) -> bool:
    """Whether the namespace has an IPv4 default route already."""
    with netns_route(netns) as nipr:
        return any(r["dst_len"] == 0 for r in nipr.get_routes(family=socket.AF_INET, table=254))


@_off_event_loop
def set_default_route(netns: Path, gateway: IPv4Address) -> None:
    """Route 0.0.0.0/0 in the namespace through ``gateway`` (replacing any default route).

    Raises:
        NetworkError: the kernel refused (no interface of the namespace reaches ``gateway``).
    """
    try:
        with netns_route(netns) as nipr:
            nipr.route("replace", dst="0.0.0.0/0", gateway=str(gateway))
    except NetlinkError as err:
        raise NetworkError(f"cannot route {netns.name} through {gateway}: {err}") from err


@_off_event_loop
def host_subnets(exclude: set[str]) -> list[tuple[str, IPv4Network]]:
    """``(interface, subnet)`` of the host's main-table IPv4 routes and addresses, not on ``exclude``.

    Default routes are skipped: they overlap everything by design.
    Interface names are looked up one by one (``if_indextoname``) rather
    than by dumping every link: a host with hundreds of veths answers a
    link dump slowly, and this runs whenever a bridge comes up.
    """
    skip = set()
    for name in exclude:
        try:
            skip.add(socket.if_nametoindex(name))
        except OSError:
            pass

    def name_of(index: int | None) -> str:
        try:
            return socket.if_indextoname(index) if index else "?"
        except OSError:
            return "?"

    out = []
    with host_route() as ipr:
        for r in ipr.get_routes(family=socket.AF_INET, table=254):
            if r["dst_len"] == 0 or r.get_attr("RTA_OIF") in skip:
                continue
            dst = r.get_attr("RTA_DST")
            if dst:
                out.append((name_of(r.get_attr("RTA_OIF")),
                            IPv4Network(f"{dst}/{r['dst_len']}", strict=False)))
        # Addresses on links that are down have no route yet, but will when they come up.
        for a in ipr.get_addr(family=socket.AF_INET):
            addr = a.get_attr("IFA_ADDRESS")
            if a["index"] in skip or not addr or IPv4Network(addr).is_loopback:
                continue
            net = IPv4Network(f"{addr}/{a['prefixlen']}", strict=False)
            dev = name_of(a["index"])
            if (dev, net) not in out:
                out.append((dev, net))
    return out


# -- sysctls ------------------------------------------------------------------------

def set_sysctl(key: str, value: str, proc: Path = Path("/proc")) -> None:
    """Write ``net.ipv4.ip_forward``-style ``key`` in the engine's namespace if it differs.

    Raises:
        NeedsRoot: not allowed to write it.
    """
    path = proc / "sys" / key.replace(".", "/")
    try:
        if path.read_text().strip() == value:
            return
        path.write_text(value + "\n")
    except PermissionError as err:
        raise NeedsRoot(f"setting {key}") from err
    except OSError as err:
        raise NetworkError(f"cannot set {key}={value}: {err}") from err


def get_sysctl(key: str, proc: Path = Path("/proc")) -> str | None:
    try:
        return (proc / "sys" / key.replace(".", "/")).read_text().strip()
    except OSError:
        return None
