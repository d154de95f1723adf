#!/usr/bin/env python3
"""Cost of one stats sample for 1, 50 and 200 running containers, next to ``podman stats``.

For each count, real busybox ``sleep`` containers are running (started
through the Engine on a private root). Measured:

* portside: ``StatsSampler.sample()`` — what ``stats`` and the app's stats
  view call every second: the running containers looked up in the state
  database, then every container's cgroup files, /proc/<pid>/net/dev and
  /proc/stat read. Median wall time and the CPU time the sampler used, over
  many samples; the CPU time as a share of a core when sampling once a second.
* portside CLI: ``portside stats --no-stream`` as a whole process, as a
  user runs it: interpreter start, imports, two samples with the 1 s pause
  between them that CPU % needs (Docker waits for two readings too). Its
  wall time and CPU (user+sys of the process).
* podman: ``podman stats --no-stream`` on the same number of podman
  containers (private store, ``--runtime runc``, ``--network none``), if
  podman works here. Median wall time and CPU (its user+sys) over a few runs.

"ratio" compares one in-process sample with a whole podman process (what
the app pays each second against what a podman user waits); "CLI ratio"
compares whole process with whole process.

Containers are started (and removed) by parallel ``portside``/``podman``
processes, so 200 of each take a minute or two rather than many.

Targets (issue 5): 200 containers in < 100 ms and <= 0.2x podman.
Run as root: ``python bench/stats_bench.py [--samples N] [--counts 1,50,200]``.
Everything lives in a temp dir and is removed at the end.
"""
from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
import resource
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
sys.path.insert(0, str(REPO / "bench"))

from engine import Engine  # noqa: E402
from run_container import Podman  # noqa: E402  (the private-store podman of the run bench)
from tui_bench import wait_for_exit_hooks  # noqa: E402


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


def measure_process(run: Callable[[], str], runs: int) -> tuple[float, float, int]:
    """(median wall ms, mean CPU ms of the children, rows printed) of a command ``run`` starts."""
    walls, cpus = [], []
    rows = 0
    for _ in range(runs):
        c = children_cpu()
        t = time.perf_counter()
        out = run()
        walls.append((time.perf_counter() - t) * 1000)
        cpus.append((children_cpu() - c) * 1000)
        rows = len(out.splitlines())
    return statistics.median(walls), statistics.mean(cpus), rows


def measure_cli(root: Path, runs: int) -> tuple[float, float, int]:
    """``portside stats --no-stream`` as a process."""
    return measure_process(lambda: subprocess.run(
        [sys.executable, "-m", "tui", "--root", str(root), "--run-dir", str(root.parent / "run"),
         "stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}}"],
        capture_output=True, text=True, check=True, cwd=REPO, stdin=subprocess.DEVNULL).stdout, runs)


def portside_cli(root: Path, *args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "tui", "--root", str(root),
                        "--run-dir", str(root.parent / "run"), *args],
                       capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"portside {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-500:]}")
    return p.stdout.strip()


def start_many(n: int, start: Callable[[int], str], jobs: int) -> list[str]:
    """Start ``n`` containers with ``jobs`` processes at a time; their ids."""
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(start, range(n)))


def measure_podman(podman: Podman, runs: int) -> tuple[float, float, int]:
    """``podman stats --no-stream``."""
    return measure_process(lambda: podman.podman(
        "stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}}").stdout, runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=30, help="portside samples per count")
    ap.add_argument("--podman-runs", type=int, default=3)
    ap.add_argument("--counts", default="1,50,200")
    ap.add_argument("--cli-runs", type=int, default=3, help="portside stats --no-stream processes")
    ap.add_argument("--jobs", type=int, default=6, help="containers started at once")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    counts = sorted(int(x) for x in args.counts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="portside-statsbench-"))
    engine = Engine(tmp / "root", tmp / "run")
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
        print("in-process = one StatsSampler.sample(); CLI = a whole `portside stats --no-stream` "
              "process (incl. its 1 s CPU pause)\n")
        print(f"{'containers':>10} {'in-process':>11} {'sampler CPU':>12} {'(lookup)':>9} "
              f"{'CPU at 1 Hz':>12} {'CLI wall':>9} {'CLI CPU':>8} {'podman wall':>12} "
              f"{'podman CPU':>11} {'ratio':>7} {'CLI ratio':>9}")
        results: dict[int, tuple[float, float, float | None]] = {}
        for n in counts:
            t0 = time.perf_counter()
            base = len(ours)
            ours += start_many(n - base, lambda i: portside_cli(
                engine.paths.root, "run", "-d", "--network", "none", "--name", f"sb-{base + i}",
                "busybox", "sleep", "3600"), args.jobs)
            if podman is not None:
                pm = podman
                theirs += start_many(n - len(theirs), lambda i: pm.podman(
                    "run", "-d", "--network", "none", pm.image, "sleep", "3600").stdout.strip(),
                    args.jobs)
            print(f"  ({n} of each running after {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
            time.sleep(1)
            wall, cpu, lookup, rows = measure_portside(engine, args.samples)
            assert rows == n, f"sampled {rows} containers, expected {n}"
            cwall, ccpu, crows = measure_cli(engine.paths.root, args.cli_runs)
            assert crows == n, f"the CLI listed {crows} containers, expected {n}"
            pwall = pcpu = None
            if podman is not None:
                pwall, pcpu, prow = measure_podman(podman, args.podman_runs)
                assert prow == n, f"podman listed {prow} containers, expected {n}"
            ratio = f"{wall / pwall:.3f}x" if pwall else "n/a"
            cratio = f"{cwall / pwall:.2f}x" if pwall else "n/a"
            print(f"{n:>10} {wall:>9.2f}ms {cpu:>10.2f}ms {lookup:>7.2f}ms {cpu / 10:>11.2f}% "
                  f"{cwall:>7.0f}ms {ccpu:>6.0f}ms "
                  f"{(f'{pwall:.0f}ms' if pwall else '-'):>12} {(f'{pcpu:.0f}ms' if pcpu else '-'):>11} "
                  f"{ratio:>7} {cratio:>9}")
            results[n] = (wall, cwall, pwall)
        if podman_note:
            print("\n" + podman_note)
        top = max(results)
        wall, cwall, pwall = results[top]
        print(f"\ntargets (issue 5), {top} containers:")
        print(f"  < 100 ms per sample (in-process):  {wall:.1f} ms  {'met' if wall < 100 else 'NOT met'}")
        if pwall:
            print(f"  <= 0.2x podman stats (in-process): {wall / pwall:.3f}x  "
                  f"{'met' if wall <= 0.2 * pwall else 'NOT met'}")
            print(f"  CLI --no-stream vs podman (whole processes, ours incl. 1 s pause): "
                  f"{cwall:.0f} ms vs {pwall:.0f} ms = {cwall / pwall:.2f}x")
        return 0
    finally:
        chunks = [ours[i:i + 20] for i in range(0, len(ours), 20)]
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda ids: subprocess.run(
                [sys.executable, "-m", "tui", "--root", str(engine.paths.root),
                 "--run-dir", str(engine.paths.run), "rm", "-f", *ids],
                capture_output=True, cwd=REPO, stdin=subprocess.DEVNULL), chunks))
        for c in engine.containers(all=True):     # whatever a failed removal left
            try:
                engine.rm(c.id, force=True)
            except Exception:      # noqa: BLE001 - best effort, keep removing the rest
                pass
        if podman is not None:
            pm, pchunks = podman, [theirs[i:i + 20] for i in range(0, len(theirs), 20)]
            with ThreadPoolExecutor(args.jobs) as pool:     # podman rm -a is one at a time
                list(pool.map(lambda ids: pm.podman("rm", "-f", "-t", "0", *ids, check=False),
                              pchunks))
            podman.close()
        engine.close()
        wait_for_exit_hooks(tmp)                  # else a late one re-creates the root
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
