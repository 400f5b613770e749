"""Threads when the machine is shared: samples/s of one `default` training alone and of two
side by side, for each way of choosing torch's CPU threads, in fresh processes (OpenMP reads
its environment once, when torch loads).

    python -m bench.threads                       # from the repository root; prints JSON
    python -m bench.threads --rounds 3 --seconds 10

Ways: ``all`` (torch's default, one thread per core, OpenMP's threads spinning while they
wait, as `train` ran before), ``one`` (one thread), ``passive`` (one thread per core, waiting
threads asleep: OMP_WAIT_POLICY=PASSIVE), ``free`` (what `train` does now with
``train.threads: 0``: core/threads.py's count of the cores others leave free, looked at again
after every stretch of STRETCH seconds, as `train` does after every iteration). Each round
runs every way alone and then two of it at once, in an order that turns each round; the
figure is each process's samples/s (the median over rounds) and the two processes' sum.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from bench.measure import ROOT, emit, load, median

WAYS = {
    "all": {"threads": 0, "env": {"OMP_WAIT_POLICY": ""}},
    "one": {"threads": 1, "env": {"OMP_WAIT_POLICY": ""}},
    "passive": {"threads": 0, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "free": {"threads": -1, "env": {"OMP_WAIT_POLICY": ""}},
}
STRETCH = 2.0  # seconds of training between two looks at the free cores (way ``free``)


def worker(threads: int, seconds: float) -> None:
    """One training (the bench's `default` on its cached demonstrations) for ``seconds``;
    prints its samples/s."""
    import torch

    from bench.training import samples_per_s, trainer_for
    from core import config as cfg
    from core.threads import FreeCores

    free = FreeCores() if threads < 0 else None
    if threads > 0:
        torch.set_num_threads(threads)
    trainer = trainer_for(cfg.DEFAULT, [])
    for _ in range(3):
        trainer.step()
    if free is None:
        print(json.dumps({"samples_per_s": samples_per_s(trainer, seconds)}))
        return
    rates, counts = [], []
    for _ in range(round(seconds / STRETCH)):
        counts.append(free.threads())
        torch.set_num_threads(counts[-1])
        rates.append(samples_per_s(trainer, STRETCH))
    print(json.dumps({"samples_per_s": sum(rates) / len(rates), "threads": counts}))


def run(way: str, copies: int, seconds: float) -> list[dict]:
    """``copies`` processes of ``way`` at once, started together; each one's samples/s (and,
    for ``free``, its thread counts)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update({k: v for k, v in WAYS[way]["env"].items() if v})
    command = [sys.executable, "-m", "bench.threads", "--worker", str(WAYS[way]["threads"])]
    command += ["--seconds", str(seconds)]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]
    return [json.loads(p.communicate()[0].splitlines()[-1]) for p in processes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="training time a run")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.seconds)
        return
    load_before = load()
    alone: dict[str, list[float]] = {way: [] for way in WAYS}
    beside: dict[str, list[float]] = {way: [] for way in WAYS}
    order = list(WAYS)
    for r in range(args.rounds):
        for way in order[r % len(order) :] + order[: r % len(order)]:
            one, two = run(way, 1, args.seconds), run(way, 2, args.seconds)
            alone[way].append(one[0]["samples_per_s"])
            beside[way].append(sum(p["samples_per_s"] for p in two))
            print(f"round {r}: {way}: alone {one}, two {two}", file=sys.stderr)
    emit(
        {
            "bench": "threads",
            "cores": os.cpu_count(),
            "config": "default",
            "seconds": args.seconds,
            "rounds": args.rounds,
            "samples_per_s_alone": {way: round(median(v), 1) for way, v in alone.items()},
            "samples_per_s_two_beside_sum": {way: round(median(v), 1) for way, v in beside.items()},
            "alone_rounds": {way: [round(x) for x in v] for way, v in alone.items()},
            "two_beside_sum_rounds": {way: [round(x) for x in v] for way, v in beside.items()},
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
