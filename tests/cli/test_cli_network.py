"""`portside network ...` and `portside port`: output, exit codes, messages (no root needed)."""
from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli_basics import portside


def test_network_verbs_round_trip(tmp_path: Path) -> None:
    r = portside("network", "create", "--subnet", "10.214.7.0/24", "-l", "team=web", "front",
                 root=tmp_path)
    assert r.returncode == 0, r.stderr
    net_id = r.stdout.strip()
    assert len(net_id) == 64

    r = portside("network", "ls", root=tmp_path)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SUBNET", "INTERNAL"]
    assert any(ln.split()[:2] == [net_id[:12], "front"] for ln in lines)
    assert any(ln.split()[1] == "portside" for ln in lines[1:])

    r = portside("network", "ls", "-q", "--filter", "label=team=web", root=tmp_path)
    assert r.stdout.split() == [net_id[:12]]

    r = portside("network", "inspect", "front", root=tmp_path)
    d = json.loads(r.stdout)[0]
    assert d["Id"] == net_id and d["IPAM"]["Config"][0]["Subnet"] == "10.214.7.0/24"

    r = portside("network", "rm", "front", root=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, "front")


def test_network_errors_are_messages_and_exit_125(tmp_path: Path) -> None:
    portside("network", "create", "--subnet", "10.214.8.0/24", "a", root=tmp_path)
    r = portside("network", "create", "--subnet", "10.214.8.128/25", "b", root=tmp_path)
    assert r.returncode == 125
    assert r.stderr.strip() == ("Error: subnet 10.214.8.128/25 overlaps 10.214.8.0/24 used by "
                                "network a (pick another --subnet)")
    r = portside("network", "rm", "nope", root=tmp_path)
    assert r.returncode == 125 and "no such network: nope (try: portside network ls)" in r.stderr
    r = portside("network", "create", "--subnet", "10.1.2.3/24", "c", root=tmp_path)
    assert r.returncode == 125 and "did you mean 10.1.2.0/24?" in r.stderr
    assert "Traceback" not in r.stderr


def test_prune_asks_first_unless_forced(tmp_path: Path) -> None:
    portside("network", "create", "--subnet", "10.214.9.0/24", "idle", root=tmp_path)
    r = portside("network", "prune", root=tmp_path)            # no terminal: refuses
    assert "use -f" in r.stderr
    assert "idle" in portside("network", "ls", root=tmp_path).stdout
    r = portside("network", "prune", "-f", root=tmp_path)
    assert r.stdout.splitlines() == ["Deleted Networks:", "idle"]


def test_port_of_unknown_container(tmp_path: Path) -> None:
    r = portside("port", "nope", root=tmp_path)
    assert r.returncode == 125 and "no such container: nope" in r.stderr


def test_default_subnet_from_the_environment(tmp_path: Path) -> None:
    env = {"PORTSIDE_DEFAULT_SUBNET": "10.214.50.0/24"}
    r = portside("network", "inspect", "bridge", root=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    ipam = json.loads(r.stdout)[0]["IPAM"]["Config"][0]
    assert ipam == {"Subnet": "10.214.50.0/24", "Gateway": "10.214.50.1"}
    # Read when the default network is made: a later value does not move it.
    r = portside("network", "inspect", "bridge", root=tmp_path,
                 env={"PORTSIDE_DEFAULT_SUBNET": "10.214.51.0/24"})
    assert json.loads(r.stdout)[0]["IPAM"]["Config"][0]["Subnet"] == "10.214.50.0/24"
    assert "PORTSIDE_DEFAULT_SUBNET" in portside("network", "--help").stdout


def test_a_bad_default_subnet_in_the_environment_is_one_line(tmp_path: Path) -> None:
    r = portside("network", "ls", root=tmp_path, env={"PORTSIDE_DEFAULT_SUBNET": "10.214.52.1/24"})
    assert r.returncode == 125 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("Error: PORTSIDE_DEFAULT_SUBNET: invalid subnet '10.214.52.1/24': "
                                "host bits are set or no prefix (did you mean 10.214.52.0/24?)")
    r = portside("network", "ls", root=tmp_path)                 # nothing was made: auto now
    assert r.returncode == 0 and "portside" in r.stdout
