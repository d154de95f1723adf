"""Fixtures for integration tests: a private docker-registry on 127.0.0.1."""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import need_tool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegistryAddr(str):
    """``host:port`` of the test registry; ``.data`` is its storage directory."""

    data: Path


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryAddr]:
    """Address (host:port) of a docker-registry serving only on loopback."""
    exe = need_tool("docker-registry")
    d = tmp_path_factory.mktemp("registry")
    port = _free_port()
    cfg = d / "config.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {d / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    log = open(d / "registry.log", "wb")
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    addr = RegistryAddr(f"127.0.0.1:{port}")
    addr.data = d / "data"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{addr}/v2/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start: {(d / 'registry.log').read_text()}")
                time.sleep(0.1)
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def push(src: str, dest: str, *, fmt: str | None = None, all_images: bool = False) -> None:
    """skopeo copy SRC docker://DEST over plain HTTP."""
    cmd = [need_tool("skopeo"), "copy", "--quiet", "--dest-tls-verify=false"]
    if fmt:
        cmd += ["--format", fmt]
    if all_images:
        cmd.append("--all")
    subprocess.run(cmd + [src, f"docker://{dest}"], check=True, capture_output=True, timeout=120)


__all__ = ["registry", "push", "Path"]
