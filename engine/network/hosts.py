"""/etc/hosts and /etc/resolv.conf for containers; names resolve without a DNS daemon.

Each container gets its own hosts file (bind-mounted at /etc/hosts). The
lines about networks — the container's own addresses and, on user-defined
networks, every other running member by name and ``--network-alias`` — sit
between two marker comments; the engine rewrites that block whenever a
member comes or goes. Rewrites happen in place (same inode), because a
bind mount pins the inode: a rename would leave the container reading the
old file.
"""
from __future__ import annotations

import os
import re
from ipaddress import ip_address
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InvalidArgument

BEGIN_MARK = "# portside networks: managed, rewritten as containers come and go"
END_MARK = "# end of portside networks"

_BASE = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

# A hostname or alias: RFC 1123 labels; Docker also allows '_' in names.
_NAME_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")

FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
"""Used, like Docker, when the host's only nameservers are on loopback (unreachable from a container)."""


def check_name(name: str, what: str = "alias") -> str:
    """Validate a host name or ``--network-alias``.

    Raises:
        InvalidArgument: not a valid host name.
    """
    if not _NAME_RE.match(name) or ".." in name:
        raise InvalidArgument(f"invalid {what} {name!r}",
                              hint="use letters, digits, '-', '_' and '.'")
    return name


def parse_add_host(text: str) -> tuple[str, str]:
    """Parse ``--add-host NAME:IP`` (or ``NAME=IP``); ``IP`` may be ``host-gateway``.

    Returns ``(name, ip)`` with ``ip`` normalised (or ``"host-gateway"``).

    Raises:
        InvalidArgument: malformed.
    """
    sep = "=" if "=" in text else ":"
    name, found, ip = text.partition(sep)
    if not found or not name or not ip:
        raise InvalidArgument(f"invalid --add-host {text!r}", hint="use NAME:IP, e.g. db:10.0.0.5")
    check_name(name, "host name in --add-host")
    if ip == "host-gateway":
        return name, ip
    try:
        return name, str(ip_address(ip.strip("[]")))
    except ValueError as err:
        raise InvalidArgument(f"invalid address {ip!r} in --add-host {text!r}",
                              hint="give an IP address or host-gateway") from err


def parse_dns(servers: Iterable[str]) -> list[str]:
    """Validate ``--dns`` addresses.

    Raises:
        InvalidArgument: one is not an IP address.
    """
    out = []
    for s in servers:
        try:
            out.append(str(ip_address(s.strip())))
        except ValueError as err:
            raise InvalidArgument(f"invalid --dns address {s!r}",
                                  hint="give the nameserver's IP address") from err
    return out


def managed_block(entries: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The marked block of ``(ip, names)`` lines (names deduplicated, order kept)."""
    lines = [BEGIN_MARK]
    for ip, names in entries:
        uniq = list(dict.fromkeys(n for n in names if n))
        if uniq:
            lines.append(f"{ip}\t{' '.join(uniq)}")
    lines.append(END_MARK)
    return "\n".join(lines) + "\n"


def hosts_content(entries: Sequence[tuple[str, Sequence[str]]],
                  extra: Sequence[tuple[str, str]] = ()) -> str:
    """A container's whole /etc/hosts.

    Args:
        entries: ``(ip, names)`` for the managed block: the container's own
            addresses first, then the other members of its networks.
        extra: ``(name, ip)`` from ``--add-host``, already resolved.
    """
    text = _BASE
    for name, ip in extra:
        text += f"{ip}\t{name}\n"
    return text + managed_block(entries)


def host_mode_hosts(host_hosts: str, extra: Sequence[tuple[str, str]] = ()) -> str:
    """/etc/hosts for ``--network host``: the host's, plus ``--add-host`` lines."""
    text = host_hosts if host_hosts.endswith("\n") or not host_hosts else host_hosts + "\n"
    for name, ip in extra:
        text += f"{ip}\t{name}\n"
    return text


def replace_block(text: str, block: str) -> str:
    """``text`` with its managed block replaced by ``block`` (appended if missing)."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, ln in enumerate(lines) if ln.rstrip("\n") == BEGIN_MARK)
        end = next(i for i in range(start, len(lines)) if lines[i].rstrip("\n") == END_MARK)
    except StopIteration:
        if text and not text.endswith("\n"):
            text += "\n"
        return text + block
    return "".join(lines[:start]) + block + "".join(lines[end + 1:])


def resolv_conf_content(host_resolv: str, dns: Sequence[str] = (), *,
                        keep_loopback: bool = False) -> str:
    """A container's /etc/resolv.conf built from the host's.

    Args:
        host_resolv: the host's resolv.conf text.
        dns: ``--dns`` servers; replace the host's nameservers when given.
        keep_loopback: host networking, where the host's 127.0.0.53 works.
    """
    search: list[str] = []
    options: list[str] = []
    servers: list[str] = []
    for raw in host_resolv.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, rest = line.partition(" ")
        if key == "nameserver":
            servers.append(rest.strip())
        elif key in ("search", "domain"):
            search = rest.split()
        elif key == "options":
            options += rest.split()
    if dns:
        servers = list(dns)
    elif not keep_loopback:
        servers = [s for s in servers if not _is_loopback(s)]
        if not servers:
            servers = list(FALLBACK_NAMESERVERS)
    out = [f"nameserver {s}" for s in servers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(dict.fromkeys(options)))
    return "\n".join(out) + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ip_address(addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def read_host_resolv(path: Path = Path("/etc/resolv.conf")) -> str:
    """The host's resolv.conf; systemd-resolved's upstream list when the stub is in use."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    upstream = Path("/run/systemd/resolve/resolv.conf")
    if "127.0.0.53" in text and upstream.exists():
        try:
            return upstream.read_text()
        except OSError:
            pass
    return text


def write_in_place(path: Path, content: str) -> None:
    """Replace ``path``'s content keeping its inode (it may be bind-mounted); create it if missing.

    Not fsynced: the container reads it through the page cache, and every
    start writes it again, so a crash can lose nothing that matters.
    """
    data = content.encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def rewrite_block(path: Path, block: str) -> bool:
    """Replace the managed block of the hosts file at ``path`` in place.

    Returns False when the file does not exist (the container has none yet).
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    new = replace_block(text, block)
    if new != text:
        write_in_place(path, new)
    return True

