"""Search efficiency on recorded learning curves: ASHA+TPE, ASHA+random, FIFO+TPE,
FIFO+random and BOHB (Ray's TuneBOHB with HyperBandForBOHB), each replayed many times over
one table of real training runs.

Real searches cost too much for many repeats on two cores, so, as tabulated HPO benchmarks
do (NAS-Bench, HPOBench), every point of the ``grid`` space (search/spaces.py) is trained
once for real with exactly the configuration a trial of a real search would have, and its
learning curve (each iteration's result) and final test figures are recorded. Searches are
then replayed with the project's real searcher (TPE or random, the preset enqueued first)
and real scheduler (ASHA with its tie-break, or FIFO) on a trainable that reports the
recorded results; BOHB as Ray ships it, judging the same tie-broken return. One trial runs at
a time, so a replay is deterministic given its seed. BOHB needs ``pip install -e ".[bohb]"``.

    python -m bench.replay record --env MiniGrid-Dynamic-Obstacles-8x8-v0 --max-iters 4
    python -m bench.replay compare --table results/bench/grid-Dynamic-Obstacles-8x8-v0-4/\
table.json --num-samples 16 --grace-period 2 --reduction-factor 2 --target 0.937 0.9
    python -m bench.replay check --table ... --seed 0     # a real search beside its replay

Target: the incumbent's (the preset's grid point) test return, or each ``--target``. A
search reaches it when a trial other than the preset's own completes the full budget with a
test return at least that high: it has found a configuration as good as the one it started
from. Counted in trial-iterations (every iteration is the same number of optimiser steps),
in the order the iterations ran (BOHB's HyperBand pauses trials and resumes them later); a
search that never reaches it counts all it spent. The winner is what the search exports (the
best completed trial by selection return), scored by its test return.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from bench.measure import ROOT, emit, load, machine, median
from core import config as cfg
from core.metrics import TIEBREAK, TIME, judged
from search.console import loggers
from search.outcome import rank
from search.results import experiment_state, read_trials
from search.scheduler import make_scheduler
from search.searcher import PruningAwareOptunaSearch, make_sampler
from search.settings import Settings, base_config
from search.spaces import GRID, grid, point_of

ARMS = {
    "asha_tpe": ("asha", "tpe"),
    "asha_random": ("asha", "random"),
    "fifo_tpe": ("fifo", "tpe"),
    "fifo_random": ("fifo", "random"),
    "bohb": ("hyperband", "bohb"),
}
# The return with the validation-loss tie-break (core/metrics.py), reported for BOHB: the
# project's ASHA and TPE judge it so internally, Ray's BOHB reads it as its metric.
JUDGED = "eval/judged_return"
CLOCK = "replay/clock"
CPUS = 2  # the replay's Ray instance (ray.init below)


def key(values: dict) -> str:
    # BOHB's ConfigSpace hands back numpy scalars.
    return json.dumps({k: values[k] for k in GRID}, sort_keys=True, default=lambda v: v.item())


# ---- record: every grid point trained once, for real ----


def record(env: str, max_iters: int, out: Path, jobs: int) -> Path:
    settings = Settings(env=env, max_iters=max_iters, space="grid")
    # A trial of the real search on a CPU: the settings' base with one thread (the placement).
    base = cfg.from_flat({"train.threads": 1}, base_config(settings))
    points = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    out.mkdir(parents=True, exist_ok=True)

    def one(point: dict) -> dict:
        name = "-".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
        folder = out / name
        if not (folder / "metrics.json").exists():
            config = cfg.from_flat({**point, "train.test_episodes": 300}, base)
            path = out / f"{name}.yaml"
            path.write_text(cfg.dump_yaml(config))
            command = [sys.executable, "run_search.py", "train", "--config", str(path)]
            with open(out / f"{name}.log", "w") as log:
                subprocess.run(
                    [*command, "--out", str(folder)], cwd=ROOT, stdout=log, stderr=log, check=True
                )
        curve = [json.loads(line) for line in (folder / "seed0" / "history.jsonl").open()]
        last = curve[-1]
        test = {k: last.pop(k) for k in list(last) if k.startswith("test/")}
        minutes = json.loads((folder / "metrics.json").read_text())["mean"]["time/minutes"]
        return {"values": point, "curve": curve, "test": test, "minutes": minutes}

    with ThreadPoolExecutor(jobs) as pool:
        recorded = list(pool.map(one, points))
    table = {
        "env": env,
        "max_iters": max_iters,
        "base": cfg.to_dict(base),
        "incumbent": key(point_of("grid", base)),
        "points": recorded,
    }
    path = out / "table.json"
    path.write_text(json.dumps(table))
    return path


# ---- replay: the real searcher and scheduler over the recorded curves ----


def replay_trial(params: dict, curves: dict) -> None:
    """Report the recorded results of the point ``params`` names, one iteration at a time,
    each with a checkpoint (the iterations done) so that a paused trial resumes where it was,
    as a real trial resumes from its checkpoint; the clock orders iterations across trials."""
    done = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            done = int((Path(folder) / "iterations").read_text())
    for iteration, result in enumerate(curves[key(params)][done:], done + 1):
        reported = {k: v for k, v in result.items() if v is not None}
        reported[JUDGED] = judged("eval/return", reported["eval/return"], reported.get(TIEBREAK))
        reported[CLOCK] = time.time()
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "iterations").write_text(str(iteration))
            tune.report(reported, checkpoint=tune.Checkpoint.from_directory(folder))


def replay(
    table: dict,
    arm: str,
    seed: int,
    num_samples: int,
    grace: int,
    factor: float,
    folder: Path,
    sampler=None,
) -> Path:
    """One search of ``arm`` over the recorded curves, the preset enqueued as its first
    trial; its folder."""
    name = f"{arm}-seed{seed}"
    scheduler_name, searcher_name = ARMS[arm]
    max_iters = table["max_iters"]
    incumbent = json.loads(table["incumbent"])
    if arm == "bohb":
        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB

        space = TuneBOHB.convert_search_space({k: tune.choice(v) for k, v in GRID.items()})
        searcher = TuneBOHB(
            space, metric=JUDGED, mode="max", points_to_evaluate=[incumbent], seed=seed
        )
        scheduler = HyperBandForBOHB(
            metric=JUDGED, mode="max", max_t=max_iters, reduction_factor=factor
        )
    else:
        searcher = PruningAwareOptunaSearch(
            grid,
            sampler or make_sampler(searcher_name, seed, num_samples),
            "eval/return",
            "max",
            max_iters,
            points_to_evaluate=[incumbent],
        )
        scheduler = make_scheduler(scheduler_name, folder / name, max_iters, grace, factor)
        scheduler.set_search_properties("eval/return", "max")
    curves = {key(p["values"]): p["curve"] for p in table["points"]}
    # Every CPU a trial: one runs at a time even while HyperBand holds others paused.
    trainable = tune.with_parameters(replay_trial, curves=curves)
    tune.Tuner(
        tune.with_resources(trainable, {"cpu": ray.cluster_resources()["CPU"]}),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=1),
            scheduler=scheduler,
            num_samples=num_samples,
            reuse_actors=True,
        ),
        # A search's own loggers: Ray's default ones are off once search/ has been imported.
        run_config=tune.RunConfig(
            name=name, storage_path=str(folder.resolve()), verbose=0, callbacks=loggers()
        ),
    ).fit()
    return folder / name


def incumbent_return(table: dict) -> float:
    return next(
        p["test"]["test/return"] for p in table["points"] if key(p["values"]) == table["incumbent"]
    )


def outcomes(table: dict, folder: Path, targets: list[float]) -> list[dict]:
    """For each target: trial-iterations until a trial other than the incumbent completes
    with a test return at least the target, and the exported winner's test return."""
    tests = {key(p["values"]): p["test"]["test/return"] for p in table["points"]}
    max_iters = table["max_iters"]
    trials = read_trials(folder, max_iters)
    # A real search (``check``) has no replay clock; one trial at a time, Ray's timestamps
    # (whole seconds) and the order the trials were proposed in give the same order.
    proposed = {t: s["order"] for t, s in experiment_state(folder).items()}
    iterations = sorted(
        ((r.get(CLOCK, r["timestamp"]), proposed[t.trial_id], r[TIME]), t)
        for t in trials
        for r in t.history
    )
    spent = len(iterations)
    # (trial-iterations spent when it ended, its test return) of each other full trial.
    completed = [
        (n, tests[key(trial.params)])
        for n, ((_, _, iteration), trial) in enumerate(iterations, 1)
        if iteration == max_iters and key(trial.params) != table["incumbent"]
    ]
    winner = key(rank(trials, "eval/return")[0].params)
    found = []
    for target in targets:
        reached = next((n for n, test in completed if test >= target), None)
        found.append(
            {
                "reached": reached is not None,
                "trial_iterations_to_target": reached if reached is not None else spent,
                "trial_iterations_spent": spent,
                "winner": winner,
                "winner_test_return": round(tests[winner], 4),
                "target": round(target, 4),
            }
        )
    return found


def compare(table: dict, args, out: Path) -> dict:
    """Every arm replayed ``--repeats`` times, judged at each target."""
    targets = args.target or [incumbent_return(table)]
    runs = {target: {arm: [] for arm in args.arms} for target in targets}
    for seed in range(args.repeats):
        for arm in args.arms:  # interleaved
            sampler = None
            if ARMS[arm][1] == "tpe":
                multivariate = not args.univariate
                sampler = make_sampler("tpe", seed, args.num_samples, args.startup, multivariate)
            factor, grace = args.reduction_factor, args.grace_period
            folder = replay(table, arm, seed, args.num_samples, grace, factor, out, sampler)
            for target, found in zip(targets, outcomes(table, folder, targets), strict=True):
                runs[target][arm].append({"seed": seed, **found})
    return {"by_target": [summarise(by_arm) for by_arm in runs.values()]}


def summarise(runs: dict[str, list[dict]]) -> dict:
    needed = {
        arm: median([r["trial_iterations_to_target"] for r in rs]) for arm, rs in runs.items()
    }
    summary = {
        "target": next(iter(runs.values()))[0]["target"],
        "median_trial_iterations_to_target": needed,
        "reached": {arm: sum(r["reached"] for r in rs) for arm, rs in runs.items()},
        "median_winner_test_return": {
            arm: median([r["winner_test_return"] for r in rs]) for arm, rs in runs.items()
        },
        "median_trial_iterations_spent": {
            arm: median([r["trial_iterations_spent"] for r in rs]) for arm, rs in runs.items()
        },
    }
    if "asha_tpe" in needed and "fifo_random" in needed:
        summary["ratio_asha_tpe_over_fifo_random"] = round(
            needed["asha_tpe"] / needed["fifo_random"], 3
        )
    return {**summary, "runs": runs}


# ---- check: one real search beside its replay ----


def check(table: dict, args, out: Path) -> dict:
    """Run the real search (``run_search.py``, one trial at a time, no finalists) and its
    replay with the same seed; they must propose the same configurations, stop them at the
    same iterations and see the same returns."""
    name = f"real-asha_tpe-seed{args.seed}"
    flags = [
        "--env",
        table["env"],
        "--space",
        "grid",
        "--max-iters",
        str(table["max_iters"]),
        "--num-samples",
        str(args.num_samples),
        "--grace-period",
        str(args.grace_period),
        "--reduction-factor",
        str(args.reduction_factor),
        "--seed",
        str(args.seed),
        "--max-concurrent",
        "1",
        "--finalists",
        "0",
        "--name",
        name,
        "--results-dir",
        str(out),
    ]
    if not (out / name / "trials.csv").exists():
        env = {**os.environ, "RAY_ADDRESS": "local"}
        with open(out / f"{name}.log", "w") as log:
            command = [sys.executable, "run_search.py", *flags]
            subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=log, check=True)
    ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
    replayed = replay(
        table,
        "asha_tpe",
        args.seed,
        args.num_samples,
        args.grace_period,
        args.reduction_factor,
        out / "replays",
    )
    ray.shutdown()
    real, again = sequence(out / name, table), sequence(replayed, table)
    return {
        "same_configurations_in_order": [t[0] for t in real] == [t[0] for t in again],
        "same_stops": [t[:2] for t in real] == [t[:2] for t in again],
        "same_returns": real == again,
        "real": real,
        "replay": again,
        "real_outcome": outcomes(table, out / name, [incumbent_return(table)])[0],
        "replay_outcome": outcomes(table, replayed, [incumbent_return(table)])[0],
    }


def sequence(folder: Path, table: dict) -> list[tuple]:
    """(configuration, iterations, eval/return per iteration) of each trial, in proposal
    order."""
    snapshot = experiment_state(folder)
    trials = sorted(
        read_trials(folder, table["max_iters"]), key=lambda t: snapshot[t.trial_id]["order"]
    )
    return [
        (key(t.params), t.iterations, [round(r["eval/return"], 6) for r in t.history])
        for t in trials
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["record", "compare", "check"])
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--max-iters", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2, help="record: runs at once")
    parser.add_argument("--table", type=Path, help="compare, check: a recorded table.json")
    parser.add_argument("--repeats", type=int, default=5, help="compare: seeds 0 .. repeats-1")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--grace-period", type=int, default=2)
    parser.add_argument("--reduction-factor", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0, help="check: the search's seed")
    parser.add_argument("--startup", type=int, help="TPE's random trials (default: the search's)")
    parser.add_argument(
        "--target",
        type=float,
        nargs="+",
        help="compare: test returns to reach (default: the incumbent's)",
    )
    parser.add_argument("--univariate", action="store_true", help="TPE: each parameter alone")
    args = parser.parse_args()
    load_before = load()
    if args.command == "record":
        out = (
            ROOT
            / "results"
            / "bench"
            / f"grid-{args.env.removeprefix('MiniGrid-')}-{args.max_iters}"
        )
        emit(
            {
                "bench": "replay record",
                "table": str(record(args.env, args.max_iters, out, args.jobs)),
            }
        )
        return
    table = json.loads(args.table.read_text())
    out = Path(tempfile.mkdtemp(prefix="replay-", dir=args.table.parent))
    if args.command == "check":
        result = check(table, args, args.table.parent)
    else:
        ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
        result = compare(table, args, out)
        ray.shutdown()
    keys = (
        "num_samples",
        "grace_period",
        "reduction_factor",
        "repeats",
        "startup",
        "univariate",
        "target",
    )
    settings = {k: getattr(args, k) for k in keys}
    emit(
        {
            "bench": f"replay {args.command}",
            "machine": machine(),
            "table": str(args.table),
            "env": table["env"],
            "max_iters": table["max_iters"],
            "settings": settings,
            **result,
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
