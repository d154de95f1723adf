"""Container verbs' flag parsing and Docker's wording, without root or a runtime."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine import ContainerInfo, ContainerState, InvalidArgument
from engine.records import Mount
from tui.cli import build_parser
from tui.cli.containers import _template, human_duration, spec_from_args, status_text

from tests.cli.test_cli_basics import portside

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def parse(*argv: str):  # type: ignore[no-untyped-def]
    return spec_from_args(build_parser().parse_args(list(argv)))


def test_run_flags_become_a_spec(tmp_path: Path) -> None:
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=1\nA=file\n")
    spec = parse("run", "-d", "--rm", "-i", "-t", "--name", "web", "-e", "A=flag", "--env-file", str(envfile),
                 "-w", "/srv", "-u", "app:staff", "-h", "box", "-v", "/host:/c:ro", "-v", "data:/data",
                 "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--tmpfs", "/run:size=64k",
                 "--restart", "on-failure:3", "-l", "tier=web", "-l", "flag", "--network", "host",
                 "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--privileged",
                 "--security-opt", "no-new-privileges", "--read-only", "--log-opt", "max-size=1m",
                 "-p", "8080:80", "--dns", "1.1.1.1", "--add-host", "db:10.0.0.2", "-m", "64m",
                 "--cpus", "0.5", "--pids-limit", "10", "busybox", "sh", "-c", "echo hi")
    assert spec.image == "busybox" and spec.command == ("sh", "-c", "echo hi") and spec.name == "web"
    assert spec.env == ("FROM_FILE=1", "A=file", "A=flag")     # the file first, flags win
    assert (spec.working_dir, spec.user, spec.hostname) == ("/srv", "app:staff", "box")
    assert spec.mounts == (Mount("bind", "/host", "/c", True), Mount("volume", "data", "/data"),
                           Mount("tmpfs", "", "/t", False, ("size=1048576",)),
                           Mount("tmpfs", "", "/run", False, ("size=65536",)))
    assert spec.restart == "on-failure:3" and spec.labels == {"tier": "web", "flag": ""}
    assert spec.network == "host" and spec.cap_add == ("NET_ADMIN",) and spec.cap_drop == ("MKNOD",)
    assert spec.privileged and spec.read_only and spec.auto_remove and spec.tty and spec.interactive
    assert spec.security_opt == ("no-new-privileges",) and spec.log_opts == {"max-size": "1m"}
    assert spec.ports == ("8080:80",) and spec.dns == ("1.1.1.1",) and spec.add_hosts == ("db:10.0.0.2",)
    assert (spec.memory, spec.cpus, spec.pids_limit) == (64 << 20, 0.5, 10)
    assert not spec.stdin_once                                  # -d -i keeps stdin open


def test_every_resource_flag_reaches_the_spec() -> None:
    spec = parse("create", "-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
                 "-c", "512", "--cpu-period", "50000", "--cpu-quota", "25000", "--cpuset-cpus", "0",
                 "--cpuset-mems", "0", "--pids-limit", "-1", "--oom-kill-disable", "busybox")
    assert (spec.memory, spec.memory_swap, spec.memory_reservation) == (64 << 20, 128 << 20, 32 << 20)
    assert (spec.cpu_shares, spec.cpu_period, spec.cpu_quota) == (512, 50000, 25000)
    assert (spec.cpuset_cpus, spec.cpuset_mems, spec.pids_limit) == ("0", "0", -1)
    assert spec.oom_kill_disable is True
    assert parse("run", "busybox").oom_kill_disable is None


@pytest.mark.integration
def test_create_prints_the_engines_warnings(tmp_path: Path) -> None:
    assert portside("image", "bootstrap", "busybox", root=tmp_path).returncode == 0
    r = portside("create", "--cpu-shares", "1", "busybox", "true", root=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "WARNING: Changing requested CPUShares of 1 to minimum allowed of 2" in r.stderr
    assert len(r.stdout.strip()) == 64


def test_entrypoint_forms_and_defaults() -> None:
    assert parse("run", "busybox").command is None and parse("run", "busybox").entrypoint is None
    assert parse("run", "--entrypoint", "/bin/x", "busybox").entrypoint == ("/bin/x",)
    assert parse("run", "--entrypoint", "", "busybox", "ls").entrypoint == ()
    assert parse("run", "-i", "busybox").stdin_once                # foreground -i: StdinOnce
    assert parse("create", "busybox", "ls", "-l").command == ("ls", "-l")   # flags after the image are its own
    assert parse("run", "busybox").network == "bridge"          # Docker's default network
    spec = parse("run", "--network", "front", "--ip", "10.89.3.7", "--network-alias", "db",
                 "--net-alias", "pg", "busybox")
    assert (spec.network, spec.ip, spec.network_aliases) == ("front", "10.89.3.7", ("db", "pg"))
    assert parse("run", "--net", "none", "busybox").network == "none"


def test_bad_flag_values_are_engine_errors() -> None:
    with pytest.raises(InvalidArgument):
        parse("run", "-l", "=x", "busybox")
    with pytest.raises(InvalidArgument):
        parse("run", "--log-opt", "max-size", "busybox")
    with pytest.raises(InvalidArgument):
        parse("run", "-v", "/a:relative", "busybox")


def test_hostname_flag_does_not_shadow_help() -> None:
    r = portside("run", "--help")
    assert r.returncode == 0 and "--hostname" in r.stdout and "--rm" in r.stdout


@pytest.mark.parametrize("seconds,text", [
    (0.4, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (2 * 3600, "2 hours"), (47 * 3600, "47 hours"), (3 * 86400, "3 days"), (15 * 86400, "2 weeks"),
    (70 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration_is_dockers(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


def info(status: str, **st: object) -> ContainerInfo:
    return ContainerInfo(id="a" * 64, name="x", image="busybox", image_id="sha256:1", command=("sh",),
                         created=NOW, state=ContainerState(status=status, **st))  # type: ignore[arg-type]


def test_status_column() -> None:
    ago = NOW - timedelta(seconds=5)
    assert status_text(info("running", started_at=ago), NOW) == "Up 5 seconds"
    assert status_text(info("paused", started_at=ago), NOW) == "Up 5 seconds (Paused)"
    assert status_text(info("exited", exit_code=3, finished_at=ago), NOW) == "Exited (3) 5 seconds ago"
    assert status_text(info("created"), NOW) == "Created"
    assert status_text(info("restarting", exit_code=1, finished_at=ago), NOW) == "Restarting (1) 5 seconds ago"
    assert status_text(info("removing"), NOW) == "Removal In Progress"


def test_format_templates() -> None:
    assert _template("{{.ID}}\t{{ .Names }}", {"ID": "abc", "Names": "web"}) == "abc\tweb"
    with pytest.raises(InvalidArgument, match="unknown field"):
        _template("{{.Nope}}", {"ID": "abc"})


def test_ps_and_container_ls_work_on_an_empty_root(tmp_path: Path) -> None:
    for args in (("ps", "-a"), ("container", "ls", "-a"), ("container", "list")):
        r = portside(*args, root=tmp_path)
        assert r.returncode == 0 and r.stdout.split("\n")[0].split()[:2] == ["CONTAINER", "ID"]
    r = portside("rm", "nope", root=tmp_path)
    assert r.returncode == 1 and "no such container: nope" in r.stderr
    r = portside("logs", "nope", root=tmp_path)
    assert r.returncode == 125 and "portside ps -a" in r.stderr


def test_container_prune_answered_no_keeps_everything_and_exits_0(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import io

    from engine import Engine
    from tests.engine.test_resources_api import add_container
    from tui.cli import main

    root = tmp_path / "root"
    e = Engine(root)
    add_container(e, "d" * 64, "done", status="exited")
    e.close()

    def prune(answer: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        rc = main([f"--root={root}", "container", "prune"])
        out, err = capsys.readouterr()
        return rc, out, err

    for answer in ("n\n", "no\n", ""):                    # "" : no answer at all is a no
        rc, out, err = prune(answer)
        assert (rc, out) == (0, ""), answer
        assert "Are you sure" in err
        assert main([f"--root={root}", "ps", "-a", "-q"]) == 0
        assert capsys.readouterr().out.split() == ["d" * 12], answer
    rc, out, _ = prune("y\n")
    assert rc == 0 and out.splitlines()[:2] == ["Deleted Containers:", "d" * 64]
    assert main([f"--root={root}", "ps", "-a", "-q"]) == 0 and capsys.readouterr().out == ""
