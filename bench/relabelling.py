"""DAgger's relabelling: the seconds one `Trainer.relabel` takes for an untrained policy (its
episodes run long: the dearest relabelling of a run), with the labels made by 1 and by 2
processes, and a digest of the rows it adds (the same digest: the same rows).

    python -m bench.relabelling --env MiniGrid-KeyCorridorS3R1-v0 --episodes 60
    python -m bench.relabelling --env BabyAI-GoToLocal-v0 --episodes 100 --jobs 1 2
    python -m bench.relabelling --env MiniGrid-FourRooms-v0 --preset memory --set data.episodes=200

Run it in a checkout of an earlier commit (it uses nothing newer than `Trainer` and
`for_data`) for the "before" figure.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import torch

from bench.measure import emit, load
from core.config import apply_sets, override, preset
from core.trainer import Trainer
from data.demos import for_data


def relabelled(env_id: str, episodes: int, jobs: int, name: str, sets: list[str]) -> dict:
    config = apply_sets(override(preset(name), "data.env", env_id), sets)
    torch.set_num_threads(jobs)  # relabelling labels with as many processes
    trainer = Trainer(config, for_data(config.data))
    start = time.perf_counter()
    trainer.relabel(episodes)
    seconds = time.perf_counter() - start
    rows = trainer.train_set.tail(trainer.demo_samples)
    digest = hashlib.sha256()
    for key in sorted(rows):
        digest.update(rows[key].numpy().tobytes())
    return {
        "jobs": jobs,
        "seconds": round(seconds, 1),
        "rows": len(rows["actions"]),
        "sha256": digest.hexdigest()[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="MiniGrid-KeyCorridorS3R1-v0")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, as train's")
    args = parser.parse_args()
    runs = [relabelled(args.env, args.episodes, jobs, args.preset, args.set) for jobs in args.jobs]
    report = {"env": args.env, "preset": args.preset, "sets": args.set, "episodes": args.episodes}
    emit({**report, "load": load(), "runs": runs})


if __name__ == "__main__":
    main()
