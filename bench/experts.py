"""The experts on every id of the supported families: success on test-range episodes, mean
episode length, time per episode. An id whose expert is below 0.99 is not supported
(data/envs.py NOT_SOLVED); this is the measurement that says so.

    python -m bench.experts                            # every id: JSON, and the table's rows
    python -m bench.experts --episodes 200 --jobs 2 --out docs/environments.md
    python -m bench.experts --envs BabyAI-GoToLocal-v0 MiniGrid-KeyCorridorS3R3-v0

Each expert plays as it demonstrates (data/demos.py ``demonstrate``, no noise) on the test
episodes of data seed 0 (env seeds from 2**32: no demonstration or selection episode).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from data.demos import demonstrate
from data.envs import NOT_SOLVED, build_env, by_family, episode_seeds, family_of
from data.teachers import teachers


def measure(env_id: str, episodes: int) -> dict:
    """The task's own expert on ``episodes`` test episodes: successes, lengths, seconds."""
    env = build_env(env_id, checked=False)
    teacher_in = teachers("auto", env_id)
    lengths, start = [], time.perf_counter()
    for env_seed in episode_seeds("test", 0, episodes):
        obs, _ = env.reset(seed=int(env_seed))
        played = demonstrate(env, obs, teacher_in(env), np.random.default_rng(0), 0.0)
        lengths.append(len(played.rows["plan"]) if played.success else None)
    seconds = (time.perf_counter() - start) / episodes
    won = [n for n in lengths if n is not None]
    return {
        "env_id": env_id,
        "family": family_of(env_id),
        "episodes": episodes,
        "success": len(won) / episodes,
        "mean_length": float(np.mean(won)) if won else None,
        "seconds_per_episode": round(seconds, 4),
        "supported": env_id not in NOT_SOLVED,
        "why_not": NOT_SOLVED.get(env_id, ""),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| id | family | expert success | mean length | s / episode | supported |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        length = f"{r['mean_length']:.1f}" if r["mean_length"] is not None else ""
        supported = "yes" if r["supported"] else f"no: {r['why_not']}"
        lines.append(
            f"| {r['env_id']} | {r['family']} | {r['success']:.3f} | {length} | "
            f"{r['seconds_per_episode']:.3f} | {supported} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    everything = [i for _, ids in by_family().values() for i in ids] + sorted(NOT_SOLVED)
    parser.add_argument("--envs", nargs="+", default=everything)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(measure, args.envs, [args.episodes] * len(args.envs)))
    print(json.dumps(rows, indent=1))
    if args.out:
        with open(args.out, "w") as out:
            out.write(table(rows))


if __name__ == "__main__":
    main()
