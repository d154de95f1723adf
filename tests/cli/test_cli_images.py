"""Image verbs on the CLI: images filters/-q/--format, inspect's shape, history, prune,
tag refusals, load's report and the progress bar. In process, on a temp root, no root needed."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from functools import partial
from pathlib import Path

import pytest

from engine import Engine, Progress
from engine.images.store import MT_OCI_LAYER_GZIP, LayerSource
from tests.imagefactory import layer_tar
from tui.cli import main
from tui.cli.images import _ProgressBar

BASE = layer_tar({"etc/os-release": b"base\n"})
APP = layer_tar({"app/run": b"#!/bin/sh\n"})
EXTRA = layer_tar({"extra": b"x" * 3000})


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(engine: Engine, layers: list[bytes], tags: list[str], day: int,
         labels: dict[str, str] | None = None) -> str:
    config = json.dumps({
        "created": f"2024-01-{day:02d}T00:00:00Z", "architecture": "amd64", "os": "linux",
        "author": "tester",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw) for raw in layers]},
        "history": [{"created": f"2024-01-{day:02d}T00:00:00Z", "created_by": f"ADD layer {i} "
                     + "x" * 50 * i, "comment": "c" if i == 0 else ""}
                    for i in range(len(layers))] + [{"created_by": "CMD [\"sh\"]", "empty_layer": True}],
    }).encode()
    sources = []
    for raw in layers:
        blob = gzip.compress(raw, mtime=0)
        sources.append(LayerSource(open=partial(io.BytesIO, blob), digest=_digest(blob),
                                   size=len(blob), media_type=MT_OCI_LAYER_GZIP))
    return engine.image_store.add_image(config, sources, tags).id


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    e = Engine(r)
    e.ids = {  # type: ignore[attr-defined]
        "base": _add(e, [BASE], ["base:1", "base:latest"], 1, {"tier": "base"}),
        "app": _add(e, [BASE, APP], ["app:1", "other/app:2"], 3, {"tier": "app", "team": "x"}),
        "none": _add(e, [BASE, EXTRA], [], 5),
    }
    (tmp_path / "ids.json").write_text(json.dumps(e.ids))  # type: ignore[attr-defined]
    e.close()
    return r


def ids(root: Path) -> dict[str, str]:
    return json.loads((root.parent / "ids.json").read_text())


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    rc = main([f"--root={root}", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def rows(out: str) -> list[list[str]]:
    return [re.split(r"\s{3,}", line) for line in out.splitlines()[1:]]


def names(out: str) -> list[str]:
    return [f"{r[0]}:{r[1]}" for r in rows(out)]


# -- images ---------------------------------------------------------------------------

def test_images_lists_every_tag_and_the_dangling_one(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run(capsys, root, "images")
    assert rc == 0
    assert out.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert names(out) == ["<none>:<none>", "app:1", "other/app:2", "base:1", "base:latest"]
    none = rows(out)[0]
    assert none[2] == ids(root)["none"][7:19]


@pytest.mark.parametrize("args, expected", [
    (["base"], ["base:1", "base:latest"]),                 # a name matches all its tags
    (["base:1"], ["base:1"]),
    (["app"], ["app:1"]),                                  # not other/app:2 of the same image
    (["--filter", "reference=*app*"], ["app:1"]),          # * stops at '/', as in Docker
    (["--filter", "reference=*/app"], ["other/app:2"]),
    (["--filter", "reference=base:l*"], ["base:latest"]),
    (["--filter", "reference=docker.io/library/app:1"], ["app:1"]),
    (["-f", "reference=app", "-f", "reference=base:1"], ["app:1", "base:1"]),   # any of them
    (["--filter", "dangling=true"], ["<none>:<none>"]),
    (["--filter", "dangling=false"], ["app:1", "other/app:2", "base:1", "base:latest"]),
    (["--filter", "label=tier=app"], ["app:1", "other/app:2"]),
    (["--filter", "label=tier"], ["app:1", "other/app:2", "base:1", "base:latest"]),
    (["--filter", "label=tier", "--filter", "label=team=x"], ["app:1", "other/app:2"]),   # all of them
    (["--filter", "before=app:1"], ["base:1", "base:latest"]),
    (["--filter", "since=app:1"], ["<none>:<none>"]),
    (["--filter", "since=base:1", "--filter", "dangling=false"], ["app:1", "other/app:2"]),
])
def test_images_filters(capsys, root: Path, args: list[str], expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = run(capsys, root, "images", *args)
    assert rc == 0, err
    assert names(out) == expected


def test_images_bad_filters_are_125(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    for bad, why in (("dangling=maybe", "dangling=true or false"), ("colour=red", "unknown image filter"),
                     ("nokey", "key=value"), ("before=nope:1", "no such image")):
        rc, _, err = run(capsys, root, "images", "--filter", bad)
        assert rc == 125 and why in err and err.count("\n") == 1, (bad, err)


def test_images_quiet_prints_each_id_once(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    i = ids(root)
    assert run(capsys, root, "images", "-q")[1].split() == [i["none"][7:19], i["app"][7:19],
                                                             i["base"][7:19]]
    assert run(capsys, root, "images", "-q", "--no-trunc", "base")[1].split() == [i["base"]]
    assert run(capsys, root, "images", "-q", "-f", "dangling=true")[1].split() == [i["none"][7:19]]


def test_images_format(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run(capsys, root, "images", "base", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    short = ids(root)['base'][7:19]
    assert out == f"base:1 {short}\nbase:latest {short}\n"
    _, out, _ = run(capsys, root, "images", "app", "--format", "table {{.Repository}}\t{{.Size}}")
    assert out.splitlines()[0].split() == ["REPOSITORY", "SIZE"]
    assert out.splitlines()[1].split()[0] == "app"
    _, out, _ = run(capsys, root, "images", "base:1", "--format", "json")
    rec = json.loads(out)
    assert set(rec) == {"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                        "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"}
    assert (rec["Repository"], rec["Tag"], rec["Digest"]) == ("base", "1", "<none>")
    rc, _, err = run(capsys, root, "images", "--format", "{{.Nope}}")
    assert rc == 125 and "unknown field 'Nope'" in err


# -- image inspect --------------------------------------------------------------------

def test_image_inspect_has_dockers_shape(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run(capsys, root, "image", "inspect", "app:1")
    assert rc == 0
    [data] = json.loads(out)
    assert list(data) == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created",
                          "DockerVersion", "Author", "Config", "Architecture", "Variant", "Os",
                          "Size", "GraphDriver", "RootFS", "Metadata"]
    assert data["Id"] == ids(root)["app"]
    assert data["RepoTags"] == ["app:1", "other/app:2"]
    assert data["Created"] == "2024-01-03T00:00:00Z" and data["Author"] == "tester"
    assert data["Os"] == "linux" and data["Architecture"] == "amd64"
    assert isinstance(data["Size"], int) and data["Size"] > 0
    cfg = data["Config"]
    for key in ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir",
                "Entrypoint", "OnBuild", "Labels"):
        assert key in cfg, key
    assert cfg["Cmd"] == ["sh"] and cfg["Env"] == ["PATH=/bin"]
    assert cfg["Labels"] == {"tier": "app", "team": "x"}
    assert data["RootFS"] == {"Type": "layers", "Layers": [_digest(BASE), _digest(APP)]}
    assert data["GraphDriver"]["Name"] == "overlay"
    assert len(data["GraphDriver"]["Data"]["LowerDir"].split(":")) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", data["Metadata"]["LastTagTime"])


def test_image_inspect_format_and_docker_io_names(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run(capsys, root, "image", "inspect", "-f", "{{.Id}} {{json .Config.Cmd}}",
                     "docker.io/library/base:1")
    assert rc == 0 and out == f"{ids(root)['base']} [\"sh\"]\n"
    rc, out, _ = run(capsys, root, "image", "inspect", "--format", "{{index .RepoTags 0}}", "base", "app:1")
    assert out == "base:1\napp:1\n"


# -- tag ------------------------------------------------------------------------------

def test_tag_refuses_a_digest_and_takes_docker_io_names(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = run(capsys, root, "tag", "base", "x@sha256:" + "0" * 64)
    assert rc == 125 and "digest" in err and err.count("\n") == 1
    assert "x:" not in run(capsys, root, "images")[1]
    assert run(capsys, root, "tag", "base", "docker.io/library/foo:1")[0] == 0
    assert names(run(capsys, root, "images", "foo")[1]) == ["foo:1"]


# -- history --------------------------------------------------------------------------

def test_history(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run(capsys, root, "history", "app:1")
    assert rc == 0
    assert out.splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    r = rows(out)
    assert [x[0] for x in r] == [ids(root)["app"][7:19], "<missing>", "<missing>"]
    assert r[0][2] == 'CMD ["sh"]' and r[0][3] == "0B"
    assert r[1][2].endswith("…") and len(r[1][2]) == 45          # truncated like Docker
    assert r[2][2] == "ADD layer 0" and r[2][-1] == "c"
    _, out, _ = run(capsys, root, "history", "--no-trunc", "-H", "false", "app:1")
    r = rows(out)
    assert r[0][0] == ids(root)["app"] and r[1][2] == "ADD layer 1 " + "x" * 50
    assert r[1][3].isdigit() and int(r[1][3]) > 0
    assert run(capsys, root, "history", "-q", "base")[1] == ids(root)["base"][7:19] + "\n"
    rc, _, err = run(capsys, root, "history", "nope")
    assert rc == 125 and "no such image: nope" in err


# -- image prune ----------------------------------------------------------------------

def test_image_prune_removes_the_dangling_image(capsys, root: Path) -> None:  # type: ignore[no-untyped-def]
    dangling = ids(root)["none"]
    e = Engine(root)
    layer_dir = e.image_store.paths.layer(e.image_store.layers_of(dangling)[-1].chain_id)
    e.close()
    assert layer_dir.is_dir()
    rc, out, _ = run(capsys, root, "image", "prune", "-f")
    assert rc == 0
    assert out.splitlines()[:2] == ["Deleted Images:", f"deleted: {dangling}"]
    assert re.fullmatch(r"Total reclaimed space: \d+(\.\d+)?kB", out.splitlines()[-1])
    assert names(run(capsys, root, "images")[1]) == ["app:1", "other/app:2", "base:1", "base:latest"]
    assert not layer_dir.exists()                    # its own layer went with it
    rc, out, _ = run(capsys, root, "image", "prune", "-f")
    assert rc == 0 and out == "Total reclaimed space: 0B\n"


def test_prune_reads_the_answer_from_stdin(capsys, monkeypatch, root: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    rc, out, err = run(capsys, root, "image", "prune", "-a")
    assert rc == 0 and out == "" and "Are you sure" in err
    assert len(run(capsys, root, "images", "-q")[1].split()) == 3
    monkeypatch.setattr("sys.stdin", io.StringIO(""))               # no answer: no
    rc, out, err = run(capsys, root, "image", "prune", "-a")
    assert rc == 0 and out == "" and "use -f" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    rc, out, _ = run(capsys, root, "image", "prune", "-a")
    assert rc == 0 and out.startswith("Deleted Images:")
    assert run(capsys, root, "images", "-q")[1] == ""


# -- load's report --------------------------------------------------------------------

def test_load_prints_only_the_names_in_the_archive(capsys, root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "base.tar"
    assert run(capsys, root, "save", "-o", str(archive), "base:1")[0] == 0
    assert run(capsys, root, "load", "-i", str(archive)) == (0, "Loaded image: base:1\n", "")


# -- the progress bar -----------------------------------------------------------------

class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_one_line_per_layer_and_ends_it_once() -> None:
    out = FakeTty()
    bar = _ProgressBar(out, width=10)
    bar(Progress(what="layer 1/2 abc", done=0, total=2000, layer=1, layers=2))
    bar(Progress(what="layer 1/2 abc", done=2000, total=2000, layer=1, layers=2))   # final: newline
    bar.last = 0.0
    bar(Progress(what="layer 2/2 def", done=500, total=1000, layer=2, layers=2))
    bar.finish()
    bar.finish()                                       # a second finish adds nothing
    text = out.getvalue()
    assert text.count("\n") == 2 and text.endswith("\n") and not text.endswith("\n\n")
    frames = [f for f in text.replace("\n", "").split("\r") if f]
    assert frames[0] == f"{'layer 1/2 abc':<40} [>         ] {'0B/2kB':>18}"
    assert frames[1] == f"{'layer 1/2 abc':<40} [==========] {'2kB/2kB':>18}"
    assert frames[2] == f"{'layer 2/2 def':<40} [=====>    ] {'500B/1kB':>18}"


def test_progress_bar_without_a_total_and_its_rate_limit() -> None:
    out = FakeTty()
    bar = _ProgressBar(out, width=4)
    bar(Progress(what="rootfs", done=1000, total=None, layer=1, layers=1))
    bar(Progress(what="rootfs", done=2000, total=None, layer=1, layers=1))   # within 0.1 s: skipped
    assert out.getvalue() == f"\r{'rootfs':<40} [----] {'1kB':>18}"
    bar.finish()
    assert out.getvalue().endswith("\n")
