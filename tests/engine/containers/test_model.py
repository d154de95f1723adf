from __future__ import annotations

from engine.containers.model import RunState, StoredConfig, to_info
from engine.records import ContainerSpec, Mount


def test_config_round_trip() -> None:
    spec = ContainerSpec(image="busybox", command=("sh", "-c", "x"), entrypoint=(), env=("A=1",),
                         mounts=(Mount("bind", "/h", "/c", True, ("rshared",)),), labels={"k": "v"},
                         log_opts={"max-size": "1m"}, cap_add=("NET_ADMIN",), restart="on-failure:2")
    cfg = StoredConfig(spec=spec, image_ref="busybox", image_id="sha256:" + "1" * 64, argv=("sh",),
                       env=("A=1",), working_dir="/w", user="app", hostname="h", stop_signal="SIGINT",
                       image_volumes=("/data",), exposed_ports=("80/tcp",), created_ns=5)
    back = StoredConfig.from_json(cfg.to_json())
    assert back == cfg


def test_state_round_trip_and_unknown_keys_ignored() -> None:
    st = RunState(status="running", pid=5, conmon_pid=6, mounted=True, generation=3)
    assert RunState.from_json(st.to_json()) == st
    assert RunState.from_json('{"status": "exited", "future_field": 1}').status == "exited"
    assert st.but(pid=0).pid == 0 and st.pid == 5


def test_info() -> None:
    cfg = StoredConfig(spec=ContainerSpec(image="b", tty=True), image_ref="b", image_id="sha256:x",
                       argv=("sh",), env=(), working_dir="", user="", hostname="h", stop_signal="")
    info = to_info("f" * 64, "web", cfg, RunState(status="exited", exit_code=3, finished_ns=10**18))
    assert info.short_id == "f" * 12 and info.status == "exited" and info.state.exit_code == 3
    assert info.state.finished_at is not None and info.state.started_at is None and info.tty


def test_state_rows_written_before_the_oom_count_load() -> None:
    old = RunState.from_json('{"status": "running", "pid": 5, "oom_killed": false}')
    assert old.oom_kills == 0
    assert RunState.from_json(old.but(oom_kills=2).to_json()).oom_kills == 2
