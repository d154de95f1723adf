#!/usr/bin/env python3
"""Cost of one stats sample for 1, 50 and 200 running containers, next to ``podman stats``.

For each count, real busybox ``sleep`` containers are running (started
through the Engine on a private root). Measured:

* portside: ``StatsSampler.sample()`` — what ``stats`` and the app's stats
  view call every second: the running containers looked up in the state
  database, then every container's cgroup files, /proc/<pid>/net/dev and
  /proc/stat read. Median wall time and the CPU time the sampler used, over
  many samples; the CPU time as a share of a core when sampling once a second.
* podman: ``podman stats --no-stream`` on the same number of podman
  containers (private store, ``--runtime runc``, ``--network none``), if
  podman works here. Median wall time and CPU (its user+sys) over a few runs.

Targets (issue 5): 200 containers in < 100 ms and <= 0.2x podman.
Run as root: ``python bench/stats_bench.py [--samples N] [--counts 1,50,200]``.
Everything lives in a temp dir and is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from engine import ContainerSpec, Engine  # noqa: E402
from run_container import Podman  # noqa: E402  (the private-store podman of the run bench)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure_portside(engine: Engine, samples: int) -> tuple[float, float, float, int]:
    """(median wall ms, mean CPU ms, median lookup ms, rows) per sample."""
    sampler = engine.stats_sampler()
    rows = len(sampler.sample())                # primes the CPU % baseline
    walls, cpus, lookups = [], [], []
    for _ in range(samples):
        t, c = time.perf_counter(), time.process_time()
        out = sampler.sample()
        walls.append((time.perf_counter() - t) * 1000)
        cpus.append((time.process_time() - c) * 1000)
        t = time.perf_counter()
        engine.stats_targets()
        lookups.append((time.perf_counter() - t) * 1000)
        rows = len(out)
        time.sleep(0.05)
    return statistics.median(walls), statistics.mean(cpus), statistics.median(lookups), rows


def measure_podman(podman: Podman, runs: int) -> tuple[float, float, int]:
    """(median wall ms, mean CPU ms, rows) of ``podman stats --no-stream``."""
    walls, cpus = [], []
    rows = 0
    for _ in range(runs):
        c = children_cpu()
        t = time.perf_counter()
        out = podman.podman("stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}}").stdout
        walls.append((time.perf_counter() - t) * 1000)
        cpus.append((children_cpu() - c) * 1000)
        rows = len(out.splitlines())
    return statistics.median(walls), statistics.mean(cpus), rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=30, help="portside samples per count")
    ap.add_argument("--podman-runs", type=int, default=3)
    ap.add_argument("--counts", default="1,50,200")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    counts = sorted(int(x) for x in args.counts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="portside-statsbench-"))
    engine = Engine(tmp / "root")
    engine.bootstrap_busybox()
    podman: Podman | None = None
    podman_note = ""
    ours: list[str] = []
    theirs: list[str] = []
    try:
        if shutil.which("podman") is None:
            podman_note = "podman: not measured (not installed; apt-get install podman)"
        else:
            tar = tmp / "busybox.tar"
            engine.save(["busybox"], str(tar))
            try:
                podman = Podman(tmp / "podman", tar)
                podman.podman("run", "--rm", "--network", "none", podman.image, "true")
            except subprocess.CalledProcessError as err:
                podman = None
                podman_note = f"podman: not measured ({(err.stderr or '').strip()[:200]})"
        layout = engine.info().cgroup_version
        print(f"{os.cpu_count()} CPUs, cgroups {layout}, load {os.getloadavg()[0]:.2f}\n")
        print(f"{'containers':>10} {'portside wall':>14} {'sampler CPU':>12} {'(lookup)':>9} "
              f"{'CPU at 1 Hz':>12} {'podman wall':>12} {'podman CPU':>11} {'ratio':>6}")
        results: dict[int, tuple[float, float | None]] = {}
        for n in counts:
            while len(ours) < n:
                ours.append(engine.run(ContainerSpec(image="busybox", command=("sleep", "3600"),
                                                     name=f"sb-{len(ours)}")).id)
            if podman is not None:
                while len(theirs) < n:
                    theirs.append(podman.podman("run", "-d", "--network", "none", podman.image,
                                                "sleep", "3600").stdout.strip())
            time.sleep(1)
            wall, cpu, lookup, rows = measure_portside(engine, args.samples)
            assert rows == n, f"sampled {rows} containers, expected {n}"
            pwall = pcpu = None
            if podman is not None:
                pwall, pcpu, prow = measure_podman(podman, args.podman_runs)
                assert prow == n, f"podman listed {prow} containers, expected {n}"
            ratio = f"{wall / pwall:.3f}x" if pwall else "n/a"
            print(f"{n:>10} {wall:>12.2f}ms {cpu:>10.2f}ms {lookup:>7.2f}ms {cpu / 10:>11.2f}% "
                  f"{(f'{pwall:.0f}ms' if pwall else '-'):>12} {(f'{pcpu:.0f}ms' if pcpu else '-'):>11} "
                  f"{ratio:>6}")
            results[n] = (wall, pwall)
        if podman_note:
            print("\n" + podman_note)
        top = max(results)
        wall, pwall = results[top]
        print(f"\ntargets (issue 5), {top} containers:")
        print(f"  < 100 ms per sample:  {wall:.1f} ms  {'met' if wall < 100 else 'NOT met'}")
        if pwall:
            print(f"  <= 0.2x podman stats: {wall / pwall:.3f}x  {'met' if wall <= 0.2 * pwall else 'NOT met'}")
        return 0
    finally:
        for cid in ours:
            try:
                engine.rm(cid, force=True)
            except Exception:      # noqa: BLE001 - best effort, keep removing the rest
                pass
        if podman is not None:
            podman.close()
        engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
