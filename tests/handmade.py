"""Search folders made by hand, in the files Ray Tune writes (its experiment snapshot, each
trial's params.json and result.json), so that a search's stages and exports can be tested
without starting Ray. ``tests/test_search.py``'s real searches check that Ray writes what
this writes (search/upstream.py reads both)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.config import to_dict
from core.evaluate import TESTED
from search.record import SearchRecord, write_record
from search.settings import Settings, base_config

# A small search: 4 trials of 3 iterations, 2 finalists on 2 seeds each.
SETTINGS = Settings(
    env="MiniGrid-DoorKey-5x5-v0",
    num_samples=4,
    max_iters=3,
    grace_period=1,  # the hand-made trials stop at iteration 1, ASHA's first rung here
    finalists=2,
    finalist_seeds=2,
    test_episodes=10,
    metric="eval/return",
)


@dataclass
class RayRun:
    """One trial (or finalist run) as Ray leaves it: its parameters, its returns by
    iteration, Ray's status, and extra figures of its last result."""

    name: str
    params: dict
    returns: list[float]
    status: str = "TERMINATED"  # RUNNING, PENDING, ERROR, TERMINATED
    last: dict = field(default_factory=dict)
    tested: list[float] | None = None  # each test episode's return (core/evaluate.py)

    @property
    def history(self) -> list[dict]:
        results = [
            {"iteration": i, "eval/return": r, "val/loss": 1.0 - r, "time_this_iter_s": 1.0}
            for i, r in enumerate(self.returns, 1)
        ]
        if results:
            results[-1].update(self.last)
        return results


def write_experiment(experiment: Path, runs: list[RayRun]) -> None:
    """Ray's files for ``runs`` in ``experiment``: a snapshot naming each, and its folder."""
    experiment.mkdir(parents=True, exist_ok=True)
    (experiment / "tuner.pkl").write_bytes(b"written by Ray")
    data = []
    for order, run in enumerate(runs, 1):
        folder = experiment / run.name
        folder.mkdir(exist_ok=True)
        (folder / "params.json").write_text(json.dumps(run.params))
        history = run.history
        if run.tested is not None:  # with the last checkpoint, as core/trainable.py keeps them
            checkpoint = folder / "checkpoint_000000"
            checkpoint.mkdir()
            (checkpoint / "checkpoint.pt").write_bytes(b"weights")
            history[-1]["checkpoint_dir_name"] = checkpoint.name
            episodes = [{"return": float(r), "success": bool(r > 0)} for r in run.tested]
            (checkpoint / TESTED).write_text(json.dumps({"episodes": episodes}))
        (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in history))
        trial = {
            "trial_id": run.name.removeprefix("trial_"),
            "status": run.status,
            "relative_logdir": run.name,
            "experiment_tag": f"{order}_x",
        }
        last = {"last_result": history[-1] if history else {}}
        data.append([json.dumps(trial), json.dumps(last)])
    for old in experiment.glob("experiment_state-*.json"):
        old.unlink()
    state = experiment / "experiment_state-2026-12-07_00-00-00.json"
    state.write_text(json.dumps({"trial_data": data}))


def trial(number: int, returns: list[float], status: str = "TERMINATED") -> RayRun:
    """Trial ``number``, with a learning rate of its own (none is the preset's)."""
    return RayRun(f"trial_{number:08d}", {"train.lr": 0.0005 * number + 0.0001}, returns, status)


def write_search(folder: Path, runs: list[RayRun], settings: Settings = SETTINGS, **record) -> None:
    """A search folder: its record (at the stage ``record`` names) and its trials."""
    folder.mkdir(parents=True, exist_ok=True)
    base = to_dict(base_config(settings))
    write_record(folder, SearchRecord(settings, base=base, **record))
    write_experiment(folder, runs)


def finalist_runs(
    configs: dict, seeds: list[int], test_return: dict, episodes: dict | None = None
) -> list[RayRun]:
    """Each finalist's run on each seed, finished, with its test return; with ``episodes``
    (name -> seed -> each test episode's return) the episodes' own figures too."""
    return [
        RayRun(
            f"{name}_seed{seed}",
            {"finalist": name, "train.seed": seed},
            [0.5, 0.6, 0.7],
            last={"test/return": test_return[name] + 0.01 * seed, "test/success": 1.0},
            tested=episodes[name][seed] if episodes else None,
        )
        for name in configs
        for seed in seeds
    ]
