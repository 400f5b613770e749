"""Data speed: expert episodes/s (the shortest-path planner replanning after every noisy
step, as ``data.demos.generate`` runs it) and the build time of a training set, from nothing
to the tensors the trainer batches from.

    python -m bench.demonstrations                          # from the repository root; prints JSON
    python -m bench.demonstrations --env MiniGrid-FourRooms-v0 --episodes 500

The view timings put data/view.py beside what it replaces: MiniGrid's own ``gen_obs`` and
``Grid.encode``, called on the same states of a random walk.

The build is what a search or ``train`` does on a cache miss: generate, save (.npz and its
sidecar, into a temporary folder), load back, and turn the training split into tensors.
The bare environment's steps/s, measured in the same run, puts the expert's cost in scale.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from minigrid.minigrid_env import MiniGridEnv

from bench.control import bare_steps_per_s
from bench.measure import emit, load, machine, median
from core.chunks import Chunks
from data.demos import generate
from data.demos import load as load_demos
from data.demos import save as save_demos
from data.envs import episode_seeds, make_env
from data.expert import shortest_plan
from data.view import grid_encoding, observation


def plans_per_s(env_id: str, episodes: int) -> float:
    """The planner alone, once per freshly reset layout."""
    env = make_env(env_id)
    seeds = episode_seeds("training", 0, episodes)
    busy = 0.0
    for seed in seeds:
        env.reset(seed=int(seed))
        start = time.perf_counter()
        shortest_plan(env)
        busy += time.perf_counter() - start
    env.close()
    return episodes / busy


def view_us(env_id: str, states: int = 50, calls: int = 20) -> dict[str, float]:
    """Microseconds a call of MiniGrid's view and full-grid encoding and of data/view.py's,
    each on the same ``states`` states of a random walk (``calls`` calls a state)."""
    functions = {
        "view_minigrid": lambda u: MiniGridEnv.gen_obs(u),
        "view_fast": observation,
        "grid_encode_minigrid": lambda u: u.grid.encode(),
        "grid_encode_fast": lambda u: grid_encoding(u.grid),
    }
    busy = dict.fromkeys(functions, 0.0)
    env = make_env(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for state in range(states):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                function(env.unwrapped)
            busy[name] += time.perf_counter() - start
        _, _, terminated, truncated, _ = env.step(int(rng.integers(0, 3)))
        if terminated or truncated:
            env.reset(seed=state + 1)
    env.close()
    return {name: 1e6 * seconds / (states * calls) for name, seconds in busy.items()}


def build(env_id: str, episodes: int, noise: float, folder: Path) -> dict:
    timings = {}
    start = time.perf_counter()
    demos, meta = generate(env_id, episodes, seed=0, noise=noise)
    timings["generate_s"] = time.perf_counter() - start
    path = folder / "demos.npz"
    mark = time.perf_counter()
    save_demos(demos, meta, path)
    timings["save_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    demos, _ = load_demos(path)
    train, _ = demos.split(0.1)
    Chunks.from_demos(train, 8, 0, 0, 0, torch.device("cpu"))
    timings["load_and_tensors_s"] = time.perf_counter() - mark
    timings["build_s"] = time.perf_counter() - start
    timings["samples"] = demos.samples
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--episodes", type=int, default=2000, help="the default preset's")
    parser.add_argument("--noise", type=float, default=0.3, help="the default preset's")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    args = parser.parse_args()
    load_before = load()
    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            bare = bare_steps_per_s(args.env, 1.0, seed=round_)
            timings = build(args.env, args.episodes, args.noise, Path(folder))
            timings["plans_per_s"] = plans_per_s(args.env, 200)
            timings["bare_env_steps_per_s"] = bare
            timings.update(view_us(args.env))
            rounds.append(timings)
    pick = {k: median([r[k] for r in rounds]) for k in rounds[0]}
    emit(
        {
            "bench": "data",
            "machine": machine(),
            "env": args.env,
            "episodes": args.episodes,
            "noise": args.noise,
            "samples": int(pick["samples"]),
            "expert_episodes_per_s": round(args.episodes / pick["generate_s"], 1),
            "expert_steps_per_s": round(pick["samples"] / pick["generate_s"], 1),
            "plans_per_s": round(pick["plans_per_s"], 1),
            "bare_env_steps_per_s": round(pick["bare_env_steps_per_s"], 1),
            "view_us": {k: round(pick[f"view_{k}"], 1) for k in ("minigrid", "fast")},
            "grid_encode_us": {k: round(pick[f"grid_encode_{k}"], 1) for k in ("minigrid", "fast")},
            "build_s": round(pick["build_s"], 2),
            "build_parts_s": {
                k: round(pick[k], 3) for k in ("generate_s", "save_s", "load_and_tensors_s")
            },
            "build_s_rounds": [round(r["build_s"], 2) for r in rounds],
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
