#!/usr/bin/env python3
"""Start-to-exit time of ``run --rm busybox true``, side by side, plus idle monitor memory.

Measured, each as the median of N runs (rounds interleaved so load drifts
hit every candidate alike, with a pause between runs so background
cleanups — portside's and podman's exit commands — are not counted against
the next run):

* the portside CLI: ``python -m tui run --rm busybox true`` on the default
  bridge network (what ``run`` uses), and with ``--network none``;
* the engine in-process: ``Engine.run`` + ``wait`` + ``rm`` (what ``run --rm`` does),
  on the default bridge;
* bare ``runc run`` of a prepared bundle, twice: with the very config.json
  portside generates (same seccomp profile, mounts, namespaces — the fair
  floor for the engine) and with ``runc spec``'s minimal defaults;
* two floors with no portside code: conmon running that same bundle
  (``runc create`` by conmon, ``runc start``, conmon's exit file, ``runc
  delete`` — what every conmon-based engine does), and the interpreter's
  start-up (``python -c pass``), which every CLI run pays first;
* ``podman --runtime runc run --rm`` on a private store, if podman is
  installed: ``--network none``, and its default bridge (netavark, with its
  network config in the temp dir too).

Then the resident memory of one idle conmon (a ``sleep`` container), for
portside and podman. Run as root: ``python bench/run_container.py [--runs N]``.
Everything lives in a temp dir that is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import ContainerSpec, Engine, NoSuchContainer  # noqa: E402
from engine.containers import rootfs  # noqa: E402

PAUSE = 0.5


def rss_kib(pid: int) -> tuple[int, int]:
    """(Rss, Pss) of a process in KiB, from smaps_rollup."""
    vals = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            vals[parts[0]] = int(parts[1])
    return vals.get("Rss:", 0), vals.get("Pss:", 0)


class Podman:
    """podman with its own store and config under ``tmp`` (see PEERS.md)."""

    def __init__(self, tmp: Path, image_tar: Path) -> None:
        self.tmp = tmp
        (tmp / "libpod-tmp").mkdir(parents=True)
        conf = tmp / "containers.conf"
        conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{tmp}/events.log"\n'
            f'tmp_dir = "{tmp}/libpod-tmp"\n'
            'runtime = "runc"\n'
            "[network]\n"
            'network_backend = "netavark"\n'
            f'network_config_dir = "{tmp}/networks"\n')
        storage = tmp / "storage.conf"
        storage.write_text('[storage]\ndriver = "overlay"\n'
                           f'runroot = "{tmp}/runroot"\ngraphroot = "{tmp}/graphroot"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}
        # netavark leaves its iptables chains behind; remove them after if we made them.
        self.had_netavark_rules = "NETAVARK" in _iptables_save()
        out = self.podman("load", "-i", str(image_tar)).stdout
        self.image = "localhost/busybox:latest" if "localhost/busybox" in out else "busybox:latest"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", "--runtime", "runc", *args], env=self.env, capture_output=True,
                              text=True, check=check, stdin=subprocess.DEVNULL)

    def run_rm(self) -> None:
        self.podman("run", "--rm", "--network", "none", self.image, "true")

    def run_rm_bridge(self) -> None:
        self.podman("run", "--rm", self.image, "true")     # its default network: netavark bridge

    def idle_conmon(self) -> tuple[int, int]:
        cid = self.podman("run", "-d", "--network", "none", self.image, "sleep", "300").stdout.strip()
        try:
            time.sleep(0.5)
            pid = int(self.podman("inspect", "--format", "{{.State.ConmonPid}}", cid).stdout.strip())
            return rss_kib(pid)
        finally:
            self.podman("rm", "-f", "-t", "0", cid, check=False)

    def close(self) -> None:
        self.podman("rm", "-a", "-f", check=False)
        self.podman("system", "reset", "-f", check=False)
        if not self.had_netavark_rules:
            remove_netavark_rules()


def _iptables_save() -> str:
    try:
        return subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return ""


def remove_netavark_rules() -> None:
    """Delete the NETAVARK chains (and the jumps to them) netavark left in iptables."""
    for table in ("nat", "filter"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                               text=True).stdout.splitlines()
        for rule in rules:
            if rule.startswith("-A ") and "NETAVARK" in rule and not rule.split()[1].startswith("NETAVARK"):
                subprocess.run(["iptables", "-t", table, "-D", *shlex.split(rule)[1:]],
                               capture_output=True)
        for rule in rules:
            if rule.startswith("-N NETAVARK"):
                chain = rule.split()[1]
                subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True)
                subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)


class RuncBundle:
    """A bundle over an overlay of the busybox layers, with a given config."""

    def __init__(self, tmp: Path, config: dict, lower: list[Path], name: str) -> None:  # type: ignore[type-arg]
        self.dir = tmp / name
        rootfs.prepare(self.dir)
        self.merged = rootfs.mount(self.dir, lower)
        config = json.loads(json.dumps(config))
        config["root"]["path"] = str(self.merged)
        config.setdefault("linux", {})["cgroupsPath"] = f"/portside-bench/{name}"
        (self.dir / "config.json").write_text(json.dumps(config))
        self.state = tmp / "runc-state"
        self.n = 0

    def run(self) -> None:
        self.n += 1
        subprocess.run(["runc", "--root", str(self.state), "run", "--bundle", str(self.dir),
                        f"{self.dir.name}-{self.n}"], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True)

    def conmon_run(self) -> None:
        """What any conmon-based engine must do, with no engine code: conmon runs
        ``runc create``, then ``runc start``, wait for conmon's exit file, ``runc delete``."""
        self.n += 1
        cid = f"{self.dir.name}-c{self.n}"
        exits, persist = self.dir / "exits", self.dir / "persist"
        exits.mkdir(exist_ok=True)
        persist.mkdir(exist_ok=True)
        runc = shutil.which("runc") or "runc"
        r, w = os.pipe()
        proc = subprocess.Popen(
            [shutil.which("conmon") or "conmon", "--api-version", "1", "-c", cid, "-u", cid, "-n", cid,
             "-r", runc, "-b", str(self.dir), "-p", str(self.dir / "pid"),
             "--exit-dir", str(exits), "--persist-dir", str(persist),
             "-l", f"k8s-file:{self.dir / 'ctr.log'}", "--log-level", "warning",
             "--socket-dir-path", str(self.dir / "sock"), "--full-attach",
             "--runtime-arg", "--root", "--runtime-arg", str(self.state)],
            env={"_OCI_SYNCPIPE": str(w), "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=self.dir)
        os.close(w)
        proc.wait()
        ready, _, _ = select.select([r], [], [], 10)
        msg = os.read(r, 65536) if ready else b"(no answer within 10 s)"
        os.close(r)
        if b'"data"' not in msg or b'"data": -' in msg:
            raise RuntimeError(f"conmon did not create the container: {msg!r}")
        subprocess.run([runc, "--root", str(self.state), "start", cid], check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while not (exits / cid).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("conmon wrote no exit file within 10 s")
            time.sleep(0.0005)
        subprocess.run([runc, "--root", str(self.state), "delete", "--force", cid], check=True,
                       capture_output=True)

    def close(self) -> None:
        rootfs.unmount(self.dir)
        # runc removes each run's cgroup; the parent made for the bench goes too.
        import glob
        for d in glob.glob("/sys/fs/cgroup/*/portside-bench") + glob.glob("/sys/fs/cgroup/portside-bench"):
            try:
                os.rmdir(d)
            except OSError:
                pass


def minimal_config() -> dict:  # type: ignore[type-arg]
    """``runc spec`` defaults, with rlimits capped to this host (no seccomp)."""
    tmp = Path(tempfile.mkdtemp())
    try:
        subprocess.run(["runc", "spec"], cwd=tmp, check=True)
        cfg = json.loads((tmp / "config.json").read_text())
    finally:
        shutil.rmtree(tmp)
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for r in cfg["process"].get("rlimits", []):
        if r["type"] == "RLIMIT_NOFILE":
            r["hard"] = r["soft"] = min(r["hard"], hard)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    cfg["root"]["readonly"] = False
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="portside-bench-"))
    root = tmp / "root"
    engine = Engine(root)
    engine.bootstrap_busybox()
    cleanup: list[Callable[[], None]] = []
    try:
        # portside's own config.json for "busybox true", for the fair runc floor.
        # (--network none: a bridge container's namespace file is gone once it exits)
        ref = engine.run(ContainerSpec(image="busybox", command=("true",), name="bench-ref",
                                       network="none"))
        engine.wait(ref.id)
        ours = json.loads((engine.paths.container(ref.id) / "config.json").read_text())
        lower = engine.image_store.lower_dirs(ref.image_id)
        same = RuncBundle(tmp, ours, lower, "runc-same")
        cleanup.append(same.close)
        minimal = RuncBundle(tmp, minimal_config(), lower, "runc-min")
        cleanup.append(minimal.close)

        cli_argv = [sys.executable, "-m", "tui", "--root", str(root), "run", "--rm", "busybox", "true"]
        cli_none_argv = cli_argv[:-2] + ["--network", "none"] + cli_argv[-2:]

        def cli() -> None:
            subprocess.run(cli_argv, check=True, cwd=REPO, stdin=subprocess.DEVNULL)

        def cli_none() -> None:
            subprocess.run(cli_none_argv, check=True, cwd=REPO, stdin=subprocess.DEVNULL)

        def inproc(network: str = "bridge") -> None:
            info = engine.run(ContainerSpec(image="busybox", command=("true",), auto_remove=True,
                                            network=network))
            code = engine.wait(info.id)
            assert code == 0
            try:
                engine.rm(info.id, force=True)
            except NoSuchContainer:
                pass            # its exit hook was first

        def inproc_none() -> None:
            inproc("none")

        def python_start() -> None:
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        candidates: dict[str, Callable[[], None]] = {
            "portside CLI  run --rm busybox true": cli,
            "portside CLI  run --rm --network none": cli_none,
            "portside engine in-process (run+wait+rm)": inproc,
            "portside engine in-process, --network none": inproc_none,
            "runc run, portside's config.json": same.run,
            "runc run, runc-spec defaults (no seccomp)": minimal.run,
            "floor: conmon + runc create/start/delete": same.conmon_run,
            "floor: python start-up (this venv)": python_start,
        }
        podman: Podman | None = None
        if shutil.which("podman"):
            tar = tmp / "busybox.tar"
            engine.save(["busybox"], str(tar))
            try:
                podman = Podman(tmp / "podman", tar)
                cleanup.append(podman.close)
                candidates["podman --runtime runc run --rm --network none"] = podman.run_rm
                candidates["podman --runtime runc run --rm (netavark bridge)"] = podman.run_rm_bridge
            except subprocess.CalledProcessError as err:
                print(f"podman is installed but could not be set up: {err.stderr.strip()}")
        else:
            print("podman is not installed: no podman figures (apt-get install podman)")

        times: dict[str, list[float]] = {k: [] for k in candidates}
        for fn in candidates.values():      # warm-up: caches, the runtime probe, pyc files
            fn()
            time.sleep(PAUSE)
        for _ in range(args.runs):
            for name, fn in candidates.items():
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1000)
                time.sleep(PAUSE)

        med = {k: statistics.median(v) for k, v in times.items()}
        pod = med.get("podman --runtime runc run --rm --network none")
        pod_bridge = med.get("podman --runtime runc run --rm (netavark bridge)")
        runc_same = med["runc run, portside's config.json"]
        print(f"\nstart-to-exit, median of {args.runs} runs ({os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f}):\n")
        print(f"{'':50} {'median':>9} {'min':>8} {'vs podman':>10} {'vs runc*':>9}")
        for name, v in med.items():
            ref_pod = pod if ("none" in name or name.startswith(("runc", "floor"))) else pod_bridge
            vs_pod = f"{v / ref_pod:.2f}x" if ref_pod else "n/a"
            print(f"{name:50} {v:7.1f}ms {min(times[name]):6.1f}ms {vs_pod:>10} {v / runc_same:8.2f}x")
        print("  * runc run with portside's config.json (same seccomp profile, mounts, namespaces)")
        print("  floor rows: the same config.json under conmon with no engine code at all, and the")
        print("  interpreter starting; a Python CLI with a conmon monitor cannot beat their sum")
        print("  bridge rows are compared with podman's bridge, --network none rows with its none")

        info = engine.run(ContainerSpec(image="busybox", command=("sleep", "300"), name="bench-idle"))
        time.sleep(0.5)
        state = json.loads(engine.db.one("SELECT state_json FROM containers WHERE id=?",
                                         (info.id,))["state_json"])
        ours_rss = rss_kib(state["conmon_pid"])
        engine.rm(info.id, force=True)
        print("\nidle monitor per running container (conmon, smaps_rollup):")
        print(f"  portside: RSS {ours_rss[0]} KiB, PSS {ours_rss[1]} KiB")
        if podman is not None:
            p_rss = podman.idle_conmon()
            print(f"  podman:   RSS {p_rss[0]} KiB, PSS {p_rss[1]} KiB")

        print("\ntargets (issues 3 and 4):")
        if pod:
            cli_ratio = med["portside CLI  run --rm --network none"] / pod
            print(f"  CLI --network none <= 0.4x podman's:  {cli_ratio:.2f}x  "
                  f"{'met' if cli_ratio <= 0.4 else 'NOT met'}")
        if pod_bridge:
            br_ratio = med["portside CLI  run --rm busybox true"] / pod_bridge
            print(f"  CLI default bridge <= 0.3x podman's netavark bridge:  {br_ratio:.2f}x  "
                  f"{'met' if br_ratio <= 0.3 else 'NOT met'}")
        # runc* runs with no network of its own: compare like with like.
        inproc_ratio = med["portside engine in-process, --network none"] / runc_same
        print(f"  in-process (--network none) <= 1.5x runc*:  {inproc_ratio:.2f}x  "
              f"{'met' if inproc_ratio <= 1.5 else 'NOT met'}")
        floor_mon = med["floor: conmon + runc create/start/delete"]
        floor_cli = floor_mon + med["floor: python start-up (this venv)"]
        print("\nfloors (no portside code):")
        print(f"  conmon + runc alone: {floor_mon:.1f} ms = {floor_mon / runc_same:.2f}x runc*; "
              f"portside in-process adds {med['portside engine in-process, --network none'] - floor_mon:.1f} ms")
        if pod:
            print(f"  + python start-up: {floor_cli:.1f} ms = {floor_cli / pod:.2f}x podman's --network none "
                  f"(0.4x would be {0.4 * pod:.1f} ms); portside's CLI adds "
                  f"{med['portside CLI  run --rm --network none'] - floor_cli:.1f} ms")
        return 0
    finally:
        for c in engine.containers(all=True):
            try:
                engine.rm(c.id, force=True)
            except Exception:      # noqa: BLE001 - best effort
                pass
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception:      # noqa: BLE001
                pass
        try:
            engine.system_reset()      # the bench root's bridge stays up until then (as docker0)
        except Exception as err:       # noqa: BLE001 - say so, the temp dir goes anyway
            print(f"system reset of the bench root failed: {err}", file=sys.stderr)
            engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
