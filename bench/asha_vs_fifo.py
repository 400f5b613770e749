"""Search effectiveness: the trial-iterations ASHA+TPE spends before its best eval/return
reaches a target, against FIFO+random search with the same number of trials and the same
seeds, over several repeats; and the final best of each.

    python -m bench.asha_vs_fifo                   # from the repository root; prints JSON
    python -m bench.asha_vs_fifo --repeats 5 --target 0.9 -- --num-samples 12 --max-iters 6
                                                   # (flags after -- replace the budget)

Each search is the real ``run_search.py`` (see bench/search.py). The iterations of all its
trials are put in the order they finished (Ray's ``timestamp``, then the iteration), and the
count is the number finished when the best eval/return so far first reaches the target; a
search that never reaches it counts all it spent and is marked. Trial-iterations are the
compute unit ASHA saves: every iteration is the same number of optimiser steps. The final
best is the exported best trial's last eval/return (a trial that ran the full budget first).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.measure import ROOT, emit, load, machine, median
from bench.search import run_search
from search.outcome import rank
from search.record import read_record
from search.results import read_trials

# Small enough for three repeats of both arms in about 15 minutes on 2 cores: the smoke
# budget's iterations (10 optimiser steps, 10 evaluation episodes) on the one-step `bc`
# preset, which learns within it where the diffusion preset needs 10x the updates. How fast
# a configuration learns here depends strongly on it (learning rate above all): at iteration
# 10 one learning rate has return 0.39, another 0.
BUDGET = [
    "--smoke",
    "--preset",
    "bc",
    "--num-samples",
    "12",
    "--max-iters",
    "16",
    "--grace-period",
    "4",
    "--reduction-factor",
    "2",
]
ARMS = {
    "asha_tpe": ["--searcher", "tpe", "--scheduler", "asha"],
    "fifo_random": ["--searcher", "random", "--scheduler", "fifo"],
}


def iterations_to_target(folder: Path, target: float) -> dict:
    settings = read_record(folder).settings
    metric = settings.metric
    trials = read_trials(folder, settings.max_iters)
    results = sorted(
        (r.get("timestamp", 0), r["iteration"], r.get(metric, float("-inf")))
        for t in trials
        for r in t.history
    )
    best, reached = float("-inf"), None
    for count, (_, _, value) in enumerate(results, start=1):
        best = max(best, value)
        if reached is None and best >= target:
            reached = count
    ranked = rank(trials, metric)
    return {
        "reached": reached is not None,
        "trial_iterations_to_target": reached if reached is not None else len(results),
        "trial_iterations_spent": len(results),
        "best_any_iteration": round(best, 4),
        "final_best": round(ranked[0].last(metric), 4) if ranked else None,
        "final_best_status": ranked[0].status if ranked else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds 0 .. repeats-1")
    parser.add_argument("--target", type=float, default=0.5, help="eval/return to reach")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    args, extra = parser.parse_known_args()  # anything else goes to run_search.py
    budget = [a for a in extra if a != "--"] or BUDGET
    stamp = time.strftime("%Y%m%d-%H%M%S")
    load_before = load()
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for seed in range(args.repeats):
        for arm, flags in ARMS.items():  # interleaved, so both see the same machine load
            folder = args.out / f"asha-vs-fifo-{stamp}" / f"{arm}-seed{seed}"
            command_s = run_search(folder, [*budget, *flags, "--seed", str(seed)])
            runs[arm].append(
                {
                    "seed": seed,
                    **iterations_to_target(folder, args.target),
                    "command_s": round(command_s, 1),
                }
            )
    needed = {
        arm: median([r["trial_iterations_to_target"] for r in rs]) for arm, rs in runs.items()
    }
    emit(
        {
            "bench": "asha_vs_fifo",
            "machine": machine(),
            "budget": budget,
            "target": args.target,
            "median_trial_iterations_to_target": needed,
            "ratio_asha_over_fifo": round(needed["asha_tpe"] / needed["fifo_random"], 3),
            "median_final_best": {
                arm: median([r["final_best"] for r in rs if r["final_best"] is not None])
                for arm, rs in runs.items()
            },
            "runs": runs,
            "folder": str(args.out / f"asha-vs-fifo-{stamp}"),
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
