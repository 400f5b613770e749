"""Evaluation: a policy rolled out (``core/rollout.py``) on one of the sets of episodes.

Two sets are rolled out here (``data/envs.py``): *selection* episodes give ``eval/*``, which the
search ranks on; *test* episodes give ``test/*``, the final figures, with how many of them
start from a layout no training episode had.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.checkpoint import load_checkpoint, write_json
from core.config import to_dict
from core.device import pick_device
from core.policy import Policy, policy_from_checkpoint
from core.render import save_gif
from core.rollout import Episode, play_episodes
from data.demos import training_episodes
from data.envs import episode_seeds, layouts


def rollout(
    policy: Policy,
    env_id: str,
    episodes: int,
    seed: int,
    frames: list | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Roll the policy out on ``episodes`` selection episodes of ``seed``. If ``frames`` is a
    list, the first episode's rendered frames are appended to it (for a GIF); ``log`` hears
    how far it is while it takes long. Returns eval/success, eval/return, eval/len_ratio (mean
    over successful episodes)."""
    seeds = episode_seeds("selection", seed, episodes)
    what = f"evaluation on selection episodes of {env_id}"
    runs = play_episodes(policy, env_id, seeds, frames, log=log, what=what)
    return summary(runs, "eval")


def training_layouts(data) -> set[bytes]:
    """The layouts the policy trained on: those of the demonstrations' training episodes (the
    validation episodes are never trained on, and DAgger replays training episodes only)."""
    trained = training_episodes(data.episodes, data.val_fraction)
    return set(layouts(data.env, episode_seeds("training", data.seed, data.episodes)[:trained]))


def on_test_episodes(
    policy: Policy,
    episodes: int,
    data,
    seed: int | None = None,
    frames: list | None = None,
    played: list | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Roll the policy out on ``episodes`` test episodes (of ``seed``, by default the data
    seed) of the environment its data section (``DataConfig``) names. Returns test/success,
    test/return, test/len_ratio and, against the layouts the policy trained on, how many test
    episodes start from a layout no training episode had and success on those. If ``played``
    is a list, each episode's own figures are appended to it (``episode_figures``); ``log``
    hears how far it is while it takes long."""
    block = data.seed if seed is None else seed
    seeds, what = episode_seeds("test", block, episodes), f"test episodes of {data.env}"
    runs = play_episodes(policy, data.env, seeds, frames, log=log, what=what)
    seen = training_layouts(data)
    unseen = [run for run in runs if run.layout not in seen]
    if played is not None:
        played.extend(episode_figures(run, run.layout not in seen) for run in runs)
    return {
        **summary(runs, "test"),
        "test/episodes": float(len(runs)),
        "test/unseen_episodes": float(len(unseen)),
        "test/success_unseen": float(np.mean([r.success for r in unseen])) if unseen else math.nan,
        "test/layouts": float(len({run.layout for run in runs})),
    }


TESTED = "test_episodes.json"  # a run's test episodes, each with its own figures


def save_tested(folder: Path, tested: list[dict]) -> None:
    """Write a run's test episodes beside its checkpoint (nothing when it has none yet)."""
    if tested:
        write_json(Path(folder) / TESTED, {"episodes": tested})


def episode_figures(run: Episode, unseen: bool) -> dict:
    """One test episode's own figures: what paired comparisons of two policies on the same
    episodes need (core/statistics.py)."""
    return {
        "seed": run.seed,
        "return": run.reward,
        "success": run.success,
        "length": run.length,
        "unseen": unseen,
    }


def summary(runs: list[Episode], prefix: str) -> dict[str, float]:
    """Success rate, mean return and mean length / the expert's (over successful episodes)."""
    successes = [run for run in runs if run.success]
    return {
        f"{prefix}/success": float(np.mean([run.success for run in runs])),
        f"{prefix}/return": float(np.mean([run.reward for run in runs])),
        f"{prefix}/len_ratio": float(np.mean([r.length / r.expert_length for r in successes]))
        if successes
        else math.nan,
    }


def evaluate_checkpoint(
    path: Path,
    episodes: int,
    seed: int | None = None,
    gif: Path | None = None,
    sets: list[str] = (),
    log: Callable[[str], None] | None = None,
    run: Path | None = None,
) -> dict[str, float]:
    """Roll a saved policy out on test episodes (block ``seed``, by default its data seed),
    planning as ``sets`` (``key=value`` of policy.PLANNING_KEYS) says where given; optionally
    save the first episode as a GIF, and write ``run``, a folder ``compare`` reads as a
    one-seed run (``save_run``). ``log`` hears how far it is while it takes long."""
    payload = load_checkpoint(path)
    policy = policy_from_checkpoint(payload, pick_device("auto"), sets)
    frames: list | None = [] if gif is not None else None
    tested: list[dict] = []
    data = policy.config.data
    metrics = on_test_episodes(policy, episodes, data, seed, frames, played=tested, log=log)
    if gif is not None:
        save_gif(frames, gif)
    if run is not None:
        save_run(run, policy.config, metrics, tested)
    return metrics


def save_run(folder: Path, config, metrics: dict[str, float], tested: list[dict]) -> None:
    """A folder laid out as a `train` run of one seed, the checkpoint's training seed:
    ``metrics.json`` (the configuration it planned with, its test figures) and that seed's
    test episodes, each with its own figures. ``compare`` pairs it with any run played on the
    same test episodes: the same weights planning two ways, or two trainings."""
    seed = str(config.train.seed)
    write_json(
        Path(folder) / "metrics.json",
        {"config": to_dict(config), "seeds": {seed: metrics}, "mean": metrics},
    )
    save_tested(Path(folder) / f"seed{seed}", tested)
