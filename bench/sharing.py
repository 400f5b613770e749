"""Processes sharing one machine: N real `train` runs started together against one alone,
the aggregate samples/s each way (how search trials share a GPU, or a CPU's cores).

    python -m bench.sharing                                  # 1 and 4 processes on the CPU
    python -m bench.sharing --device cuda --procs 1 4        # four trainings on one GPU

Every process is `run_search.py train` (``--preset`` on ``--env``, ``--iters`` iterations,
the test episodes left out). A process's samples/s is the median of its iterations'
``perf/samples_per_s`` after the first (which pays for warm-up); the aggregate is their sum,
and ``scaling`` the aggregate over the first group's (one process by default). ``wall_s`` is
the group's wall time, DAgger and rollouts included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import ROOT, emit, load, machine, median
from core import config as cfg
from data.demos import for_data


def group(n: int, args: argparse.Namespace, out: Path) -> dict:
    """``n`` trainings started together; their samples/s and the group's wall time."""
    sets = [
        f"train.device={args.device}",
        f"train.threads={args.threads}",
        "train.test_episodes=0",
        *args.set,
    ]
    base = [sys.executable, "run_search.py", "train", "--preset", args.preset, "--env", args.env]
    base += ["--iters", str(args.iters), *(a for s in sets for a in ("--set", s))]
    start = time.perf_counter()
    runs = [
        subprocess.Popen(
            [*base, "--out", str(out / f"{n}-{i}")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    errors = []
    for run in runs:
        _, err = run.communicate()
        if run.returncode != 0:
            errors.append(err)
    wall = time.perf_counter() - start
    if errors:  # the group's figures would be a failed process's: report what went wrong
        return {"processes": n, "error": errors[0].strip().splitlines()[-5:]}
    rates = []
    for i in range(n):
        lines = (out / f"{n}-{i}" / "seed0" / "history.jsonl").read_text().splitlines()
        rates.append(median([json.loads(ln)["perf/samples_per_s"] for ln in lines[1:]]))
    return {
        "processes": n,
        "samples_per_s": [round(r, 1) for r in rates],
        "aggregate_samples_per_s": round(sum(rates), 1),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--iters", type=int, default=4, help="iterations of each training")
    parser.add_argument("--threads", type=int, default=1, help="torch threads a process")
    parser.add_argument("--set", action="append", default=[], help="key=value, every training")
    args = parser.parse_args()
    if args.iters < 2:
        parser.error("--iters must be at least 2 (the first iteration is warm-up)")
    config = cfg.apply_sets(cfg.override(cfg.preset(args.preset), "data.env", args.env), args.set)
    for_data(config.data)  # made once here, not by several processes at once
    load_before = load()
    with tempfile.TemporaryDirectory() as out:
        groups = [group(n, args, Path(out)) for n in args.procs]
    done = [g for g in groups if "error" not in g]
    for g in done:
        g["scaling"] = round(g["aggregate_samples_per_s"] / done[0]["aggregate_samples_per_s"], 2)
    emit(
        {
            "bench": "sharing",
            "machine": machine(),
            "device": args.device,
            "preset": args.preset,
            "env": args.env,
            "iters": args.iters,
            "groups": groups,
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
