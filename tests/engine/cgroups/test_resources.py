"""Docker's resource flags: sizes, checks with Docker's messages, OCI linux.resources, update merges."""
from __future__ import annotations

import pytest

from engine.cgroups import cgroup_path
from engine.cgroups.resources import (Host, ResourceLimits, format_cpuset, oci_resources,
                                      parse_cpuset, parse_size, validate)
from engine.errors import InvalidArgument
from engine.records import ContainerSpec

HOST = Host(cpus=2, cpuset_cpus=frozenset({0, 1}), cpuset_mems=frozenset({0}))
MB = 1 << 20


@pytest.mark.parametrize("text,expected", [
    ("4096", 4096), ("512m", 512 * MB), ("512M", 512 * MB), ("1g", 1 << 30), ("1.5g", 3 << 29),
    ("100k", 102400), ("100kb", 102400), ("64MiB", 64 * MB), ("6mb", 6 * MB), ("2 t", 2 << 40),
    ("-1", -1), (123, 123),
])
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "m", "12x", "-5m", "1..2g", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_size(text)


def test_cpuset_lists() -> None:
    assert parse_cpuset("0-2,4") == {0, 1, 2, 4}
    assert parse_cpuset("") == set()
    assert format_cpuset({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    for bad in ("a", "3-1", "-1", "1,,2"):
        with pytest.raises(InvalidArgument, match="invalid cpuset"):
            parse_cpuset(bad)


@pytest.mark.parametrize("limits,message", [
    (ResourceLimits(memory=4 * MB), "Minimum memory limit allowed is 6MB"),
    (ResourceLimits(memory_reservation=1 * MB), "Minimum memory reservation allowed is 6MB"),
    (ResourceLimits(memory=64 * MB, memory_reservation=128 * MB),
     "Minimum memory limit can not be less than memory reservation limit"),
    (ResourceLimits(memory_swap=64 * MB), "You should always set the Memory limit when using Memoryswap"),
    (ResourceLimits(memory=64 * MB, memory_swap=32 * MB),
     "Minimum memoryswap limit should be larger than memory limit"),
    (ResourceLimits(cpus=3), "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    (ResourceLimits(cpus=0.001), "Range of CPUs is from 0.01"),
    (ResourceLimits(cpus=1, cpu_period=50000), "Conflicting options: Nano CPUs and CPU Period"),
    (ResourceLimits(cpu_period=500), "CPU cfs period can not be less than 1ms"),
    (ResourceLimits(cpu_period=2_000_000), "CPU cfs period can not be less than 1ms"),
    (ResourceLimits(cpu_quota=999), "CPU cfs quota can not be less than 1ms"),
    (ResourceLimits(cpuset_cpus="0-3"), "Requested CPUs are not available - requested 0-3, available: 0-1"),
    (ResourceLimits(cpuset_mems="1"), "Requested memory nodes are not available"),
    (ResourceLimits(cpu_shares=-3), "invalid CPU shares"),
])
def test_refused_like_docker(limits: ResourceLimits, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.")):
        validate(limits, HOST)


def test_accepted_with_warnings() -> None:
    assert validate(ResourceLimits(memory=6 * MB, memory_swap=-1, cpus=2, cpuset_cpus="0-1",
                                   pids_limit=100, cpu_shares=512), HOST) == []
    w = validate(ResourceLimits(oom_kill_disable=True), HOST)
    assert w and "OOM killer is disabled" in w[0]
    assert "minimum allowed of 2" in validate(ResourceLimits(cpu_shares=1), HOST)[0]
    assert "maximum allowed" in validate(ResourceLimits(cpu_shares=10**6), HOST)[0]
    nosw = Host(cpus=2, cpuset_cpus=frozenset({0, 1}), cpuset_mems=frozenset({0}),
                swap_accounting=False)
    assert "swap limit" in validate(ResourceLimits(memory=64 * MB, memory_swap=128 * MB), nosw)[0]


def test_oci_resources_for_create() -> None:
    res = oci_resources(ResourceLimits(memory=64 * MB, memory_reservation=32 * MB, cpus=0.5,
                                       cpu_shares=512, cpuset_cpus="1", pids_limit=100,
                                       oom_kill_disable=True))
    assert res == {
        "memory": {"limit": 64 * MB, "reservation": 32 * MB, "swap": 128 * MB,
                   "disableOOMKiller": True},
        "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "1"},
        "pids": {"limit": 100},
    }
    assert oci_resources(ResourceLimits()) == {}
    assert oci_resources(ResourceLimits(memory=64 * MB, memory_swap=-1))["memory"]["swap"] == -1
    assert oci_resources(ResourceLimits(cpu_period=50000, cpu_quota=20000))["cpu"] == \
        {"period": 50000, "quota": 20000}
    assert oci_resources(ResourceLimits(pids_limit=0)) == {"pids": {"limit": -1}}
    assert oci_resources(ResourceLimits(cpu_shares=1))["cpu"]["shares"] == 2


def test_oci_resources_for_update_sets_only_what_was_given() -> None:
    assert oci_resources(ResourceLimits(memory=64 * MB), creating=False) == \
        {"memory": {"limit": 64 * MB}}
    assert oci_resources(ResourceLimits(memory=0), creating=False) == {"memory": {"limit": -1}}


def test_from_spec_and_options_and_json_round_trip() -> None:
    spec = ContainerSpec(image="busybox", memory=64 * MB, cpus=0.5, pids_limit=10)
    lim = ResourceLimits.from_spec(spec)
    assert (lim.memory, lim.cpus, lim.pids_limit, lim.cpu_shares) == (64 * MB, 0.5, 10, None)
    opts = ResourceLimits.from_options(memory="128m", memory_swap="-1", cpus="1.5",
                                       pids_limit="20", cpu_shares=None)
    assert opts == ResourceLimits(memory=128 * MB, memory_swap=-1, cpus=1.5, pids_limit=20)
    assert ResourceLimits.from_json(opts.to_json() | {"future_key": 1}) == opts
    with pytest.raises(InvalidArgument, match="unknown resource option"):
        ResourceLimits.from_options(memroy="1g")
    with pytest.raises(InvalidArgument, match="invalid --cpus"):
        ResourceLimits.from_options(cpus="lots")


def test_merged_update() -> None:
    base = ResourceLimits(memory=64 * MB, memory_swap=128 * MB, cpu_period=50000, cpu_quota=25000)
    m = base.merged(ResourceLimits(memory=100 * MB, pids_limit=5))
    assert (m.memory, m.memory_swap, m.pids_limit) == (100 * MB, 128 * MB, 5)
    # --cpus replaces an explicit period/quota, and the other way round.
    m = base.merged(ResourceLimits(cpus=1.0))
    assert (m.cpus, m.cpu_period, m.cpu_quota) == (1.0, None, None)
    m = ResourceLimits(cpus=1.0).merged(ResourceLimits(cpu_quota=30000))
    assert (m.cpus, m.cpu_quota) == (None, 30000)
    with pytest.raises(InvalidArgument, match="smaller than already set memoryswap"):
        base.merged(ResourceLimits(memory=256 * MB))
    assert base.merged(ResourceLimits(memory=256 * MB, memory_swap=512 * MB)).memory == 256 * MB


def test_cgroup_path_matches_the_runtime_config_convention() -> None:
    assert cgroup_path("abc123") == "/portside/abc123"
    spec_mod = pytest.importorskip("engine.containers.spec")
    assert spec_mod.cgroup_path("abc123") == cgroup_path("abc123")


def test_host_probe_sees_this_machine() -> None:
    import os
    h = Host.probe()
    assert h.cpus == len(os.sched_getaffinity(0)) and h.cpus >= 1
    assert 0 in h.cpuset_mems
