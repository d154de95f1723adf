"""Published ports: ``-p`` specs, host port checks, and the nftables ruleset.

Parsing is pure. Host ports are checked by binding a socket to them (what
Docker's proxy would have failed on) and against ports other containers
already publish (kernel NAT binds no socket, so the bind test alone would
miss those). The NAT itself is one nftables table that portside owns and
rewrites whole from the state database (:func:`render_ruleset`), so what is
in the kernel always matches the database and a crash leaves nothing that
the next rewrite does not fix.
"""
from __future__ import annotations

import errno
import re
import socket
import subprocess
import threading
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network
from typing import Callable, Iterable, Sequence

from ..errors import InvalidArgument, NetworkError
from .model import PortMapping

PROTOCOLS = ("tcp", "udp")

_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class PortSpec:
    """One parsed ``-p`` flag, before host ports are chosen.

    ``host_ports`` is ``None`` when the host port is left to portside; a
    range of one host port per container port maps them one to one, and a
    host range with a single container port means "any free port of it".
    """

    host_ip: str                               # "" = all host addresses
    host_ports: tuple[int, int] | None         # inclusive range
    container_ports: tuple[int, int]           # inclusive range
    protocol: str

    @property
    def container_count(self) -> int:
        return self.container_ports[1] - self.container_ports[0] + 1


def _parse_range(text: str, what: str, spec: str) -> tuple[int, int]:
    m = _PORT_RE.match(text)
    if not m:
        raise InvalidArgument(f"invalid {what} port {text!r} in -p {spec!r}",
                              hint="ports are numbers 1-65535, ranges look like 8000-8010")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise InvalidArgument(f"{what} port {text!r} in -p {spec!r} is out of range",
                              hint="ports are numbers 1-65535")
    if hi < lo:
        raise InvalidArgument(f"{what} port range {text!r} in -p {spec!r} is backwards",
                              hint=f"write it as {hi}-{lo}")
    return lo, hi


def parse_port_spec(spec: str) -> PortSpec:
    """Parse ``[ip:][host[-range]:]container[-range][/tcp|udp]``.

    Raises:
        InvalidArgument: the spec is malformed (the message says which part).
    """
    text = spec.strip()
    if not text:
        raise InvalidArgument("empty -p value", hint="e.g. -p 8080:80")
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise InvalidArgument(f"unsupported protocol {proto!r} in -p {spec!r}",
                                  hint="use /tcp or /udp")
    if text.startswith("["):
        raise InvalidArgument(f"IPv6 host address in -p {spec!r} is not supported yet",
                              hint="publish on an IPv4 address, e.g. 127.0.0.1:8080:80")
    parts = text.split(":")
    if len(parts) > 3:
        raise InvalidArgument(f"invalid -p {spec!r}",
                              hint="use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")
    host_ip = ""
    host_text = ""
    if len(parts) == 3:
        host_ip, host_text, ctr_text = parts
        if host_ip:
            try:
                ip = IPv4Address(host_ip)
            except (AddressValueError, ValueError) as err:
                raise InvalidArgument(f"invalid host address {host_ip!r} in -p {spec!r}",
                                      hint="give an IPv4 address of this host, e.g. 127.0.0.1") from err
            host_ip = "" if ip.is_unspecified else str(ip)
    elif len(parts) == 2:
        host_text, ctr_text = parts
    else:
        ctr_text = parts[0]
    ctr = _parse_range(ctr_text, "container", spec)
    host = _parse_range(host_text, "host", spec) if host_text else None
    if host is not None:
        n_host, n_ctr = host[1] - host[0] + 1, ctr[1] - ctr[0] + 1
        if n_ctr > 1 and n_host != n_ctr:
            raise InvalidArgument(
                f"-p {spec!r} maps {n_ctr} container ports to {n_host} host ports",
                hint="give host and container ranges of the same length")
    return PortSpec(host_ip, host, ctr, proto)


def exposed_specs(exposed_ports: Iterable[str]) -> list[PortSpec]:
    """``-P``: one spec per image ``ExposedPorts`` key (``80/tcp``, ``53/udp``, ``8000-8002``).

    Raises:
        InvalidArgument: the image declares a malformed port.
    """
    return [parse_port_spec(p) for p in exposed_ports]


# -- choosing host ports --------------------------------------------------------

BindProbe = Callable[[str, int, str], int]
"""``probe(host_ip, port, protocol)`` binds and returns the bound port (0 asks the kernel)."""


def bind_probe(host_ip: str, port: int, protocol: str) -> int:
    """Bind ``host_ip:port`` for a moment; return the port (the kernel's pick if 0).

    Raises:
        OSError: the port is in use or the address is not this host's.
    """
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if protocol == "tcp":
            # A listener holds the port even with SO_REUSEADDR; connections
            # lingering in TIME_WAIT do not, as for any server restarting.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip or "0.0.0.0", port))
        return int(s.getsockname()[1])


def _overlaps(a: PortMapping, b: PortMapping) -> bool:
    return (a.protocol == b.protocol and a.host_port == b.host_port
            and (not a.host_ip or not b.host_ip or a.host_ip == b.host_ip))


def allocate_ports(specs: Sequence[PortSpec], taken: Sequence[tuple[str, PortMapping]], *,
                   probe: BindProbe = bind_probe, attempts: int = 64) -> list[PortMapping]:
    """Choose host ports for ``specs``; every one free on the host and in ``taken``.

    Args:
        specs: parsed ``-p``/``-P`` specs.
        taken: ``(container name, mapping)`` already published by other containers
            (an owner starting "another " is shown as it is: another root's).
        probe: binds a port to test it (tests pass a fake).
        attempts: bound on retries when the kernel picks a port another container holds.

    Raises:
        InvalidArgument: a port is taken (the message says by whom and what to do).
    """
    chosen: list[PortMapping] = []

    def holder(m: PortMapping) -> str | None:
        for name, t in taken:
            if _overlaps(m, t):
                return name if name.startswith("another ") else f"container {name}"
        for t in chosen:
            if _overlaps(m, t):
                return "another -p of this container"
        return None

    def host_free(m: PortMapping) -> OSError | None:
        try:
            probe(m.host_ip, m.host_port, m.protocol)
        except OSError as err:
            return err
        return None

    def fail(m: PortMapping, who: str) -> InvalidArgument:
        return InvalidArgument(f"port {m.host_port}/{m.protocol} on {m.host_ip or '0.0.0.0'} "
                               f"is already published by {who}", hint="pick another host port")

    for spec in specs:
        for i in range(spec.container_count):
            cport = spec.container_ports[0] + i
            if spec.host_ports is None:
                chosen.append(_random_port(spec, cport, holder, probe, attempts))
                continue
            lo, hi = spec.host_ports
            if spec.container_count > 1 or lo == hi:
                m = PortMapping(spec.host_ip, lo + i, cport, spec.protocol)
                who = holder(m)
                if who:
                    raise fail(m, who)
                err = host_free(m)
                if err is not None:
                    raise _host_error(m, err)
                chosen.append(m)
                continue
            # a host range for one container port: the first free port of it
            for hport in range(lo, hi + 1):
                m = PortMapping(spec.host_ip, hport, cport, spec.protocol)
                if holder(m) is None and host_free(m) is None:
                    chosen.append(m)
                    break
            else:
                raise InvalidArgument(
                    f"no free host port in {lo}-{hi}/{spec.protocol} on "
                    f"{spec.host_ip or '0.0.0.0'} for container port {cport}",
                    hint="widen the range or free a port")
    return chosen


def _random_port(spec: PortSpec, cport: int, holder: Callable[[PortMapping], str | None],
                 probe: BindProbe, attempts: int) -> PortMapping:
    last: OSError | None = None
    for _ in range(attempts):
        try:
            port = probe(spec.host_ip, 0, spec.protocol)
        except OSError as err:
            last = err
            break
        m = PortMapping(spec.host_ip, port, cport, spec.protocol)
        if holder(m) is None:
            return m
    if last is not None:
        raise _host_error(PortMapping(spec.host_ip, 0, cport, spec.protocol), last)
    raise NetworkError(f"could not find a free host port for {cport}/{spec.protocol}",
                       hint="publish it on an explicit host port with -p HOST:CONTAINER")


def _host_error(m: PortMapping, err: OSError) -> InvalidArgument:
    where = m.host_ip or "0.0.0.0"
    if err.errno == errno.EADDRINUSE:
        return InvalidArgument(f"port {m.host_port}/{m.protocol} is already in use on {where}",
                               hint="pick another host port")
    if err.errno == errno.EADDRNOTAVAIL:
        return InvalidArgument(f"{where} is not an address of this host (in -p for port "
                               f"{m.container_port}/{m.protocol})",
                               hint="publish on 0.0.0.0, 127.0.0.1 or one of `ip addr`")
    if err.errno == errno.EACCES:
        return InvalidArgument(f"not allowed to use port {m.host_port}/{m.protocol} on {where}",
                               hint="ports below 1024 need root")
    return InvalidArgument(f"cannot use port {m.host_port}/{m.protocol} on {where}: "
                           f"{err.strerror or err}", hint="pick another host port")


# -- the nftables ruleset ---------------------------------------------------------

@dataclass(frozen=True)
class BridgeRules:
    """What the ruleset needs to know about one network."""

    bridge: str
    subnet: IPv4Network
    internal: bool


@dataclass(frozen=True)
class DnatRule:
    """A published port of a running container."""

    mapping: PortMapping
    container_ip: IPv4Address


def render_ruleset(table: str, bridges: Sequence[BridgeRules], dnats: Sequence[DnatRule]) -> str:
    """The ``nft -f`` script that replaces table ``ip <table>`` atomically.

    - ``dnat`` in prerouting *and* output (host-local traffic, so
      ``127.0.0.1:PORT`` works) for destinations that are this host's;
    - masquerade of 127.0.0.0/8 sources leaving on a bridge (the other
      half of the localhost path; the bridge also needs
      ``route_localnet=1``), of container traffic going out, and of
      hairpin traffic (a container reaching its own published port);
    - forwarding between two portside bridges dropped (isolation) except
      to a published port, and for ``--internal`` networks any forwarding
      in or out dropped, and any packet from them to the host itself
      (input hook).
    """
    lines = [f"table ip {table} {{}}", f"delete table ip {table}", f"table ip {table} {{"]
    lines += _chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                    ["fib daddr type local jump published"])
    lines += _chain("output", "type nat hook output priority -100; policy accept;",
                    ["fib daddr type local jump published"])
    rules = []
    for d in sorted(dnats, key=lambda d: (d.mapping.protocol, d.mapping.host_port, d.mapping.host_ip)):
        m = d.mapping
        match = f"ip daddr {m.host_ip} " if m.host_ip else ""
        rules.append(f"{match}{m.protocol} dport {m.host_port} "
                     f"dnat to {d.container_ip}:{m.container_port}")
    lines += _chain("published", None, rules)
    post = []
    for b in bridges:
        br = _q(b.bridge)
        post.append(f"oifname {br} ip saddr 127.0.0.0/8 masquerade")
        post.append(f"oifname {br} ip saddr {b.subnet} ct status dnat masquerade")
        if not b.internal:
            post.append(f"ip saddr {b.subnet} oifname != {br} masquerade")
    lines += _chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;", post)
    fwd = []
    names = [b.bridge for b in bridges]
    for b in bridges:
        br = _q(b.bridge)
        if b.internal:
            fwd.append(f"iifname {br} oifname != {br} drop")
            fwd.append(f"oifname {br} iifname != {br} drop")
    # A published port is the host's: a container on another network reaches
    # it through the host's address (DNAT'd here), as anything else on the
    # host can. Only that; other traffic between networks stays dropped.
    if len([b for b in bridges if not b.internal]) > 1:
        fwd.append("ct status dnat accept")
    for b in bridges:
        others = [_q(n) for n in names if n != b.bridge]
        if not b.internal and others:
            fwd.append(f"iifname {_q(b.bridge)} oifname {{ {', '.join(others)} }} drop")
    lines += _chain("forward", "type filter hook forward priority filter; policy accept;", fwd)
    # The host itself is a way out too: an internal network's containers must
    # not reach the host's listeners (on the gateway address or any other).
    inp = [f"iifname {_q(b.bridge)} drop" for b in bridges if b.internal]
    lines += _chain("input", "type filter hook input priority filter; policy accept;", inp)
    lines.append("}")
    return "\n".join(lines) + "\n"


def delete_script(table: str) -> str:
    """An ``nft -f`` script that removes the table if it exists."""
    return f"table ip {table} {{}}\ndelete table ip {table}\n"


def _chain(name: str, head: str | None, rules: list[str]) -> list[str]:
    body = ([f"    {head}"] if head else []) + [f"    {r}" for r in rules]
    return [f"  chain {name} {{"] + body + ["  }"]


def _q(ifname: str) -> str:
    # Interface names we make are [a-z0-9-]; quoting keeps nft from reading them as keywords.
    return f'"{ifname}"'


class _LibNftables:
    """libnftables (what the ``nft`` command is a thin shell around), called in-process.

    Saves a fork+exec per change (about 15 ms against 1 ms here); one
    context per process, used under a lock since a context is not
    thread-safe.
    """

    def __init__(self) -> None:
        import ctypes.util
        lib = ctypes.CDLL(ctypes.util.find_library("nftables") or "libnftables.so.1", use_errno=True)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise OSError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        self._lib, self._ctx = lib, ctx
        self._lock = threading.Lock()

    def run(self, script: str) -> tuple[int, str]:
        rc, _out, err = self.run_output(script)
        return rc, err

    def run_output(self, script: str) -> tuple[int, str, str]:
        """Run ``script``; return its exit code, output (``list ...``) and errors."""
        with self._lock:
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
            out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        return rc, out.decode(errors="replace"), err.decode(errors="replace")


_lib: _LibNftables | None = None
_lib_tried = False
_lib_guard = threading.Lock()


def _libnftables() -> _LibNftables | None:
    global _lib, _lib_tried
    with _lib_guard:
        if not _lib_tried:
            _lib_tried = True
            try:
                _lib = _LibNftables()
            except (OSError, AttributeError):
                _lib = None         # no library: the nft command does the same job
    return _lib


def run_nft(script: str) -> None:
    """Run an ``nft -f`` script as one atomic transaction (libnftables, else the nft command).

    Raises:
        NetworkError: nftables is missing or refused the script.
    """
    lib = _libnftables()
    if lib is not None:
        rc, err = lib.run(script)
    else:
        try:
            r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                               timeout=30)
        except FileNotFoundError as e:
            raise NetworkError("the nft command is missing",
                               hint="install nftables (apt-get install nftables)") from e
        except subprocess.TimeoutExpired as e:
            raise NetworkError("nft did not answer within 30s") from e
        rc, err = r.returncode, r.stderr
    if rc != 0:
        raise NetworkError(f"nftables refused portside's NAT rules: {err.strip()}",
                           hint="check that the kernel has nf_tables and nft_nat (modprobe nft_nat)")


def table_exists(table: str) -> bool:
    """Whether ``ip <table>`` is in the kernel (for reconcile and tests)."""
    try:
        r = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                           text=True, timeout=30)
    except FileNotFoundError:
        return False
    return r.returncode == 0


_TABLE_RE = re.compile(r"^table ip (portside(?:_[0-9a-f]+)?)$", re.M)
_DNAT_RE = re.compile(r"^\s*(?:ip daddr (\S+) )?(tcp|udp) dport (\d+) dnat to (\S+?):(\d+)\s*$",
                      re.M)


def _nft_output(command: str) -> str | None:
    """Output of one ``nft`` listing command (None if nftables cannot answer)."""
    lib = _libnftables()
    if lib is not None:
        rc, out, _err = lib.run_output(command)
        return out if rc == 0 else None
    try:
        r = subprocess.run(["nft", *command.split()], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def parse_published(text: str) -> list[PortMapping]:
    """The mappings in an ``nft list chain ... published`` listing (what :func:`render_ruleset` wrote)."""
    return [PortMapping(m.group(1) or "", int(m.group(3)), int(m.group(5)), m.group(2))
            for m in _DNAT_RE.finditer(text)]


def foreign_published(own_table: str) -> list[tuple[str, PortMapping]]:
    """Ports other portside roots on this host publish: ``(owner, mapping)``.

    Read from their nftables tables (the NAT binds no socket, so a bind
    test cannot see them). Call with the host-wide lock held so the answer
    stays true until our own rules are written.
    """
    tables = _nft_output("list tables")
    if not tables:
        return []
    out: list[tuple[str, PortMapping]] = []
    for table in _TABLE_RE.findall(tables):
        if table == own_table:
            continue
        listing = _nft_output(f"list chain ip {table} published")
        for m in parse_published(listing or ""):
            out.append((f"another portside root (nftables table {table})", m))
    return out
