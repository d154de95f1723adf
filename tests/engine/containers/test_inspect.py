"""Container inspect details that scripts written for Docker read."""
from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from engine.containers.inspect import inspect
from engine.containers.model import RunState, StoredConfig
from engine.containers.monitor import MonitorFiles
from engine.network.model import Attachment, Endpoint
from engine.records import ContainerSpec, Mount

CID = "c" * 64


def _inspect(tmp_path: Path, spec: ContainerSpec, *, networks: tuple[Attachment, ...] | None = None,
             **kw: Any) -> dict[str, Any]:
    cfg = StoredConfig(spec=spec, image_ref="busybox", image_id="sha256:" + "1" * 64,
                       argv=("sleep", "1"), env=(), working_dir="/", user="", hostname="h",
                       stop_signal="", networks=networks)
    return inspect(CID, "web", cfg, RunState(status=kw.pop("status", "exited")),
                   files=MonitorFiles(CID, tmp_path / "c", tmp_path / "exits"),
                   lower_dirs="", runtime="runc", **kw)


def test_a_volume_mount_has_its_data_dir_as_source_and_its_name_as_name(tmp_path: Path) -> None:
    spec = ContainerSpec(image="busybox", mounts=(Mount("volume", "data", "/data"),
                                                  Mount("bind", "/srv/www", "/www", True)))
    vol, bind = _inspect(tmp_path, spec, volumes_dir=tmp_path / "volumes")["Mounts"]
    assert (vol["Type"], vol["Name"], vol["Source"], vol["Driver"], vol["RW"]) == \
        ("volume", "data", str(tmp_path / "volumes" / "data" / "_data"), "local", True)
    assert (bind["Type"], bind["Source"], bind["RW"], bind["Propagation"]) == \
        ("bind", "/srv/www", False, "rprivate")
    assert "Name" not in bind


def test_restart_policy_names_are_dockers(tmp_path: Path) -> None:
    for given, name, count in (("no", "no", 0), ("", "no", 0), ("always", "always", 0),
                               ("unless-stopped", "unless-stopped", 0),
                               ("on-failure:5", "on-failure", 5)):
        d = _inspect(tmp_path, ContainerSpec(image="busybox", restart=given))
        assert d["HostConfig"]["RestartPolicy"] == {"Name": name, "MaximumRetryCount": count}, given


def test_a_stopped_container_lists_the_networks_it_joins_at_start(tmp_path: Path) -> None:
    spec = ContainerSpec(image="busybox", network="bridge")
    nets = _inspect(tmp_path, spec, networks=(Attachment("bridge"), Attachment("app", ("db",), "10.9.0.7")),
                    network_ids={"portside": "p" * 64, "app": "a" * 64})["NetworkSettings"]["Networks"]
    assert set(nets) == {"portside", "app"}
    app = nets["app"]
    assert (app["NetworkID"], app["IPAddress"], app["EndpointID"], app["Aliases"], app["IPAMConfig"]) == \
        ("a" * 64, "", "", ["web", "db", CID[:12]], {"IPv4Address": "10.9.0.7"})
    assert nets["portside"]["IPAMConfig"] is None and nets["portside"]["NetworkID"] == "p" * 64


def test_a_running_container_shows_its_endpoints(tmp_path: Path) -> None:
    ep = Endpoint(CID, "web", "app", "a" * 64, IPv4Address("10.9.0.7"), 24, IPv4Address("10.9.0.1"),
                  "02:70:0a:09:00:07", "eth0", "vps-x", ("db",))
    d = _inspect(tmp_path, ContainerSpec(image="busybox", network="app", ip="10.9.0.7"),
                 status="running", endpoints=[ep])
    settings = d["NetworkSettings"]
    assert list(settings["Networks"]) == ["app"]
    app = settings["Networks"]["app"]
    assert (app["IPAddress"], app["Gateway"], app["IPAMConfig"]) == \
        ("10.9.0.7", "10.9.0.1", {"IPv4Address": "10.9.0.7"})
    assert settings["IPAddress"] == "10.9.0.7"



def test_none_and_host_are_listed_as_their_network_with_no_address(tmp_path: Path) -> None:
    for mode in ("none", "host"):
        for status in ("running", "exited"):
            settings = _inspect(tmp_path, ContainerSpec(image="busybox", network=mode),
                                status=status)["NetworkSettings"]
            assert list(settings["Networks"]) == [mode], (mode, status)
            net = settings["Networks"][mode]
            assert (net["IPAddress"], net["Gateway"], net["IPPrefixLen"], net["MacAddress"],
                    net["EndpointID"], net["Aliases"], net["IPAMConfig"]) == \
                ("", "", 0, "", "", None, None), (mode, status)
            assert settings["IPAddress"] == "" and settings["Gateway"] == ""
    # A network of that name in the store (Docker has both) gives its id.
    nets = _inspect(tmp_path, ContainerSpec(image="busybox", network="host"),
                    network_ids={"host": "h" * 64})["NetworkSettings"]["Networks"]
    assert nets["host"]["NetworkID"] == "h" * 64
