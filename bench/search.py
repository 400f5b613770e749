"""Search efficiency: how busy a real search keeps the CPUs, and what a trial costs beyond
its own iterations.

    python -m bench.search                         # short trials (the smoke budget), 12 of them
    python -m bench.search --default               # the main job: `python run_search.py`
    python -m bench.search --read results/NAME     # a search that already ran

Runs ``run_search.py`` in a subprocess on a fresh local Ray (never one another process
started) and reads the search folder back with ``search.results``: utilisation is the sum
of the trials' busy time (Ray's ``time_this_iter_s``: from one report to the next, setup
and checkpointing included) over wall time x CPUs, wall time being that of ``Tuner.fit``
as the search records it; the overhead is the CPU-seconds left over, per trial.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import ROOT, emit, load, machine
from search.record import read_record
from search.results import read_trials

SHORT = ["--smoke", "--num-samples", "12"]


def run_search(folder: Path, flags: list[str]) -> float:
    """Run a search into ``folder``; returns the wall seconds of the whole command (Ray start,
    demonstrations, search, exports). Its output goes to ``folder``.log."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "run_search.py",
        "--name",
        folder.name,
        "--results-dir",
        str(folder.parent),
        *flags,
    ]
    # RAY_ADDRESS=local: always start a private Ray, even where `ray start` left one running.
    env = {**os.environ, "RAY_ADDRESS": "local"}
    start = time.perf_counter()
    with open(folder.with_suffix(".log"), "w") as log:
        subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=log, check=True)
    return time.perf_counter() - start


def efficiency(folder: Path) -> dict:
    record = read_record(folder)
    trials = read_trials(folder, record.settings.max_iters)
    wall, cpus = record.wall_s, record.cpus
    busy = sum(t.busy_s for t in trials)
    iterations = sum(t.iterations for t in trials)
    return {
        "trials": len(trials),
        "trial_iterations": iterations,
        "cpus": cpus,
        "wall_s": round(wall, 1),
        "busy_s": round(busy, 1),
        "utilisation": round(busy / (wall * cpus), 3),
        "overhead_s_per_trial": round((wall * cpus - busy) / len(trials), 2),
        "busy_s_per_iteration": round(busy / iterations, 2),
        "idle_cpu_s": idle_parts(trials, wall, cpus),
    }


def idle_parts(trials: list, wall: float, cpus: float) -> dict:
    """Where the idle CPU-seconds went, from each trial's span (its first iteration's start
    to its last report; Ray's timestamps are whole seconds): between trials while others were
    still to start, in the tail after the last trial started, and outside all trials (Ray
    start-up of the trial actors, the last checkpoint's upload, shutdown)."""
    spans = [
        (t.history[0]["timestamp"] - t.history[0]["time_this_iter_s"], t.history[-1]["timestamp"])
        for t in trials
        if t.history
    ]
    first, last_start, end = (
        min(s for s, _ in spans),
        max(s for s, _ in spans),
        max(e for _, e in spans),
    )

    def idle(a: float, b: float) -> float:
        """CPU-seconds in [a, b] with fewer trials running than CPUs, in 0.1 s steps."""
        steps = max(1, round((b - a) * 10))
        total = 0.0
        for i in range(steps):
            now = a + (i + 0.5) * (b - a) / steps
            running = sum(s <= now < e for s, e in spans)
            total += max(0.0, cpus - running) * (b - a) / steps
        return total

    return {
        "between_trials": round(idle(first, last_start), 1),
        "tail": round(idle(last_start, end), 1),
        "outside_trials": round(max(0.0, wall - (end - first)) * cpus, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default", action="store_true", help="the main job instead")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument("--read", type=Path, help="only read this finished search folder")
    args, extra = parser.parse_known_args()  # anything else goes to run_search.py
    flags = ([] if args.default else SHORT) + extra
    folder = args.read or args.out / f"search-{time.strftime('%Y%m%d-%H%M%S')}"
    load_before = load()
    command_s = None if args.read else round(run_search(folder, flags), 1)
    emit(
        {
            "bench": "search",
            "machine": machine(),
            "flags": None if args.read else flags,
            "folder": str(folder),
            **efficiency(folder),
            "command_s": command_s,
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
