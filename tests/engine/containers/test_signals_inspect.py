from __future__ import annotations

from pathlib import Path

import pytest

from engine.containers.inspect import inspect, rfc3339
from engine.containers.model import RunState, StoredConfig
from engine.containers.monitor import MonitorFiles
from engine.containers.signals import signame, signum
from engine.errors import InvalidArgument
from engine.records import ContainerSpec, Mount


@pytest.mark.parametrize("given,name", [("KILL", "KILL"), ("sigterm", "TERM"), ("SIGHUP", "HUP"),
                                        ("9", "KILL"), (15, "TERM"), ("usr1", "USR1")])
def test_signal_names(given: object, name: str) -> None:
    assert signame(given) == name  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["NOPE", "999", "_DFL", ""])
def test_bad_signals(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        signame(bad)


def test_signum() -> None:
    assert signum("KILL") == 9 and signum("TERM") == 15


def test_rfc3339() -> None:
    assert rfc3339(0) == "0001-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"


def test_inspect_shape(tmp_path: Path) -> None:
    spec = ContainerSpec(image="busybox", command=("sleep", "1"), restart="on-failure:3",
                         mounts=(Mount("volume", "data", "/data", True),), labels={"a": "b"})
    cfg = StoredConfig(spec=spec, image_ref="busybox", image_id="sha256:" + "1" * 64, argv=("sleep", "1"),
                       env=("PATH=/bin",), working_dir="/w", user="app", hostname="h", stop_signal="",
                       created_ns=1_700_000_000 * 10**9)
    st = RunState(status="exited", exit_code=3, started_ns=1, finished_ns=2, oom_killed=True, restart_count=2)
    d = inspect("c" * 64, "web", cfg, st, files=MonitorFiles("c" * 64, tmp_path / "c", tmp_path / "exits"),
                lower_dirs="/l1:/l0", runtime="runc")
    assert d["Name"] == "/web" and d["Path"] == "sleep" and d["Args"] == ["1"]
    assert d["State"]["Status"] == "exited" and not d["State"]["Running"] and d["State"]["Pid"] == 0
    assert d["State"]["ExitCode"] == 3 and d["State"]["OOMKilled"] is True and d["RestartCount"] == 2
    assert d["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert d["Mounts"][0]["Name"] == "data" and d["Mounts"][0]["RW"] is False
    assert d["GraphDriver"]["Data"]["LowerDir"] == "/l1:/l0"
    assert d["Config"]["Labels"] == {"a": "b"} and d["Config"]["StopSignal"] == "SIGTERM"
    assert d["LogPath"].endswith("/ctr.log") and d["HostConfig"]["Runtime"] == "runc"
